"""A cell that wraps another cell and changes part of its step (the base of cell regularisers)."""

from __future__ import annotations

import torch
from torch import Tensor

from rnnlab.cells.base import Cell
from rnnlab.sequences import State


class CellWrapper(Cell):
    """Delegates everything to ``inner``; subclasses override :meth:`step` (and
    :meth:`begin_sequence`). A wrapped cell never runs on torch's fused kernel while the wrapper
    acts, since the kernel would skip the wrapper's change; a wrapper that can hand its change to
    the inner cell's own fused path overrides :meth:`fused_unroll`."""

    def __init__(self, inner: Cell) -> None:
        super().__init__()
        self.inner = inner
        self.input_size, self.hidden_size = inner.input_size, inner.hidden_size

    @property
    def output_size(self) -> int:
        return self.inner.output_size

    def init_state(self, batch, device=None, dtype=None) -> State:
        return self.inner.init_state(batch, device, dtype)

    def precompute(self, x: Tensor) -> Tensor:
        return self.inner.precompute(x)

    def begin_sequence(self, batch: int, device: torch.device, dtype: torch.dtype) -> None:
        self.inner.begin_sequence(batch, device, dtype)

    def step(self, xp_t: Tensor, state: State) -> tuple[Tensor, State]:
        return self.inner.step(xp_t, state)
