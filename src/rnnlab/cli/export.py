"""``rnnlab export``: a trained char LM as a one-step TorchScript generation graph.

Example::

    rnnlab export --run runs/20261122-031500 --format torchscript   # -> DIR/model.step.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from rnnlab.errors import ConfigError
from rnnlab.training.export import StepGraph, export_torchscript, zero_state
from rnnlab.training.load import load_run


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export", help="export a trained language model as a one-step generation graph"
    )
    parser.add_argument("--run", required=True, metavar="DIR", help="run directory")
    parser.add_argument("--format", choices=("torchscript",), default="torchscript")
    parser.add_argument("--out", metavar="FILE", help="where to write (DIR/model.step.pt)")
    parser.add_argument("--checkpoint", choices=("best", "last"), help="which checkpoint (best)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    task, model, config = load_run(args.run, args.checkpoint, "cpu")
    if config.task != "charlm":
        raise ConfigError(f"export supports the charlm task, not {config.task!r}")
    out = Path(args.out) if args.out else Path(args.run) / "model.step.pt"
    _, count = export_torchscript(model, out)
    difference = check_export(model, torch.jit.load(str(out)))
    print(
        f"wrote {out}: logits, *state = step(token [B], *state) with {count} state tensor(s); "
        f"largest difference to PyTorch over 20 steps {difference:.2e}"
    )
    return 0


def check_export(model: torch.nn.Module, loaded: torch.nn.Module, steps: int = 20) -> float:
    """Largest absolute difference of logits and state between ``loaded`` and ``model`` run step
    by step on random tokens (batch 2)."""
    generator = torch.Generator().manual_seed(0)
    vocab = model.decoder.out_features
    state, leaves = zero_state(model, batch=2)
    reference = StepGraph(model, leaves).eval()
    ours, theirs, worst = list(state), list(state), 0.0
    with torch.no_grad():
        for _ in range(steps):
            token = torch.randint(vocab, (2,), generator=generator)
            a_logits, *ours = reference(token, *ours)
            b_logits, *theirs = loaded(token, *theirs)
            for a, b in zip([a_logits, *ours], [b_logits, *theirs], strict=True):
                worst = max(worst, float((a - b).abs().max()))
    return worst
