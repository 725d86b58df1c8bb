"""The Cell contract and the registry of cells.

A cell is one time step of a recurrent network::

    xp = cell.precompute(x)              # [T, B, F] -> [T, B, ...], all input projections at once
    y_t, state = cell.step(xp[t], state)  # one step; state is a tensor or a NamedTuple of tensors

``precompute`` exists so that the input-to-hidden matrix product of every step runs as one large
matrix product before the loop (the default is the identity). ``rnnlab.layers.Recurrent`` unrolls
any cell over time; every structure, model and trainer feature works with any registered cell.

A new cell is one file: subclass :class:`Cell`, decorate it with :func:`register`, and it can be
created by name (``rnnlab.cells.create("lstm", input_size=65, hidden_size=128)``), from the
command line (``--cell lstm``) and in the benchmarks. A cell in another installed package joins
the registry through the ``rnnlab.cells`` entry-point group (name: the cell's name, object: its
class), read on the first look-up.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import metadata
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from rnnlab.errors import ConfigError
from rnnlab.sequences import State


class Cell(nn.Module):
    """One step of a recurrent network: ``(x_t, state) -> (y_t, state)``.

    Subclasses set ``input_size`` and ``hidden_size`` and implement :meth:`init_state` and
    :meth:`step`; they override :meth:`precompute` when part of the step depends on the input
    only. ``output_size`` is the width of ``y_t`` (``hidden_size`` unless the cell projects).
    """

    input_size: int
    hidden_size: int
    fused_masks: tuple[str, ...] = ()
    """The fields of ``rnnlab.fast.regularizer_masks.RegularizerMasks`` (``"drop"``,
    ``"weight_hh"``, ``"zone_h"``, ``"zone_c"``) that this cell's :meth:`fused_unroll` takes as
    ``masks=``, so that recurrent dropout, DropConnect and zoneout run on its fused path; empty:
    they run on the reference loop."""

    @property
    def output_size(self) -> int:
        return self.hidden_size

    def init_state(
        self, batch: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> State:
        """The state before the first step (zeros unless the cell says otherwise)."""
        raise NotImplementedError

    def precompute(self, x: Tensor) -> Tensor:
        """Input-only work for all steps at once: ``[T, B, input_size] -> [T, B, ...]``."""
        return x

    def step(self, xp_t: Tensor, state: State) -> tuple[Tensor, State]:
        """One step from the precomputed input ``xp_t`` (``precompute(x)[t]``)."""
        raise NotImplementedError

    def begin_sequence(self, batch: int, device: torch.device, dtype: torch.dtype) -> None:
        """Called once per pass over a sequence, before its first step (after ``precompute``).

        Cells that draw randomness shared by every step of a pass (variational dropout masks,
        DropConnect masks) draw it here; the default does nothing.
        """

    def forward(self, x_t: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """One step from a raw input ``x_t`` of shape ``[B, input_size]``."""
        if state is None:
            state = self.init_state(x_t.shape[0], x_t.device, x_t.dtype)
        return self.step(self.precompute(x_t.unsqueeze(0))[0], state)

    def fused_unroll(
        self, x: Tensor, state: State, lengths: Tensor | None, reverse: bool
    ) -> tuple[Tensor, State] | None:
        """Optional fast path: the result of ``rnnlab.layers.unroll(self, x, state, lengths,
        reverse)`` computed faster (``y [T, B, output_size]``, final state), or ``None`` when the
        cell has none. ``lengths`` is validated already."""
        return None

    def torch_kernel(self) -> tuple[str, list[Tensor]] | None:
        """``(mode, [w_ih, w_hh, b_ih, b_hh, (w_hr)])`` when torch's fused kernel computes exactly
        this cell (mode ``"LSTM"``, ``"GRU"``, ``"RNN_TANH"`` or ``"RNN_RELU"``), else ``None``."""
        return None


_REGISTRY: dict[str, type[Cell]] = {}
C = TypeVar("C", bound=type[Cell])
ENTRY_POINT_GROUP = "rnnlab.cells"
_entry_points_read = False


def register(*names: str) -> Callable[[C], C]:
    """Class decorator: make a cell creatable by each of ``names``."""

    def decorate(cls: C) -> C:
        for name in names:
            if name in _REGISTRY and _REGISTRY[name] is not cls:
                raise ValueError(f"cell name {name!r} is already registered")
            _REGISTRY[name] = cls
        return cls

    return decorate


def _read_entry_points() -> None:
    """Register, once, each cell of the ``rnnlab.cells`` entry-point group of the installed
    packages (``name = "package.module:CellClass"``)."""
    global _entry_points_read
    if _entry_points_read:
        return
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        where = f"entry point {entry.name} = {entry.value!r} (group {ENTRY_POINT_GROUP})"
        try:
            cls = entry.load()
        except Exception as error:
            raise ConfigError(
                f"{where} failed to import ({type(error).__name__}: {error}); fix or uninstall "
                "the package that declares it"
            ) from error
        if not (isinstance(cls, type) and issubclass(cls, Cell)):
            raise ConfigError(f"{where} is not a subclass of rnnlab.cells.Cell")
        if _REGISTRY.get(entry.name, cls) is not cls:
            raise ConfigError(f"{where}: the cell name {entry.name!r} is taken; rename it")
        _REGISTRY[entry.name] = cls
    _entry_points_read = True


def available() -> list[str]:
    """Names of all registered cells (entry points included), sorted."""
    _read_entry_points()
    return sorted(_REGISTRY)


def get(name: str) -> type[Cell]:
    """The cell class registered as ``name``."""
    _read_entry_points()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown cell {name!r}; choose one of: {', '.join(available())}"
        ) from None


def create(name: str, **kwargs: Any) -> Cell:
    """Create a registered cell by name: ``create("gru", input_size=8, hidden_size=16)``."""
    return get(name)(**kwargs)
