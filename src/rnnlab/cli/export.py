"""``rnnlab export``: a trained language model as a one-step generation graph.

Examples::

    rnnlab export --run runs/20261122-031500                  # TorchScript: DIR/model.step.pt
    rnnlab export --run runs/20261122-031500 --format onnx    # ONNX: DIR/model.step.onnx

After writing, the export is run step by step against the PyTorch model (TorchScript with
``torch.jit.load``, ONNX with onnxruntime) and the largest difference is printed; above
:data:`TOLERANCE` the command fails.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from rnnlab.errors import ConfigError
from rnnlab.models.language_model import LanguageModel
from rnnlab.training.export import (
    OnnxRuntimeStep,
    export_onnx,
    export_torchscript,
    max_step_difference,
    require_onnx,
)
from rnnlab.training.load import load_run

SUFFIXES = {"torchscript": ".pt", "onnx": ".onnx"}
TOLERANCE = 1e-4
CHECK_STEPS = 20


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export", help="export a trained language model as a one-step generation graph"
    )
    parser.add_argument("--run", required=True, metavar="DIR", help="run directory")
    parser.add_argument(
        "--format",
        choices=tuple(SUFFIXES),
        default="torchscript",
        help="torchscript (default) or onnx (needs pip install 'rnnlab[onnx]')",
    )
    parser.add_argument(
        "--out", metavar="FILE", help="where to write (DIR/model.step.pt or DIR/model.step.onnx)"
    )
    parser.add_argument("--checkpoint", choices=("best", "last"), help="which checkpoint (best)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.format == "onnx":
        require_onnx()  # before loading anything
    task, model, config = load_run(args.run, args.checkpoint, "cpu")
    if not isinstance(model, LanguageModel):
        raise ConfigError(
            f"export writes language models (task charlm and the tasks built on it such as "
            f"wordlm), not the {config.task!r} task's model"
        )
    out = Path(args.out) if args.out else Path(args.run) / f"model.step{SUFFIXES[args.format]}"
    if args.format == "onnx":
        count = export_onnx(model, out)
        step, engine = OnnxRuntimeStep(out), "onnxruntime"
    else:
        _, count = export_torchscript(model, out)
        step, engine = torch.jit.load(str(out)), "torch.jit"
    difference = max_step_difference(model, step, steps=CHECK_STEPS)
    print(
        f"wrote {out}: logits, *state = step(token [B], *state) with {count} state tensor(s); "
        f"largest difference to PyTorch over {CHECK_STEPS} steps ({engine}) {difference:.2e}"
    )
    if not difference <= TOLERANCE:
        print(f"error: the export differs from the PyTorch model by more than {TOLERANCE:g}")
        return 1
    return 0
