"""A trained language model as a one-step generation graph (TorchScript).

The exported module computes one step with the state as input and output::

    step = torch.jit.load("model.step.pt")
    logits, *state = step(token, *state)     # token [B] long -> logits [B, V]; state: tensors

``state`` is the model's recurrent state flattened to a tuple of tensors, layer by layer
(``h`` for GRU/Elman layers, ``h, c`` for LSTM layers), each ``[B, hidden]``; start from zeros
(:func:`zero_state` gives the shapes). The graph is traced from the model, so it runs without
rnnlab (``torch.jit.load`` only).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn


def _flatten(state) -> list[Tensor]:
    if isinstance(state, Tensor):
        return [state]
    return [t for part in state for t in _flatten(part)]


class StepGraph(nn.Module):
    """``forward(token [B], *state) -> (logits [B, V], *state)`` for a ``LanguageModel``."""

    def __init__(self, model: nn.Module, leaves_per_layer: list[int]):
        super().__init__()
        self.model = model
        self.leaves_per_layer = leaves_per_layer

    def forward(self, token: Tensor, *state: Tensor):
        layers, i = [], 0
        for count in self.leaves_per_layer:
            part = list(state[i : i + count])
            layers.append(part[0] if count == 1 else part)
            i += count
        logits, new_state = self.model(token.view(1, -1), layers)
        return (logits[0], *_flatten(new_state))


def zero_state(model: nn.Module, batch: int = 1) -> tuple[list[Tensor], list[int]]:
    """Zeros for every state tensor of ``model`` at ``batch``, and the tensors per layer."""
    device = next(model.parameters()).device
    with torch.no_grad():
        _, state = model(torch.zeros(1, batch, dtype=torch.long, device=device))
    leaves = [_flatten(layer) for layer in state]
    return [torch.zeros_like(t) for part in leaves for t in part], [len(p) for p in leaves]


def export_torchscript(model: nn.Module, path: str | Path) -> tuple[torch.jit.ScriptModule, int]:
    """Trace ``model``'s one-step graph to ``path``; returns it and the number of state tensors."""
    model.eval()
    state, leaves_per_layer = zero_state(model)
    graph = StepGraph(model, leaves_per_layer).eval()
    token = torch.zeros(1, dtype=torch.long, device=state[0].device)
    with torch.no_grad():
        traced = torch.jit.trace(graph, (token, *state), check_trace=False)
    traced.save(str(path))
    return traced, len(state)
