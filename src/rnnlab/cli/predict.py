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

import torch

from rnnlab.errors import ConfigError
from rnnlab.tasks.base import Task
from rnnlab.training.load import load_run


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="classify, tag or translate inputs with a trained run",
        description="Run a trained model (its best checkpoint) on the given inputs, one output "
        "line per input.",
    )
    parser.add_argument("--run", required=True, metavar="DIR", help="the run directory")
    parser.add_argument("--checkpoint", choices=("best", "last"), help="which checkpoint (best)")
    parser.add_argument("--device", help="cpu, cuda, ... (the run's device)")
    parser.add_argument("--beam", type=int, help="beam size for decoding tasks (the run's)")
    parser.add_argument("inputs", nargs="+", metavar="TEXT", help="inputs to the model")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    overrides = {"beam": args.beam} if args.beam is not None else {}
    task, model, _ = load_run(args.run, args.checkpoint, args.device, **overrides)
    if type(task).predict is Task.predict:
        raise ConfigError(f"task {task.name!r} has no predict; use `rnnlab sample` instead")
    with torch.no_grad():
        for line in task.predict(model, list(args.inputs)):
            print(line)
    return 0
