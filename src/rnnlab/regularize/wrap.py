"""Wrap a cell in the cell regularisers named by keywords (what the drop-in layers, the language
model and ``rnnlab train`` use).

    wrap_cell(cell, recurrent_dropout=0.25, weight_drop=0.5, zoneout_cell=0.5, zoneout_hidden=0.05)

gives ``Zoneout(RecurrentDropout(WeightDrop(cell)))``, innermost first: DropConnect changes the
cell's own step, recurrent dropout masks the state entering that step, and zoneout mixes the
step's result with the state that entered it (the undropped one). A keyword at 0 adds no wrapper,
so with all at 0 the cell is returned unchanged (and keeps its fused kernel). An LSTM or GRU cell
wrapped this way runs on its own fused path with the masks (:mod:`rnnlab.regularize.fused`).
The parameters keep their names below ``inner.`` (``inner.inner.weight_hh``); the drop-in layers
map them back to torch's names, and :func:`keep_plain_names` makes any module's ``state_dict``
use the plain names.
"""

from __future__ import annotations

import re

from torch import nn

from rnnlab.cells.base import Cell
from rnnlab.regularize.recurrent_dropout import RecurrentDropout
from rnnlab.regularize.weight_drop import WeightDrop
from rnnlab.regularize.wrapper import CellWrapper
from rnnlab.regularize.zoneout import Zoneout
from rnnlab.validation import check_probability

CELL_REGULARIZERS = ("recurrent_dropout", "weight_drop", "zoneout_cell", "zoneout_hidden")
"""The keywords :func:`wrap_cell` takes."""


def wrap_cell(
    cell: Cell,
    recurrent_dropout: float = 0.0,
    weight_drop: float = 0.0,
    zoneout_cell: float = 0.0,
    zoneout_hidden: float = 0.0,
) -> Cell:
    """``cell`` inside the regularisers whose probability is non-zero (each in ``[0, 1)``)."""
    for name, p in (
        ("recurrent_dropout", recurrent_dropout),
        ("weight_drop", weight_drop),
        ("zoneout_cell", zoneout_cell),
        ("zoneout_hidden", zoneout_hidden),
    ):
        check_probability(name, p)
    if weight_drop > 0:
        cell = WeightDrop(cell, weight_drop)
    if recurrent_dropout > 0:
        cell = RecurrentDropout(cell, recurrent_dropout)
    if zoneout_cell > 0 or zoneout_hidden > 0:
        cell = Zoneout(cell, p_hidden=zoneout_hidden, p_cell=zoneout_cell)
    return cell


def innermost(cell: Cell) -> Cell:
    """The cell below every regulariser wrapper."""
    while isinstance(cell, CellWrapper):
        cell = cell.inner
    return cell


def wrapper_depth(cell: Cell) -> int:
    """How many wrappers are around the innermost cell."""
    depth = 0
    while isinstance(cell, CellWrapper):
        cell, depth = cell.inner, depth + 1
    return depth


_WRAPPED = re.compile(r"(^|\.)cell\.(?:inner\.)+")


def plain_name(name: str) -> str:
    """A parameter path without the wrappers: ``layers.0.cell.inner.inner.weight_hh`` ->
    ``layers.0.cell.weight_hh``."""
    return _WRAPPED.sub(r"\1cell.", name)


def keep_plain_names(module: nn.Module) -> None:
    """Make ``module``'s ``state_dict`` and ``load_state_dict`` use the names its cells have
    without regularisers, so a regularised checkpoint loads into a plain model and back."""
    getattr(module, "register_state_dict_post_hook", module._register_state_dict_hook)(
        _to_plain_names
    )
    module.register_load_state_dict_pre_hook(_from_plain_names)


def _to_plain_names(module: nn.Module, state_dict, prefix: str, local_metadata) -> None:
    items = list(state_dict.items())
    state_dict.clear()
    for key, value in items:
        if key.startswith(prefix):
            key = prefix + plain_name(key[len(prefix) :])
        state_dict[key] = value


def _from_plain_names(module: nn.Module, state_dict, prefix: str, *_) -> None:
    internal = {
        plain_name(name): name for name, _ in (*module.named_parameters(), *module.named_buffers())
    }
    for key in [k for k in state_dict if k.startswith(prefix)]:
        name = internal.get(key[len(prefix) :])
        if name is not None and prefix + name != key:
            state_dict[prefix + name] = state_dict.pop(key)
