"""A cell as a user's own package would define it: outside ``src/rnnlab``, unregistered, reaching
rnnlab through the ``rnnlab.cells`` entry-point group (tests/test_cells_registry.py)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnlab.cells import Cell


class LeakyCell(Cell):
    """A leaky tanh unit: ``h_t = (1 - a) h_{t-1} + a tanh(W x_t + U h_{t-1} + b)``, ``a = 0.5``."""

    def __init__(self, input_size: int, hidden_size: int, leak: float = 0.5) -> None:
        super().__init__()
        self.input_size, self.hidden_size, self.leak = input_size, hidden_size, leak
        self.w = nn.Linear(input_size, hidden_size)
        self.u = nn.Linear(hidden_size, hidden_size, bias=False)

    def init_state(self, batch, device=None, dtype=None) -> Tensor:
        return torch.zeros(batch, self.hidden_size, device=device, dtype=dtype)

    def precompute(self, x: Tensor) -> Tensor:
        return self.w(x)

    def step(self, xp_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        h = (1 - self.leak) * state + self.leak * torch.tanh(xp_t + self.u(state))
        return h, h
