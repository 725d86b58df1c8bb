"""Load a finished (or interrupted) run for sampling and evaluation."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from torch import nn

from rnnlab import tasks
from rnnlab.tasks.base import Task
from rnnlab.training import checkpoint
from rnnlab.training.config import make_config
from rnnlab.training.trainer import resolve_device


def load_run(
    run_dir: str | Path, tag: str | None = None, device: str | None = None, **overrides: Any
) -> tuple[Task, nn.Module, argparse.Namespace]:
    """``(task, model in eval mode, config)`` of the run in ``run_dir``.

    ``tag`` is ``"best"`` or ``"last"`` (default: ``best`` when it exists); ``overrides``
    replace settings of the run's configuration (``data=...`` to evaluate on another file).
    """
    run_dir = Path(run_dir)
    saved = checkpoint.read_config(run_dir)
    config = make_config(saved["task"], base=saved, device=device, **overrides)
    if tag is None:
        tag = "best" if (run_dir / checkpoint.CHECKPOINTS / "best").exists() else "last"
    path = checkpoint.checkpoint_dir(run_dir, tag)
    task = tasks.create(config.task, config, run_dir)
    model = task.build_model()
    checkpoint.load_weights(model, path)
    model.to(resolve_device(config.device)).eval()
    return task, model, config
