"""PixelRNN with Row LSTM layers (van den Oord, Kalchbrenner, Kavukcuoglu, ICML 2016).

An image is a sequence of pixels in raster order, ``p(x) = prod_i p(x_i | x_1 .. x_{i-1})``.
The network computes all the conditionals in one pass without ever letting a pixel see itself or
a later pixel:

1. a 7x7 convolution with mask **A** (centre tap and everything after it in raster order zero);
2. Row LSTM layers: an LSTM whose "time" is the image row, top to bottom, and whose state is a
   whole row of feature vectors. Its input-to-state part is a ``1 x k`` convolution along the
   row with mask **B** (taps right of the centre zero), computed for the whole image at once;
   its state-to-state part is a ``1 x k`` convolution of the previous row's hidden state.
   A residual connection adds each layer's input to its output;
3. two ReLU + 1x1 convolutions to one logit per pixel (Bernoulli pixels, binarised images).

Row LSTM step for row ``r`` (``*`` = 1-D convolution along the row, ``K_is`` masked)::

    [o, f, i, g]_r = sigma/tanh(K_is * x_r + K_ss * h_{r-1} + b)
    c_r = f . c_{r-1} + i . g,      h_r = o . tanh(c_r)

Shapes (B batch, Y x X image, C channels):

=======  ===============================================
x        ``[B, 1, Y, X]`` binary pixels (0./1.)
output   ``[B, 1, Y, X]`` logits of ``p(x_{y,x} = 1 | earlier pixels)``
=======  ===============================================

Example::

    model = PixelRNN(channels=32, layers=2)
    nll_nats = F.binary_cross_entropy_with_logits(model(x), x, reduction="sum")
    samples = model.sample(16, (28, 28), generator=torch.Generator().manual_seed(0))
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.cells.base import Cell
from rnnlab.cells.lstm import LSTMState
from rnnlab.errors import ConfigError
from rnnlab.layers.unroll import unroll
from rnnlab.validation import check_positive


class MaskedConv2d(nn.Conv2d):
    """A square convolution that sees only pixels before the centre in raster order; with
    ``mask="B"`` the centre too (for features that already exclude their own pixel)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, mask: str) -> None:
        if mask not in ("A", "B") or kernel_size % 2 == 0:
            raise ConfigError("MaskedConv2d needs mask 'A' or 'B' and an odd kernel size")
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        k = kernel_size // 2
        allowed = torch.zeros(kernel_size, kernel_size)
        allowed[:k] = 1
        allowed[k, : k + (mask == "B")] = 1
        self.register_buffer("mask", allowed, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(x, self.weight * self.mask, self.bias)


class RowLSTMCell(Cell):
    """One Row LSTM layer as a cell over rows: a step consumes one row ``[B, C, X]``.

    ``precompute`` applies the masked input-to-state convolution to all rows at once
    (``[Y, B, C, X] -> [Y, B, 4H, X]``); ``step`` adds the state-to-state convolution of the
    previous row. State: ``LSTMState(h [B, H, X], c [B, H, X])``; gate blocks i, f, g, o.

    Args:
        input_size: input channels ``C``.
        hidden_size: hidden channels ``H``.
        width: row length ``X`` (for :meth:`init_state`).
        kernel_size: odd ``k`` of both 1-D convolutions (3).
        forget_bias: initial forget-gate bias (1.0).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        width: int,
        kernel_size: int = 3,
        forget_bias: float = 1.0,
    ) -> None:
        super().__init__()
        check_positive(input_size=input_size, hidden_size=hidden_size, width=width)
        if kernel_size % 2 == 0:
            raise ConfigError(f"kernel_size must be odd, got {kernel_size}")
        self.input_size, self.hidden_size, self.width = input_size, hidden_size, width
        self.kernel_size = kernel_size
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size, kernel_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(4 * hidden_size))
        mask = torch.zeros(kernel_size)
        mask[: kernel_size // 2 + 1] = 1  # mask B: this position and those to its left
        self.register_buffer("mask", mask, persistent=False)
        for weight, fan_in in ((self.weight_ih, input_size), (self.weight_hh, hidden_size)):
            bound = 1.0 / math.sqrt(fan_in * kernel_size)
            nn.init.uniform_(weight, -bound, bound)
        with torch.no_grad():
            self.bias[hidden_size : 2 * hidden_size] = forget_bias

    def init_state(self, batch, device=None, dtype=None) -> LSTMState:
        h = torch.zeros(batch, self.hidden_size, self.width, device=device, dtype=dtype)
        return LSTMState(h, torch.zeros_like(h))

    def precompute(self, x: Tensor) -> Tensor:
        rows, batch = x.shape[:2]
        xp = F.conv1d(
            x.flatten(0, 1), self.weight_ih * self.mask, self.bias, padding=self.kernel_size // 2
        )
        return xp.view(rows, batch, *xp.shape[1:])

    def step(self, xp_t: Tensor, state: LSTMState) -> tuple[Tensor, LSTMState]:
        h_prev, c_prev = state
        gates = xp_t + F.conv1d(h_prev, self.weight_hh, padding=self.kernel_size // 2)
        i, f, g, o = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c_prev + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, LSTMState(h, c)


class PixelRNN(nn.Module):
    """Row LSTM PixelRNN for binary images (see the module docstring).

    Args:
        channels: feature channels ``H`` of every layer (32).
        layers: Row LSTM layers (2).
        width: image width ``X`` (28).
        kernel_size: ``k`` of the Row LSTM convolutions (3).
    """

    def __init__(
        self, channels: int = 32, layers: int = 2, width: int = 28, kernel_size: int = 3
    ) -> None:
        super().__init__()
        check_positive(channels=channels, layers=layers, width=width)
        self.input_conv = MaskedConv2d(1, channels, 7, mask="A")
        self.rows = nn.ModuleList(
            RowLSTMCell(channels, channels, width, kernel_size) for _ in range(layers)
        )
        self.output = nn.Sequential(
            nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(), nn.Conv2d(channels, 1, 1)
        )

    def forward(self, x: Tensor) -> Tensor:
        features = self.input_conv(x)  # [B, H, Y, X]
        for cell in self.rows:
            rows = features.permute(2, 0, 1, 3)  # [Y, B, H, X]
            state = cell.init_state(x.shape[0], x.device, x.dtype)
            h, _ = unroll(cell, rows, state)
            features = features + h.permute(1, 2, 0, 3)
        return self.output(features)

    @torch.no_grad()
    def sample(
        self,
        count: int,
        size: tuple[int, int] = (28, 28),
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """``count`` images ``[count, 1, Y, X]`` drawn pixel by pixel in raster order."""
        device = next(self.parameters()).device
        height, width = size
        x = torch.zeros(count, 1, height, width, device=device)
        for r in range(height):
            for c in range(width):
                logits = self(x[:, :, : r + 1])[:, 0, r, c]
                u = torch.rand(count, generator=generator).to(device)
                x[:, 0, r, c] = (u < torch.sigmoid(logits)).float()
        return x
