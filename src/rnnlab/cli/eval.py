"""``rnnlab eval``: evaluate a trained run on its validation or test split (or another file).

Example::

    rnnlab eval --run runs/20261122-031500 --split test
"""

from __future__ import annotations

import argparse

import torch

from rnnlab.training.load import load_run


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("eval", help="print the loss of a trained run on a split")
    parser.add_argument("--run", required=True, metavar="DIR", help="run directory")
    parser.add_argument("--data", help="evaluate on this text file instead of the run's data")
    parser.add_argument("--split", choices=("valid", "test"), default="valid", help="(valid)")
    parser.add_argument("--checkpoint", choices=("best", "last"), help="which checkpoint (best)")
    parser.add_argument("--device", help="cpu, cuda, ... (the run's device)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    task, model, config = load_run(args.run, args.checkpoint, args.device, data=args.data)
    with torch.no_grad():
        metrics = task.evaluate(model, args.split)
    source = getattr(config, "data", None) or "the run's data"
    shown = " | ".join(f"{k} {v:.4f}" for k, v in metrics.items())
    print(f"{args.split} ({source}): {shown}")
    return 0
