"""Clockwork RNN (Koutnik, Greff, Gomez & Schmidhuber 2014).

The hidden units form ``g`` modules of ``H / g`` units with periods ``T_1 < T_2 < ... < T_g``
(default ``1, 2, 4, ..., 2^(g-1)``). At step t (counted from 0) only the modules whose period
divides t update; the others keep their value::

    a_t   = tanh(W_ih x_t + b_ih + (W_hh * M) h_{t-1} + b_hh)
    h_t^i = a_t^i        if t mod T_i == 0
          = h_{t-1}^i    otherwise                                   (module i)

``M`` is block upper triangular: module i receives from module j only when ``T_j >= T_i``, so
slower modules feed faster ones and never the reverse.

Example::

    cell = rnnlab.cells.create("clockwork", input_size=1, hidden_size=64, num_modules=4)
    y, state = rnnlab.Recurrent(cell)(torch.randn(100, 8, 1))   # state.t counts the steps

Attributes: ``weight_ih [H, I]``, biases ``[H]`` ~ U(-1/sqrt(H), 1/sqrt(H)); ``weight_hh [H, H]``
orthogonal (``init`` as for the other cells), masked by the buffer ``mask [H, H]``; ``periods``
(buffer ``[g]``). State :class:`ClockworkState` ``(h [B, H], t [B])``, ``t`` the step counter (a
float tensor so that it masks, moves and detaches like any state).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from rnnlab.cells.base import Cell, register
from rnnlab.cells.init import init_recurrent_, init_uniform_
from rnnlab.errors import ConfigError
from rnnlab.validation import check_positive


class ClockworkState(NamedTuple):
    """Hidden units ``h [B, H]`` and the index ``t [B]`` of the next step."""

    h: Tensor
    t: Tensor


@register("clockwork", "cwrnn")
class ClockworkCell(Cell):
    """Clockwork RNN cell; state :class:`ClockworkState`."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_modules: int = 4,
        periods: list[int] | None = None,
        init: str = "orthogonal",
    ) -> None:
        super().__init__()
        check_positive(input_size=input_size, hidden_size=hidden_size, num_modules=num_modules)
        periods = list(periods) if periods is not None else [2**i for i in range(num_modules)]
        if len(periods) != num_modules or any(p < 1 for p in periods) or periods != sorted(periods):
            raise ConfigError(f"periods must be {num_modules} increasing positive integers")
        if hidden_size % num_modules:
            raise ConfigError(
                f"hidden_size {hidden_size} must be a multiple of num_modules {num_modules}"
            )
        self.input_size, self.hidden_size, self.num_modules, self.init = (
            input_size,
            hidden_size,
            num_modules,
            init,
        )
        size = hidden_size // num_modules
        module_of_unit = torch.arange(hidden_size) // size
        unit_periods = torch.tensor(periods)[module_of_unit]
        self.register_buffer("periods", torch.tensor(periods, dtype=torch.float32))
        self.register_buffer("unit_periods", unit_periods.to(torch.float32))
        # row unit i may read column unit j when module(j) is at least as slow as module(i)
        mask = unit_periods.unsqueeze(0) >= unit_periods.unsqueeze(1)
        self.register_buffer("mask", mask.to(torch.float32))
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(hidden_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init_uniform_(self.weight_ih, self.hidden_size)
        init_recurrent_(self.weight_hh, 1, self.init)
        init_uniform_(self.bias_ih, self.hidden_size)
        init_uniform_(self.bias_hh, self.hidden_size)

    def init_state(self, batch, device=None, dtype=None) -> ClockworkState:
        h = torch.zeros(batch, self.hidden_size, device=device, dtype=dtype)
        return ClockworkState(h, torch.zeros(batch, device=device, dtype=dtype))

    def precompute(self, x: Tensor) -> Tensor:
        return x @ self.weight_ih.T + (self.bias_ih + self.bias_hh)

    def step(self, xp_t: Tensor, state: ClockworkState) -> tuple[Tensor, ClockworkState]:
        h, t = state
        candidate = torch.tanh(torch.addmm(xp_t, h, (self.weight_hh * self.mask).T))
        active = torch.remainder(t.unsqueeze(1), self.unit_periods) == 0
        h = torch.where(active, candidate, h)
        return h, ClockworkState(h, t + 1)
