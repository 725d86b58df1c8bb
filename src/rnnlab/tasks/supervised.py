"""What the benchmark tasks share: a :class:`SequenceModel` over ``--cell`` and no carried state.

Each subclass sets ``input_size``, ``output_size`` (and ``vocab_size`` for token inputs) in its
``__init__`` and implements the data, the loss and the evaluation. The model is built from the
generic flags ``--cell --hidden --layers --dropout`` and the task flag ``--forget-bias``; with
``--model tcn`` it is the non-recurrent baseline :class:`TCNSequenceModel` instead (``--hidden``
channels, ``--layers`` residual blocks, ``--kernel-size``).
"""

from __future__ import annotations

import argparse
from typing import ClassVar

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnlab.models.sequence import SequenceModel, cell_options
from rnnlab.models.tcn import TCNSequenceModel
from rnnlab.tasks.base import Task

MODELS = ("recurrent", "tcn")
TCN_KERNEL_SIZE = 2


def add_common_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Flags every benchmark task takes (each task adds its own copy to its own parser)."""
    parser.add_argument(
        "--forget-bias",
        type=float,
        help="initial forget-gate bias of cells that have one (the cell's default, 1.0)",
    )
    parser.add_argument(
        "--eval-examples",
        type=int,
        help="examples in each evaluation set (synthetic: generated; real data: the first N)",
    )
    parser.add_argument(
        "--model",
        choices=MODELS,
        default="recurrent",
        help="recurrent: layers of --cell; tcn: the temporal convolutional network baseline with "
        "--hidden channels and --layers blocks (recurrent)",
    )
    parser.add_argument(
        "--kernel-size",
        type=int,
        help=f"--model tcn: convolution width ({TCN_KERNEL_SIZE})",
    )


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


class SequenceTask(Task):
    """Base of the benchmark tasks: builds the model; subclasses supply data, loss, evaluation."""

    input_size: int
    output_size: int
    vocab_size: ClassVar[int | None] = None

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
        add_common_arguments(parser)

    def build_model(self) -> nn.Module:
        c = self.config
        if getattr(c, "model", "recurrent") == "tcn":
            return TCNSequenceModel(
                self.input_size,
                c.hidden,
                c.layers,
                self.output_size,
                kernel_size=getattr(c, "kernel_size", None) or TCN_KERNEL_SIZE,
                dropout=c.dropout,
                vocab_size=self.vocab_size,
            )
        return SequenceModel(
            c.cell,
            self.input_size,
            c.hidden,
            self.output_size,
            num_layers=c.layers,
            dropout=c.dropout,
            vocab_size=self.vocab_size,
            cell_options={
                **cell_options(c.cell, getattr(c, "forget_bias", None)),
                **getattr(c, "cell_options", {}),
            },
        )


def classification_counts(logits: Tensor, targets: Tensor) -> tuple[float, int]:
    """Summed cross-entropy and correct predictions of ``logits [N, C]`` for ``targets [N]``."""
    loss = F.cross_entropy(logits, targets, reduction="sum")
    return float(loss), int((logits.argmax(-1) == targets).sum())
