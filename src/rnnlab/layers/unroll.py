"""Unrolling a cell over time: the reference loop and the ``Recurrent`` layer.

Shapes (T = time steps, B = batch, I = input size, H = cell output size):

=========  ===========================================================
x          ``[T, B, I]``, or ``[B, T, I]`` with ``batch_first=True``
lengths    ``[B]`` integers in ``1..T``; steps at or past a length are padding
y          ``[T, B, H]`` (or ``[B, T, H]``), zero at padded steps
state      the cell's state; the returned one is each sequence's state after its last valid step
=========  ===========================================================
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnlab.cells.base import Cell
from rnnlab.errors import ConfigError
from rnnlab.fast.torch_kernels import run_kernel
from rnnlab.sequences import State, check_lengths, map_state, reverse_padded, state_batch_select


def unroll(
    cell: Cell, x: Tensor, state: State, lengths: Tensor | None = None, reverse: bool = False
) -> tuple[Tensor, State]:
    """The reference loop: apply ``cell.step`` at every step of ``x [T, B, I]``.

    Past a sequence's length its state is frozen and its output is zero, so the final state is
    the one after its last valid step. With ``reverse=True`` each sequence runs from its last
    valid step back to step 0.
    """
    steps = cell.precompute(x).unbind(0)
    cell.begin_sequence(x.shape[1], x.device, x.dtype)
    outputs: list[Tensor] = [x.new_empty(0)] * len(steps)
    order = range(len(steps) - 1, -1, -1) if reverse else range(len(steps))
    for t in order:
        y, new_state = cell.step(steps[t], state)
        if lengths is not None:
            valid = t < lengths
            state = state_batch_select(valid, new_state, state)
            y = y * valid.view(-1, *([1] * (y.dim() - 1))).to(y.dtype)
        else:
            state = new_state
        outputs[t] = y
    return torch.stack(outputs), state


class Recurrent(nn.Module):
    """Unroll any cell over time, on the fastest correct path.

    A cell that torch's fused kernel computes exactly (``cell.torch_kernel()`` is not ``None``)
    runs on that kernel; a cell with a fused path of its own (``cell.fused_unroll`` returns a
    result) runs on it; any other cell runs on the reference loop :func:`unroll`. All give the
    same outputs, final states and gradients (tested).

    Example::

        rnn = Recurrent(rnnlab.cells.create("lstm", input_size=8, hidden_size=16))
        y, (h, c) = rnn(torch.randn(50, 4, 8), lengths=torch.tensor([50, 20, 7, 1]))

    Args:
        cell: the step function.
        batch_first: inputs and outputs are ``[B, T, ...]``.
        reverse: run from the end of each sequence to its start.
        fast: allow fused kernels (``False`` forces the reference loop).
    """

    def __init__(
        self, cell: Cell, batch_first: bool = False, reverse: bool = False, fast: bool = True
    ):
        super().__init__()
        self.cell, self.batch_first, self.reverse, self.fast = cell, batch_first, reverse, fast

    @property
    def output_size(self) -> int:
        return self.cell.output_size

    def forward(
        self, x: Tensor, state: State | None = None, lengths: Tensor | list[int] | None = None
    ) -> tuple[Tensor, State]:
        if x.dim() != 3:
            raise ConfigError(f"Recurrent expects a 3-d input [T, B, F], got shape {list(x.shape)}")
        if self.batch_first:
            x = x.transpose(0, 1)
        steps, batch = x.shape[:2]
        lengths = check_lengths(lengths, steps, batch, x.device)
        if state is None:
            state = self.cell.init_state(batch, x.device, x.dtype)
        kernel = self.cell.torch_kernel() if self.fast else None
        fused = None
        if self.fast and kernel is None:
            fused = self.cell.fused_unroll(x, state, lengths, self.reverse)
        if kernel is not None:
            y, state = self._run_kernel(kernel, x, state, lengths)
        elif fused is not None:
            y, state = fused
        else:
            y, state = unroll(self.cell, x, state, lengths, self.reverse)
        return (y.transpose(0, 1) if self.batch_first else y), state

    def _run_kernel(self, kernel, x: Tensor, state: State, lengths: Tensor | None):
        mode, weights = kernel
        has_bias = getattr(self.cell, "bias", True)
        if self.reverse:
            x = reverse_padded(x, lengths)
        hx = map_state(lambda s: s.unsqueeze(0), state)
        y, hx = run_kernel(mode, weights, x, hx, lengths, has_bias=has_bias)
        if self.reverse:
            y = reverse_padded(y, lengths)
        if isinstance(state, Tensor):
            return y, hx.squeeze(0)
        return y, type(state)(*(s.squeeze(0) for s in hx))
