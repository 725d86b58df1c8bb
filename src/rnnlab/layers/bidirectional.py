"""Bidirectional: one recurrent layer reads each sequence forwards, another backwards
(Schuster and Paliwal 1997), and their outputs are merged step by step.

    y_t = merge(forward(x)_t, backward(x)_t),   merge = concat (default) or sum

The backward direction starts at each sequence's last valid step (not at the padding), so with
``lengths`` both directions see exactly the valid part of every sequence.

Shapes (T = time steps, B = batch, I = input size, H_f, H_b = output sizes of the directions):

==========  =================================================================================
x           ``[T, B, I]``, or ``[B, T, I]`` when both directions are ``batch_first``
lengths     ``[B]`` integers in ``1..T`` (optional)
state       ``BidirectionalState(forward, backward)``, each the direction's cell state, or None
y           ``[T, B, H_f + H_b]`` with ``merge="concat"``, ``[T, B, H]`` with ``merge="sum"``
==========  =================================================================================
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from rnnlab.cells.base import Cell
from rnnlab.errors import ConfigError
from rnnlab.layers.unroll import Recurrent
from rnnlab.sequences import State

MERGES = ("concat", "sum")


class BidirectionalState(NamedTuple):
    """The states of both directions: each one is that direction's cell state."""

    forward: State
    backward: State


class Bidirectional(nn.Module):
    """Run two recurrent layers with separate weights over a sequence, one in each direction.

    Example::

        cells = [rnnlab.cells.create("gru", input_size=8, hidden_size=16) for _ in range(2)]
        bi = Bidirectional(Recurrent(cells[0]), Recurrent(cells[1], reverse=True))
        y, (h_fwd, h_bwd) = bi(torch.randn(50, 4, 8), lengths=torch.tensor([50, 20, 7, 1]))
        y.shape  # [50, 4, 32]

    Args:
        forward: the forward direction, a ``Recurrent`` (or a cell, which is wrapped in one).
        backward: the backward direction, a ``Recurrent`` built with ``reverse=True`` (or a cell).
        merge: ``"concat"`` (the outputs side by side, torch.nn's layout) or ``"sum"``.
    """

    def __init__(
        self, forward: Recurrent | Cell, backward: Recurrent | Cell, merge: str = "concat"
    ) -> None:
        super().__init__()
        if isinstance(forward, Cell):
            forward = Recurrent(forward)
        if isinstance(backward, Cell):
            backward = Recurrent(backward, reverse=True)
        if not isinstance(forward, Recurrent) or not isinstance(backward, Recurrent):
            raise ConfigError("Bidirectional takes two Recurrent layers (or two cells)")
        if forward.reverse or not backward.reverse:
            raise ConfigError(
                "Bidirectional needs a forward layer with reverse=False and a backward layer "
                "built with Recurrent(cell, reverse=True)"
            )
        if forward.batch_first != backward.batch_first:
            raise ConfigError("both directions of Bidirectional must have the same batch_first")
        if forward.cell.input_size != backward.cell.input_size:
            raise ConfigError(
                f"both directions must read the same input size, got "
                f"{forward.cell.input_size} and {backward.cell.input_size}"
            )
        if merge not in MERGES:
            raise ConfigError(f"merge must be 'concat' or 'sum', got {merge!r}")
        if merge == "sum" and forward.output_size != backward.output_size:
            raise ConfigError(
                f"merge='sum' needs equal output sizes, got {forward.output_size} and "
                f"{backward.output_size}; use merge='concat'"
            )
        self.forward_rnn, self.backward_rnn, self.merge = forward, backward, merge

    @property
    def input_size(self) -> int:
        return self.forward_rnn.cell.input_size

    @property
    def output_size(self) -> int:
        if self.merge == "sum":
            return self.forward_rnn.output_size
        return self.forward_rnn.output_size + self.backward_rnn.output_size

    @property
    def batch_first(self) -> bool:
        return self.forward_rnn.batch_first

    def forward(
        self,
        x: Tensor,
        state: tuple[State, State] | None = None,
        lengths: Tensor | list[int] | None = None,
    ) -> tuple[Tensor, BidirectionalState]:
        state_fwd, state_bwd = (None, None) if state is None else state
        y_fwd, state_fwd = self.forward_rnn(x, state_fwd, lengths)
        y_bwd, state_bwd = self.backward_rnn(x, state_bwd, lengths)
        y = y_fwd + y_bwd if self.merge == "sum" else torch.cat([y_fwd, y_bwd], dim=-1)
        return y, BidirectionalState(state_fwd, state_bwd)

    def extra_repr(self) -> str:
        return f"merge={self.merge!r}"
