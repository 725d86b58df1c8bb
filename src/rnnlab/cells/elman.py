"""Elman RNN: the vanilla recurrent network of the notes.

    h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh),   act = tanh (default) or relu
    y_t = h_t

Example::

    cell = rnnlab.cells.create("rnn", input_size=65, hidden_size=128)
    y, h = cell(torch.randn(4, 65))

Attributes: ``weight_ih [H, I]`` and ``bias_ih``, ``bias_hh [H]`` ~ U(-1/sqrt(H), 1/sqrt(H));
``weight_hh [H, H]`` orthogonal by default (``init="uniform"`` for torch's, ``"identity"`` for the
IRNN of Le et al.). Parameter names are torch.nn.RNNCell's.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnlab.cells.base import Cell, register
from rnnlab.cells.init import init_recurrent_, init_uniform_
from rnnlab.errors import ConfigError
from rnnlab.validation import check_positive

NONLINEARITIES = {"tanh": torch.tanh, "relu": torch.relu}


@register("rnn", "elman")
class ElmanCell(Cell):
    """Elman (vanilla) RNN cell with tanh or relu; state ``h [B, H]``."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        nonlinearity: str = "tanh",
        bias: bool = True,
        init: str = "orthogonal",
    ) -> None:
        super().__init__()
        check_positive(input_size=input_size, hidden_size=hidden_size)
        if nonlinearity not in NONLINEARITIES:
            raise ConfigError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.input_size, self.hidden_size = input_size, hidden_size
        self.nonlinearity, self.bias, self.init = nonlinearity, bias, init
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(hidden_size))
            self.bias_hh = nn.Parameter(torch.empty(hidden_size))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init_uniform_(self.weight_ih, self.hidden_size)
        init_recurrent_(self.weight_hh, 1, self.init)
        if self.bias:
            init_uniform_(self.bias_ih, self.hidden_size)
            init_uniform_(self.bias_hh, self.hidden_size)

    def init_state(self, batch, device=None, dtype=None) -> Tensor:
        return torch.zeros(batch, self.hidden_size, device=device, dtype=dtype)

    def precompute(self, x: Tensor) -> Tensor:
        xp = x @ self.weight_ih.T
        if self.bias:
            xp = xp + (self.bias_ih + self.bias_hh)
        return xp

    def step(self, xp_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        h = NONLINEARITIES[self.nonlinearity](torch.addmm(xp_t, state, self.weight_hh.T))
        return h, h

    def torch_kernel(self):
        mode = "RNN_TANH" if self.nonlinearity == "tanh" else "RNN_RELU"
        weights = [self.weight_ih, self.weight_hh]
        if self.bias:
            weights += [self.bias_ih, self.bias_hh]
        return mode, weights
