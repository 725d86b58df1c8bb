"""Analyses of a training run: load its model, and read a char LM's activations per character.

``load_run(run_dir)`` rebuilds the task and model of a run directory written by
``rnnlab train`` (``config.json`` + ``checkpoints/<tag>/model.safetensors``).
``char_activations(task, model, text)`` runs a ``charlm`` model over ``text`` and returns one
hidden vector per character, ``[T, H]``: the state after reading that character.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from rnnlab import tasks
from rnnlab.analysis.gradients import model_cells, recording_states
from rnnlab.cells.base import Cell
from rnnlab.errors import ConfigError
from rnnlab.layers.unroll import Recurrent
from rnnlab.tasks.base import Task
from rnnlab.training import checkpoint
from rnnlab.training.config import make_config


def load_run(run_dir: str | Path, tag: str = "best") -> tuple[Task, nn.Module]:
    """``(task, model in eval mode on the CPU)`` of a run; ``tag`` is ``best``, ``last`` or a
    ``step-N`` folder (``best`` falls back to ``last`` when the run never validated)."""
    run_dir = Path(run_dir)
    saved = checkpoint.read_config(run_dir)
    config = make_config(saved["task"], base=saved, device="cpu")
    if tag == "best" and not (run_dir / checkpoint.CHECKPOINTS / "best").exists():
        tag = "last"
    task = tasks.create(config.task, config, run_dir)
    model = task.build_model()
    checkpoint.load_weights(model, checkpoint.checkpoint_dir(run_dir, tag))
    return task, model.eval()


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
