"""Quasi-recurrent neural network (Bradbury et al. 2017) with fo-pooling.

Gates are causal convolutions of width ``k`` (``window``) over the inputs, the only recurrence is
elementwise::

    Z = tanh(W_z * X + b_z),   F = sigmoid(W_f * X + b_f),   O = sigmoid(W_o * X + b_o)
    c_t = f_t * c_{t-1} + (1 - f_t) * z_t
    h_t = o_t * c_t

where ``W * X`` at step t is ``sum_{j<k} W[:, :, j] x_{t-k+1+j}`` (a Conv1d with ``k - 1`` steps
of left padding). Whole sequences run through :class:`rnnlab.layers.Recurrent` as one
convolution plus one log-space parallel scan of ``c`` (``fused_unroll``); :meth:`step` is the same
cell one step at a time. To make steps exact across calls (generation, TBPTT), the state carries
the convolution's pending contributions of the last ``k - 1`` inputs to the next steps.

Example::

    rnn = rnnlab.Recurrent(rnnlab.cells.create("qrnn", input_size=65, hidden_size=256, window=2))
    y, state = rnn(torch.randn(100, 8, 65))

Attributes: ``weight [3H, I, k]`` (Conv1d layout, rows z, f, o) and ``bias [3H]``, both
~ U(-1/sqrt(I k), 1/sqrt(I k)) like torch.nn.Conv1d. Defaults: ``window=2`` (the paper's
language-model setting). State :class:`QRNNState` ``(c [B, H], pending [B, (k-1) 3H])``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.cells.base import Cell, register
from rnnlab.cells.scan import scan_unroll
from rnnlab.sequences import reverse_padded
from rnnlab.validation import check_positive


class QRNNState(NamedTuple):
    """Memory ``c [B, H]`` and the gate contributions already known for the next ``k - 1``
    steps, ``pending [B, (k - 1) * 3H]`` (next step first)."""

    c: Tensor
    pending: Tensor


@register("qrnn")
class QRNNCell(Cell):
    """QRNN layer with fo-pooling; state :class:`QRNNState`."""

    def __init__(
        self, input_size: int, hidden_size: int, window: int = 2, bias: bool = True
    ) -> None:
        super().__init__()
        check_positive(input_size=input_size, hidden_size=hidden_size, window=window)
        self.input_size, self.hidden_size, self.window, self.bias = (
            input_size,
            hidden_size,
            window,
            bias,
        )
        self.weight = nn.Parameter(torch.empty(3 * hidden_size, input_size, window))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(3 * hidden_size))
        else:
            self.register_parameter("bias_ih", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.input_size * self.window)
        with torch.no_grad():
            self.weight.uniform_(-bound, bound)
            if self.bias:
                self.bias_ih.uniform_(-bound, bound)

    def init_state(self, batch, device=None, dtype=None) -> QRNNState:
        c = torch.zeros(batch, self.hidden_size, device=device, dtype=dtype)
        pending = torch.zeros(
            batch, (self.window - 1) * 3 * self.hidden_size, device=device, dtype=dtype
        )
        return QRNNState(c, pending)

    def precompute(self, x: Tensor) -> Tensor:
        """Every tap's projection of every input: ``[T, B, k * 3H]``, tap ``j`` at block ``j``
        (tap ``k - 1`` multiplies the current input)."""
        taps = self.weight.permute(2, 0, 1).reshape(-1, self.input_size)
        return x @ taps.T

    def _gates(self, g: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(log f, (1 - f) * z, o)`` from the gate pre-activations ``g [..., 3H]``."""
        if self.bias:
            g = g + self.bias_ih
        gz, gf, go = g.chunk(3, dim=-1)
        return F.logsigmoid(gf), torch.sigmoid(-gf) * torch.tanh(gz), torch.sigmoid(go)

    def step(self, xp_t: Tensor, state: QRNNState) -> tuple[Tensor, QRNNState]:
        taps = xp_t.view(*xp_t.shape[:-1], self.window, 3 * self.hidden_size).unbind(-2)
        pending = state.pending.split(3 * self.hidden_size, dim=-1) if self.window > 1 else ()
        g = taps[-1] + pending[0] if pending else taps[-1]
        log_f, b, o = self._gates(g)
        c = torch.exp(log_f) * state.c + b
        # contribution of x_t to step t + 1 + m is tap k - 2 - m
        later = [
            (pending[m + 1] if m + 1 < len(pending) else 0) + taps[self.window - 2 - m]
            for m in range(self.window - 1)
        ]
        new_pending = torch.cat(later, dim=-1) if later else state.pending
        return o * c, QRNNState(c, new_pending)

    def fused_unroll(
        self, x: Tensor, state: QRNNState, lengths: Tensor | None = None, reverse: bool = False
    ) -> tuple[Tensor, QRNNState]:
        """The whole sequence as one convolution and one parallel scan (same contract and
        results as :func:`rnnlab.layers.unroll.unroll`)."""
        if reverse:
            x = reverse_padded(x, lengths)
        steps, batch = x.shape[:2]
        k, width = self.window, 3 * self.hidden_size
        taps = self.precompute(x).view(steps, batch, k, width)
        if lengths is not None:  # inputs past a length contribute nothing (also to pending)
            valid = torch.arange(steps, device=x.device).unsqueeze(1) < lengths
            taps = taps * valid.view(steps, batch, 1, 1).to(taps.dtype)
        # g_ext[t] = sum_d tap_{k-1-d}(x_{t-d}), for t < T + k - 1 (inputs past T are zero)
        padded = F.pad(taps, (0, 0, 0, 0, 0, 0, k - 1, k - 1))
        g_ext = sum(padded[k - 1 - d : k - 1 - d + steps + k - 1, :, k - 1 - d] for d in range(k))
        if k > 1:
            pending0 = state.pending.view(batch, k - 1, width).transpose(0, 1)
            g_ext = torch.cat([g_ext[: k - 1] + pending0, g_ext[k - 1 :]])
        log_f, b, o = self._gates(g_ext[:steps])
        c, c_final = scan_unroll(log_f, b, None, state.c, lengths)
        y = o * c
        ends = lengths if lengths is not None else torch.full((batch,), steps, device=x.device)
        if k > 1:
            rows = ends.unsqueeze(0) + torch.arange(k - 1, device=x.device).unsqueeze(1)
            pending = g_ext[rows, torch.arange(batch, device=x.device)]  # [k-1, B, 3H]
            pending = pending.transpose(0, 1).reshape(batch, -1)
        else:
            pending = state.pending
        return (reverse_padded(y, lengths) if reverse else y), QRNNState(c_final, pending)
