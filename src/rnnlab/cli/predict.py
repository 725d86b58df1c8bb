"""``rnnlab predict``: run a trained model on inputs given on the command line.

What an input is depends on the run's task (its ``predict``): a surname for
``names-classify`` (prints the three likeliest languages), a sentence for ``sst`` (the
sentiment) and ``translate`` (the German translation), a language for ``names-generate``
(three generated surnames).

Examples::

    rnnlab predict --run runs/names Nguyen Schmidt "O'Neill"
    rnnlab predict --run runs/mt --beam 5 "a man is riding a bike."
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn

from rnnlab import tasks
from rnnlab.errors import ConfigError
from rnnlab.tasks.base import Task
from rnnlab.training import checkpoint
from rnnlab.training.config import make_config
from rnnlab.training.trainer import resolve_device


def load_run(
    run_dir: str | Path, tag: str = "best", device: str = "cpu", **overrides
) -> tuple[Task, nn.Module]:
    """The task (restored from the run's files, no data loaded) and its model with the weights
    of checkpoint ``tag`` (``best``, else ``last``), in eval mode on ``device``."""
    run_dir = Path(run_dir)
    saved = checkpoint.read_config(run_dir)
    config = make_config(saved["task"], base=saved, device=device, **overrides)
    task = tasks.create(config.task, config, run_dir)
    model = task.build_model()
    root = run_dir / checkpoint.CHECKPOINTS
    path = checkpoint.checkpoint_dir(run_dir, tag if (root / tag).exists() else "last")
    checkpoint.load_weights(model, path)
    return task, model.to(resolve_device(device)).eval()


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="classify, tag or translate inputs with a trained run",
        description="Run a trained model (its best checkpoint) on the given inputs, one output "
        "line per input.",
    )
    parser.add_argument("--run", required=True, metavar="DIR", help="the run directory")
    parser.add_argument("--checkpoint", default="best", help="checkpoint tag: best or last")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, ... (cpu)")
    parser.add_argument("--beam", type=int, help="beam size for decoding tasks (the run's)")
    parser.add_argument("inputs", nargs="+", metavar="TEXT", help="inputs to the model")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    overrides = {"beam": args.beam} if args.beam is not None else {}
    task, model = load_run(args.run, args.checkpoint, args.device, **overrides)
    if type(task).predict is Task.predict:
        raise ConfigError(f"task {task.name!r} has no predict; use `rnnlab sample` instead")
    with torch.no_grad():
        for line in task.predict(model, list(args.inputs)):
            print(line)
    return 0
