"""What the benchmark tasks share: a :class:`SequenceModel` over ``--cell`` and no carried state.

Each subclass sets ``input_size``, ``output_size`` (and ``vocab_size`` for token inputs) in its
``__init__`` and implements the data, the loss and the evaluation. The model is built from the
generic flags ``--cell --hidden --layers --dropout`` and the task flag ``--forget-bias``.
"""

from __future__ import annotations

import argparse
from typing import ClassVar

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnlab.models.sequence import SequenceModel, cell_options
from rnnlab.tasks.base import Task


def add_common_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Flags every benchmark task understands (a caller merging tasks keeps the first copy)."""
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
