"""From a vector to a cell's initial state: ``s_0 = tanh(W v + b)`` for each tensor of the state.

Works for any registered cell: the structure of the state (one tensor, or a NamedTuple such as
``LSTMState(h, c)``) is read from ``cell.init_state`` once, and one linear map is made per tensor.

Shapes: ``v [B, V]`` -> a state whose tensors are ``[B, *]``, like ``cell.init_state(B)``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnlab.cells.base import Cell
from rnnlab.sequences import State


class StateBridge(nn.Module):
    """Map a vector ``[B, V]`` to an initial state of ``cell`` (one ``tanh`` layer per tensor)."""

    def __init__(self, vector_size: int, cell: Cell):
        super().__init__()
        template = cell.init_state(1)
        tensors = [template] if isinstance(template, Tensor) else list(template)
        self.state_type = None if isinstance(template, Tensor) else type(template)
        self.maps = nn.ModuleList(nn.Linear(vector_size, t.shape[-1]) for t in tensors)

    def forward(self, vector: Tensor) -> State:
        parts = [torch.tanh(m(vector)) for m in self.maps]
        return parts[0] if self.state_type is None else self.state_type(*parts)
