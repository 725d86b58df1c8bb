"""Analyses of a char LM run (loaded with :func:`rnnlab.training.load.load_run`).

``char_activations(task, model, text)`` runs the model over ``text`` and returns one hidden
vector per character, ``[T, H]``: the state after reading that character.
``first_cell_inputs`` gives the inputs its first cell sees (the embedded characters).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from rnnlab.analysis.gradients import model_cells, recording_states
from rnnlab.cells.base import Cell
from rnnlab.errors import ConfigError
from rnnlab.layers.unroll import Recurrent
from rnnlab.tasks.base import Task


def first_cell(model: nn.Module) -> Cell:
    """The model's first (lowest) recurrent cell."""
    return model_cells(model)[0]


def default_python_text(task: Task) -> str:
    """Text the model did not train on: the run's test split (valid when test is empty)."""
    corpus = task.corpus
    return corpus.split("test") or corpus.split("valid")


@torch.no_grad()
def first_cell_inputs(task: Task, model: nn.Module, texts: list[str]) -> tuple[Cell, Tensor]:
    """``(first cell, its inputs [T, B, I])`` when the char LM reads ``texts`` (B strings of
    equal length T): the embedded characters the cell sees."""
    vocab = _vocab(task)
    ids = torch.stack([vocab.encode(t) for t in texts], dim=1)
    recurrent = next(m for m in model.modules() if isinstance(m, Recurrent))
    seen: list[Tensor] = []
    handle = recurrent.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    try:
        model(ids)
    finally:
        handle.remove()
    x = seen[0].transpose(0, 1) if recurrent.batch_first else seen[0]
    return recurrent.cell, x


def _vocab(task: Task):
    vocab = getattr(task, "vocab", None)
    if vocab is None:
        raise ConfigError(f"task {task.name!r} has no character vocabulary; use a charlm run")
    return vocab


@torch.no_grad()
def char_activations(
    task: Task, model: nn.Module, text: str, state: str = "h", layer: int = -1
) -> np.ndarray:
    """``[len(text), H]``: after each character, the ``layer``-th cell's ``h`` (its output) or,
    for an LSTM, its cell state ``c``."""
    ids = _vocab(task).encode(text).view(-1, 1)
    with recording_states(model, layer) as (states, outputs):
        model(ids)
    if state == "h":
        return torch.cat(outputs, dim=0).double().numpy()
    if not isinstance(states[-1], tuple) or not hasattr(states[-1], "c"):
        raise ConfigError("--state c needs a cell with a cell state c (an LSTM)")
    return torch.cat([s.c for s in states[1:]], dim=0).double().numpy()
