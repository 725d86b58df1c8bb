"""``rnnlab eval``: evaluate a trained run on its validation or test split (or another file).

Example::

    rnnlab eval --run runs/20261122-031500 --split test
    rnnlab eval --run runs/20261122-031500 --split test --dynamic --dynamic-lr 0.1
"""

from __future__ import annotations

import argparse

import torch

from rnnlab.errors import ConfigError
from rnnlab.training.dynamic_eval import dynamic_evaluation
from rnnlab.training.load import load_run


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("eval", help="print the loss of a trained run on a split")
    parser.add_argument("--run", required=True, metavar="DIR", help="run directory")
    parser.add_argument("--data", help="evaluate on this text file instead of the run's data")
    parser.add_argument("--split", choices=("valid", "test"), default="valid", help="(valid)")
    parser.add_argument("--checkpoint", choices=("best", "last"), help="which checkpoint (best)")
    parser.add_argument("--device", help="cpu, cuda, ... (the run's device)")
    parser.add_argument(
        "--dynamic",
        action="store_true",
        help="charlm: also adapt the weights by SGD on each chunk after predicting it, and "
        "report static and dynamic loss",
    )
    parser.add_argument(
        "--dynamic-lr", type=float, default=0.1, help="SGD learning rate of --dynamic (0.1)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    task, model, config = load_run(args.run, args.checkpoint, args.device, data=args.data)
    if args.dynamic:
        return _dynamic(task, model, config, args)
    with torch.no_grad():
        metrics = task.evaluate(model, args.split)
    source = getattr(config, "data", None) or "the run's data"
    shown = " | ".join(f"{k} {v:.4f}" for k, v in metrics.items())
    print(f"{args.split} ({source}): {shown}")
    return 0


def _dynamic(task, model, config, args: argparse.Namespace) -> int:
    if not hasattr(task, "ids") or not hasattr(model, "loss"):
        raise ConfigError(f"--dynamic needs a language-model task (charlm), not {config.task!r}")
    if args.dynamic_lr <= 0:
        raise ConfigError(f"--dynamic-lr must be positive, got {args.dynamic_lr}")
    ids = task.ids(args.split)
    metrics = dynamic_evaluation(model, ids, config.seq_len, args.dynamic_lr)
    source = getattr(config, "data", None) or "the run's data"
    m = metrics
    print(
        f"{args.split} ({source}, one stream of {ids.numel():,} tokens): static loss "
        f"{m['static_loss']:.4f} | bpc {m['static_bpc']:.4f} ; dynamic (lr "
        f"{args.dynamic_lr:g}) loss {m['dynamic_loss']:.4f} | bpc {m['dynamic_bpc']:.4f}"
    )
    return 0
