"""Gated recurrent unit (Cho et al. 2014), in torch.nn.GRU's formulation.

    r_t = sigmoid(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
    z_t = sigmoid(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
    n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}

Example::

    cell = rnnlab.cells.create("gru", input_size=65, hidden_size=128)
    y, h = cell(torch.randn(4, 65))

Attributes: ``weight_ih [3H, I]`` (rows r, z, n), ``weight_hh [3H, H]`` orthogonal per gate block
by default, biases ``[3H]`` ~ U(-1/sqrt(H), 1/sqrt(H)). Parameter names are torch.nn.GRUCell's.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnlab.cells.base import Cell, check_positive, register
from rnnlab.cells.init import init_recurrent_, init_uniform_


@register("gru")
class GRUCell(Cell):
    """GRU cell; state ``h [B, H]``."""

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, init: str = "orthogonal"
    ) -> None:
        super().__init__()
        check_positive(input_size=input_size, hidden_size=hidden_size)
        self.input_size, self.hidden_size, self.bias, self.init = (
            input_size,
            hidden_size,
            bias,
            init,
        )
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden_size, hidden_size))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(3 * hidden_size))
            self.bias_hh = nn.Parameter(torch.empty(3 * hidden_size))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init_uniform_(self.weight_ih, self.hidden_size)
        init_recurrent_(self.weight_hh, 3, self.init)
        if self.bias:
            init_uniform_(self.bias_ih, self.hidden_size)
            init_uniform_(self.bias_hh, self.hidden_size)

    def init_state(self, batch, device=None, dtype=None) -> Tensor:
        return torch.zeros(batch, self.hidden_size, device=device, dtype=dtype)

    def precompute(self, x: Tensor) -> Tensor:
        xp = x @ self.weight_ih.T
        return xp + self.bias_ih if self.bias else xp

    def step(self, xp_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        hp = state @ self.weight_hh.T
        if self.bias:
            hp = hp + self.bias_hh
        xr, xz, xn = xp_t.chunk(3, dim=-1)
        hr, hz, hn = hp.chunk(3, dim=-1)
        r = torch.sigmoid(xr + hr)
        z = torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        h = n + z * (state - n)
        return h, h

    def torch_kernel(self):
        weights = [self.weight_ih, self.weight_hh]
        if self.bias:
            weights += [self.bias_ih, self.bias_hh]
        return "GRU", weights
