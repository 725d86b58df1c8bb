"""Variational dropout on the recurrent connection (Gal and Ghahramani 2016).

The state that enters each step is multiplied by one dropout mask drawn once per sequence and
reused at every step (a fresh mask per step would destroy the memory, which is why plain dropout
is kept off recurrent connections). For an LSTM the mask applies to ``h`` (the recurrent input),
not to the cell ``c``. Identity at evaluation (then the inner cell's own fast path runs). Over an
LSTM or GRU cell it runs on the cell's fused path in training (:mod:`rnnlab.regularize.fused`).

Example::

    cell = RecurrentDropout(rnnlab.cells.create("lstm", input_size=8, hidden_size=16), p=0.25)
    y, state = rnnlab.Recurrent(cell)(x)
"""

from __future__ import annotations

import torch
from torch import Tensor

from rnnlab.cells.base import Cell
from rnnlab.regularize.dropout import dropout_mask
from rnnlab.regularize.fused import fused_unroll_with_masks
from rnnlab.regularize.wrapper import CellWrapper
from rnnlab.sequences import State
from rnnlab.validation import check_probability


def recurrent_part(state: State) -> Tensor:
    """The part of a state fed back into the next step: the state itself, or its first field."""
    return state if isinstance(state, Tensor) else state[0]


def replace_recurrent_part(state: State, value: Tensor) -> State:
    return value if isinstance(state, Tensor) else type(state)(value, *state[1:])


class RecurrentDropout(CellWrapper):
    """Drop units of the fed-back state with one mask per sequence; ``p`` in ``[0, 1)``."""

    def __init__(self, inner: Cell, p: float) -> None:
        super().__init__(inner)
        self.p = check_probability("recurrent_dropout", p)
        self._mask: Tensor | None = None

    def begin_sequence(self, batch: int, device: torch.device, dtype: torch.dtype) -> None:
        super().begin_sequence(batch, device, dtype)
        self._mask = None

    def torch_kernel(self) -> tuple[str, list[Tensor]] | None:
        """The inner cell's fused kernel at evaluation, where this wrapper is the identity."""
        return None if self.training and self.p > 0.0 else self.inner.torch_kernel()

    def fused_unroll(
        self, x: Tensor, state: State, lengths: Tensor | None = None, reverse: bool = False
    ) -> tuple[Tensor, State] | None:
        """The inner cell's fused path with this pass's mask drawn up front (``None``: none)."""
        drop = self.p if self.training else 0.0
        return fused_unroll_with_masks(self.inner, x, state, lengths, reverse, drop=drop)

    def step(self, xp_t: Tensor, state: State) -> tuple[Tensor, State]:
        if not self.training or self.p == 0.0:
            return self.inner.step(xp_t, state)
        h = recurrent_part(state)
        if self._mask is None or self._mask.shape != h.shape:
            self._mask = dropout_mask(h, self.p)
        return self.inner.step(xp_t, replace_recurrent_part(state, h * self._mask))
