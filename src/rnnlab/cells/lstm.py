"""Long short-term memory (Hochreiter and Schmidhuber 1997; forget gate of Gers et al. 2000).

    i_t = sigmoid(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)
    f_t = sigmoid(W_if x_t + b_if + W_hf h_{t-1} + b_hf)
    g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)
    o_t = sigmoid(W_io x_t + b_io + W_ho h_{t-1} + b_ho)
    c_t = f_t * c_{t-1} + i_t * g_t
    h_t = o_t * tanh(c_t)            (with proj_size > 0: h_t = W_hr (o_t * tanh(c_t)))

Example::

    cell = rnnlab.cells.create("lstm", input_size=65, hidden_size=128)
    y, (h, c) = cell(torch.randn(4, 65))

Attributes: ``weight_ih [4H, I]`` (rows i, f, g, o) ~ U(-1/sqrt(H), 1/sqrt(H)); ``weight_hh
[4H, H or P]`` orthogonal per gate block by default; ``bias_ih`` zero except its forget slice,
which is ``forget_bias`` (default 1.0, Gers et al.; Jozefowicz et al. 2015); ``bias_hh`` zero;
``weight_hr [P, H]`` when ``proj_size = P > 0`` (Sak et al. 2014), uniform. Parameter names are
torch.nn.LSTM's without the layer suffix.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from rnnlab.cells.base import Cell, check_positive, register
from rnnlab.cells.init import init_recurrent_, init_uniform_
from rnnlab.errors import ConfigError


class LSTMState(NamedTuple):
    """LSTM state: ``h [B, H or P]`` (the output) and ``c [B, H]`` (the cell)."""

    h: Tensor
    c: Tensor


@register("lstm")
class LSTMCell(Cell):
    """LSTM cell with forget-gate bias and optional projection; state ``LSTMState(h, c)``."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        forget_bias: float = 1.0,
        proj_size: int = 0,
        init: str = "orthogonal",
    ) -> None:
        super().__init__()
        check_positive(input_size=input_size, hidden_size=hidden_size)
        if (
            not isinstance(proj_size, int)
            or proj_size < 0
            or proj_size >= hidden_size
            and proj_size
        ):
            raise ConfigError(
                f"proj_size must be 0 or a positive integer below hidden_size, got {proj_size!r}"
            )
        self.input_size, self.hidden_size, self.proj_size = input_size, hidden_size, proj_size
        self.bias, self.forget_bias, self.init = bias, float(forget_bias), init
        out = proj_size or hidden_size
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, out))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(4 * hidden_size))
            self.bias_hh = nn.Parameter(torch.empty(4 * hidden_size))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        if proj_size:
            self.weight_hr = nn.Parameter(torch.empty(proj_size, hidden_size))
        else:
            self.register_parameter("weight_hr", None)
        self.reset_parameters()

    @property
    def output_size(self) -> int:
        return self.proj_size or self.hidden_size

    def reset_parameters(self) -> None:
        init_uniform_(self.weight_ih, self.hidden_size)
        init_recurrent_(self.weight_hh, 4, self.init)
        if self.bias:
            with torch.no_grad():
                self.bias_ih.zero_()
                self.bias_hh.zero_()
                self.bias_ih[self.hidden_size : 2 * self.hidden_size] = self.forget_bias
        if self.proj_size:
            init_uniform_(self.weight_hr, self.hidden_size)

    def init_state(self, batch, device=None, dtype=None) -> LSTMState:
        h = torch.zeros(batch, self.output_size, device=device, dtype=dtype)
        c = torch.zeros(batch, self.hidden_size, device=device, dtype=dtype)
        return LSTMState(h, c)

    def precompute(self, x: Tensor) -> Tensor:
        xp = x @ self.weight_ih.T
        if self.bias:
            xp = xp + (self.bias_ih + self.bias_hh)
        return xp

    def step(self, xp_t: Tensor, state: LSTMState) -> tuple[Tensor, LSTMState]:
        h_prev, c_prev = state
        gates = torch.addmm(xp_t, h_prev, self.weight_hh.T)
        i, f, g, o = gates.chunk(4, dim=-1)
        c = torch.sigmoid(f) * c_prev + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        if self.proj_size:
            h = h @ self.weight_hr.T
        return h, LSTMState(h, c)

    def torch_kernel(self):
        weights = [self.weight_ih, self.weight_hh]
        if self.bias:
            weights += [self.bias_ih, self.bias_hh]
        if self.proj_size:
            weights.append(self.weight_hr)
        return "LSTM", weights
