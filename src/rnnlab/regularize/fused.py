"""Recurrent dropout, DropConnect and zoneout on the fused paths of the cells that take them.

``Zoneout(RecurrentDropout(WeightDrop(cell)))`` (each optional; what
:func:`~rnnlab.regularize.wrap_cell` builds) over an LSTM or GRU cell runs on the cell's fused
loop, in training and at evaluation: the masks of the whole pass are drawn before the loop by
:func:`draw_masks`, in the order and from the same random numbers as the wrappers draw them step
by step on the reference loop, so a fixed seed gives the same result on either path. Any other
composition, a ``WeightDrop`` on another matrix than ``weight_hh``, or a cell without the masks
in its ``fused_masks`` runs on the reference loop (the wrappers' ``fused_unroll`` returns
``None``).
"""

from __future__ import annotations

from torch import Tensor

from rnnlab.cells.base import Cell
from rnnlab.fast.regularizer_masks import RegularizerMasks
from rnnlab.regularize.dropout import dropout_mask
from rnnlab.regularize.weight_drop import WeightDrop
from rnnlab.sequences import State


def draw_masks(
    state: State,
    steps: int,
    reverse: bool,
    drop: float = 0.0,
    zone_h: float = 0.0,
    zone_c: float = 0.0,
    zoneout_training: bool = True,
    weight_drop: WeightDrop | None = None,
) -> RegularizerMasks:
    """The masks of one pass of ``steps`` steps from ``state``, in the wrappers' order.

    ``drop``: recurrent-dropout probability (0: none; give 0 at evaluation, where it is the
    identity). ``weight_drop``: an active ``WeightDrop`` on ``weight_hh``, whose masked matrix
    of this pass is drawn next. ``zone_h``, ``zone_c``: zoneout probabilities of ``h`` and of an
    LSTM's ``c``; in training (``zoneout_training``) one uniform draw per step and unit compared
    with the probability, in the order the steps run, ``h`` before ``c`` (as ``Zoneout`` draws
    them); at evaluation the probability itself (the expectation).
    """
    h = state if isinstance(state, Tensor) else state[0]
    c = None if isinstance(state, Tensor) else state[1]
    masks = RegularizerMasks(drop=dropout_mask(h, drop) if drop > 0 else None)
    if weight_drop is not None:
        masks.weight_hh = weight_drop.masked_for_pass()["weight_hh"]
    if zone_c > 0 and c is None:
        raise ValueError("zone_c needs a state with a cell c")
    if not zoneout_training:
        if zone_h > 0:
            masks.zone_h = h.new_full((1, 1, 1), zone_h).expand(steps, 1, 1)
        if zone_c > 0:
            masks.zone_c = c.new_full((1, 1, 1), zone_c).expand(steps, 1, 1)
        return masks
    uniform_h = h.new_empty(steps, *h.shape) if zone_h > 0 else None
    uniform_c = c.new_empty(steps, *c.shape) if zone_c > 0 else None
    if uniform_h is not None or uniform_c is not None:
        for t in range(steps - 1, -1, -1) if reverse else range(steps):
            if uniform_h is not None:
                uniform_h[t].uniform_()
            if uniform_c is not None:
                uniform_c[t].uniform_()
    if uniform_h is not None:
        masks.zone_h = (uniform_h < zone_h).to(h.dtype)
    if uniform_c is not None:
        masks.zone_c = (uniform_c < zone_c).to(c.dtype)
    return masks


def fused_unroll_with_masks(
    cell: Cell,
    x: Tensor,
    state: State,
    lengths: Tensor | None,
    reverse: bool,
    drop: float = 0.0,
    zone_h: float = 0.0,
    zone_c: float = 0.0,
    zoneout_training: bool = True,
) -> tuple[Tensor, State] | None:
    """``cell``'s fused unroll with recurrent dropout ``drop`` and zoneout ``zone_h``, ``zone_c``
    (arguments of :func:`draw_masks`), or ``None`` when it has no fused path that takes them.
    ``cell`` may be a ``WeightDrop`` around the cell: DropConnect then joins the pass (nothing
    at evaluation, where it is the identity)."""
    weight_drop = None
    if isinstance(cell, WeightDrop):
        if cell.training and cell.p > 0:
            if cell.weights != ("weight_hh",):
                return None
            weight_drop = cell
        cell = cell.inner
    needed = {name for name, p in (("drop", drop), ("zone_h", zone_h), ("zone_c", zone_c)) if p > 0}
    if weight_drop is not None:
        needed.add("weight_hh")
    if not needed:
        return cell.fused_unroll(x, state, lengths, reverse)
    if not needed <= set(cell.fused_masks):
        return None
    masks = draw_masks(
        state, x.shape[0], reverse, drop, zone_h, zone_c, zoneout_training, weight_drop
    )
    return cell.fused_unroll(x, state, lengths, reverse, masks=masks)
