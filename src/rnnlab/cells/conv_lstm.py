"""Convolutional LSTM (Shi et al., "Convolutional LSTM Network", NeurIPS 2015).

An LSTM whose inputs, hidden states and memories are feature maps, and whose matrix products
are convolutions (``*``), so the state keeps the spatial layout of the frames:

    i_t = sigmoid(W_xi * x_t + b_xi + W_hi * h_{t-1} + b_hi)
    f_t = sigmoid(W_xf * x_t + b_xf + W_hf * h_{t-1} + b_hf)
    g_t = tanh(W_xg * x_t + b_xg + W_hg * h_{t-1} + b_hg)
    o_t = sigmoid(W_xo * x_t + b_xo + W_ho * h_{t-1} + b_ho)
    c_t = f_t . c_{t-1} + i_t . g_t
    h_t = o_t . tanh(c_t)

All four gates come from one convolution over ``[x_t, h_{t-1}]``, computed as a convolution of
``x_t`` (done for all steps at once in :meth:`ConvLSTMCell.precompute`) plus one of ``h_{t-1}``.
With 1x1 kernels on 1x1 maps this is exactly :class:`~rnnlab.cells.lstm.LSTMCell` (tested).
Shi et al. add peephole terms ``W_c . c``; this cell leaves them out, like torch's LSTM.

Shapes (T steps, B batch, C input channels, H hidden channels, Y x X frame):

=======  ==================================================
x        ``[T, B, C, Y, X]`` (``precompute``) or ``[B, C, Y, X]`` (``forward``)
state    ``LSTMState(h [B, H, Y, X], c [B, H, Y, X])``
y_t      ``h_t``, ``[B, H, Y, X]``
=======  ==================================================

Example::

    cell = rnnlab.cells.create("conv-lstm", input_size=1, hidden_size=16, kernel_size=5)
    y, state = rnnlab.layers.unroll.unroll(cell, frames, cell.init_state(4, frame_size=(64, 64)))

Attributes: ``weight_ih [4H, C, k, k]`` and ``weight_hh [4H, H, k, k]`` (gate blocks i, f, g, o
like torch's LSTM) ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)); ``bias_ih`` zero except its forget
slice, ``forget_bias`` (default 1.0); ``bias_hh`` zero. Padding keeps the frame size.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.cells.base import Cell, register
from rnnlab.cells.lstm import LSTMState
from rnnlab.errors import ConfigError
from rnnlab.validation import check_positive


@register("conv-lstm", "convlstm")
class ConvLSTMCell(Cell):
    """ConvLSTM cell: LSTM gates by convolution; state ``LSTMState(h, c)`` of feature maps.

    Args:
        input_size: input channels ``C``.
        hidden_size: hidden channels ``H``.
        kernel_size: odd size ``k`` of the square kernels (default 3).
        frame_size: ``(Y, X)`` used by :meth:`init_state` when none is given there.
        forget_bias: initial value of the forget gate's input bias (default 1.0).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        kernel_size: int = 3,
        frame_size: tuple[int, int] | None = None,
        forget_bias: float = 1.0,
    ) -> None:
        super().__init__()
        check_positive(input_size=input_size, hidden_size=hidden_size, kernel_size=kernel_size)
        if kernel_size % 2 == 0:
            raise ConfigError(f"kernel_size must be odd to keep the frame size, got {kernel_size}")
        self.input_size, self.hidden_size, self.kernel_size = input_size, hidden_size, kernel_size
        self.frame_size, self.forget_bias = frame_size, float(forget_bias)
        k = kernel_size
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size, k, k))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size, k, k))
        self.bias_ih = nn.Parameter(torch.empty(4 * hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(4 * hidden_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        k2 = self.kernel_size**2
        for weight, fan_in in (
            (self.weight_ih, self.input_size),
            (self.weight_hh, self.hidden_size),
        ):
            bound = 1.0 / math.sqrt(fan_in * k2)
            nn.init.uniform_(weight, -bound, bound)
        with torch.no_grad():
            self.bias_ih.zero_()
            self.bias_hh.zero_()
            self.bias_ih[self.hidden_size : 2 * self.hidden_size] = self.forget_bias

    def init_state(
        self,
        batch: int,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
        frame_size: tuple[int, int] | None = None,
    ) -> LSTMState:
        size = frame_size or self.frame_size
        if size is None:
            raise ConfigError("ConvLSTMCell.init_state needs frame_size=(height, width)")
        h = torch.zeros(batch, self.hidden_size, *size, device=device, dtype=dtype)
        return LSTMState(h, torch.zeros_like(h))

    def precompute(self, x: Tensor) -> Tensor:
        if x.dim() != 5:
            raise ConfigError(
                f"conv-lstm steps over feature maps [T, B, C, H, W], got shape {list(x.shape)}; "
                "it is a cell for frames (task moving-digits), not for vectors"
            )
        steps, batch = x.shape[:2]
        xp = F.conv2d(
            x.flatten(0, 1),
            self.weight_ih,
            self.bias_ih + self.bias_hh,
            padding=self.kernel_size // 2,
        )
        return xp.view(steps, batch, *xp.shape[1:])

    def step(self, xp_t: Tensor, state: LSTMState) -> tuple[Tensor, LSTMState]:
        h_prev, c_prev = state
        gates = xp_t + F.conv2d(h_prev, self.weight_hh, padding=self.kernel_size // 2)
        i, f, g, o = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c_prev + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, LSTMState(h, c)

    def forward(self, x_t: Tensor, state: LSTMState | None = None) -> tuple[Tensor, LSTMState]:
        """One step from a raw frame ``x_t [B, C, Y, X]``."""
        if state is None:
            state = self.init_state(x_t.shape[0], x_t.device, x_t.dtype, tuple(x_t.shape[-2:]))
        return self.step(self.precompute(x_t.unsqueeze(0))[0], state)
