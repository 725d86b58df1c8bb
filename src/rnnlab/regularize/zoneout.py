"""Zoneout (Krueger et al. 2017): each unit keeps its previous value with some probability.

    training:   s_t = m * s_{t-1} + (1 - m) * s~_t,    m ~ Bernoulli(p), fresh at every step
    evaluation: s_t = p * s_{t-1} + (1 - p) * s~_t     (the expectation)

where ``s~_t`` is the wrapped cell's new state. For an LSTM, ``p_cell`` applies to ``c`` and
``p_hidden`` to ``h``; for a single-tensor state, ``p_hidden`` applies to it. The output ``y_t``
is the zoned-out ``h``. Over an LSTM cell (``p_hidden``, ``p_cell``) or a GRU cell
(``p_hidden``), optionally with a ``RecurrentDropout`` in between, it runs on the cell's fused
path, in training and at evaluation (:mod:`rnnlab.regularize.fused`).

Example::

    cell = Zoneout(rnnlab.cells.create("lstm", input_size=8, hidden_size=16), p_cell=0.5,
                   p_hidden=0.05)
"""

from __future__ import annotations

import torch
from torch import Tensor

from rnnlab.cells.base import Cell
from rnnlab.regularize.fused import fused_unroll_with_masks
from rnnlab.regularize.recurrent_dropout import RecurrentDropout
from rnnlab.regularize.wrapper import CellWrapper
from rnnlab.sequences import State
from rnnlab.validation import check_probability


class Zoneout(CellWrapper):
    """Zoneout on the hidden state (``p_hidden``) and an LSTM-like cell state (``p_cell``)."""

    def __init__(self, inner: Cell, p_hidden: float = 0.0, p_cell: float = 0.0) -> None:
        super().__init__(inner)
        self.p_hidden = check_probability("zoneout_hidden", p_hidden)
        self.p_cell = check_probability("zoneout_cell", p_cell)

    def _zone(self, new: Tensor, old: Tensor, p: float) -> Tensor:
        if p == 0.0:
            return new
        if self.training:  # uniform < p: Bernoulli(p), and 4x faster than bernoulli_ on CPU
            return torch.where(torch.rand_like(new) < p, old, new)
        return torch.lerp(new, old, p)

    def fused_unroll(
        self, x: Tensor, state: State, lengths: Tensor | None = None, reverse: bool = False
    ) -> tuple[Tensor, State] | None:
        """The inner cell's fused path with this pass's masks drawn up front (``None``: none);
        a ``RecurrentDropout`` directly inside joins it."""
        inner, drop = self.inner, 0.0
        if isinstance(inner, RecurrentDropout):
            inner, drop = inner.inner, (inner.p if inner.training else 0.0)
        p_cell = 0.0 if isinstance(state, Tensor) else self.p_cell
        return fused_unroll_with_masks(
            inner, x, state, lengths, reverse, drop, self.p_hidden, p_cell, self.training
        )

    def step(self, xp_t: Tensor, state: State) -> tuple[Tensor, State]:
        _, new_state = self.inner.step(xp_t, state)
        if isinstance(state, Tensor):
            h = self._zone(new_state, state, self.p_hidden)
            return h, h
        h = self._zone(new_state[0], state[0], self.p_hidden)
        rest = list(new_state[1:])
        if rest:
            rest[0] = self._zone(new_state[1], state[1], self.p_cell)
        return h, type(state)(h, *rest)
