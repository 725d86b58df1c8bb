"""The synthetic long-memory tasks: adding, copy, parity, order, selective-copy.

Data are generated on the fly (:mod:`rnnlab.data.synthetic`): training batch ``i`` of epoch ``e``
comes from a generator seeded from ``(--seed, e, i)``; the validation and test sets are fixed
(``--eval-examples`` each, default 1,000). An epoch is 1,000 batches. ``--length`` is the task's
``T``; with ``--curriculum`` (:mod:`rnnlab.training.curriculum`) the training batches are
generated at the curriculum's current length (from the same seeds), validation and test always
at ``--length``. Defaults follow Bai et al. (2018)'s supplement where it gives them (adding
1x130, clip 5; copy 1x50, dropout 0.05, clip 1).

=================  ========================================  ===================================
task               metric (evaluate)                         loss
=================  ========================================  ===================================
``adding``         ``mse`` (also ``loss``)                   MSE of the last step's output
``copy``           ``loss``; ``accuracy`` of the 10 copies,  cross-entropy over all ``T + 20``
                   ``baseline`` = 10 log 8 / (T + 20)        steps
``parity``         ``accuracy``                              cross-entropy at the last step
``order``          ``accuracy``                              cross-entropy at the last step
``selective-copy`` ``accuracy`` of the recalled tokens       cross-entropy over the last 8 steps
=================  ========================================  ===================================
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Iterator
from typing import Any, ClassVar

from torch import Tensor, nn
from torch.nn import functional as F

from rnnlab.data.synthetic import (
    ORDER_SYMBOLS,
    SyntheticStream,
    adding_problem,
    copy_memory,
    copy_memory_baseline,
    parity,
    selective_copy,
    temporal_order,
)
from rnnlab.errors import ConfigError
from rnnlab.tasks.base import register
from rnnlab.tasks.supervised import SequenceTask, add_common_arguments, model_device
from rnnlab.training.curriculum import build_curriculum

BATCHES_PER_EPOCH = 1000
COPY_SYMBOLS, COPY_LENGTH = 8, 10
SELECTIVE_SYMBOLS, SELECTIVE_TOKENS = 8, 8


class SyntheticTask(SequenceTask):
    """A task over a :class:`SyntheticStream`; subclasses define the stream and the loss."""

    metric, metric_mode = "accuracy", "max"
    has_accuracy: ClassVar[bool] = True
    min_length: ClassVar[int] = 1
    """The shortest ``--length`` the generator accepts (the lower bound of a curriculum)."""

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
        add_common_arguments(parser)
        parser.add_argument(
            "--length", type=int, help="sequence length T of a synthetic task (per task)"
        )

    def __init__(self, config: argparse.Namespace, run_dir=None):
        super().__init__(config, run_dir)
        length = getattr(config, "length", None)
        if not isinstance(length, int) or length < 1:
            raise ConfigError(f"--length must be a positive integer, got {length!r}")
        self.length = length
        eval_examples = getattr(config, "eval_examples", None) or 1000
        self.stream = SyntheticStream(
            self.generator(length), config.batch_size, config.seed, eval_examples
        )
        self.curriculum = build_curriculum(config, length, self.min_length)

    def generator(self, length: int):
        """``make(batch, generator) -> (inputs, targets)`` at sequence length ``length``."""
        raise NotImplementedError

    def steps_per_epoch(self) -> int:
        return BATCHES_PER_EPOCH

    def train_batches(self, epoch: int, start: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
        for index in range(start, BATCHES_PER_EPOCH):
            curriculum = self.curriculum  # read per batch: the length changes between steps
            make = None if curriculum is None else self.generator(curriculum.length)
            yield self.stream.train_batch(epoch, index, make)

    def outputs(self, model: nn.Module, x: Tensor) -> Tensor:
        """The predictions the loss compares with the targets."""
        raise NotImplementedError

    def batch_loss(self, prediction: Tensor, y: Tensor) -> Tensor:
        """Summed loss of one batch and the number of terms it sums (for the mean)."""
        return F.cross_entropy(prediction.flatten(0, -2), y.flatten(), reduction="sum")

    def loss(self, model: nn.Module, batch: Any, state: Any):
        x, y = batch
        loss = self.batch_loss(self.outputs(model, x), y) / y.numel()
        return loss, None, {"count": float(x.shape[1])}

    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        device = model_device(model)
        total, terms, correct = 0.0, 0, 0
        for x, y in self.stream.eval_batches(split):
            x, y = x.to(device), y.to(device)
            prediction = self.outputs(model, x)
            total += float(self.batch_loss(prediction, y))
            terms += y.numel()
            if self.has_accuracy:
                correct += self.correct(prediction, y)
        result = {"loss": total / terms}
        if self.has_accuracy:
            result["accuracy"] = correct / self.scored(terms)
        return result

    def scored(self, terms: int) -> int:
        """How many predictions the accuracy counts, out of the loss's ``terms``."""
        return terms

    def correct(self, prediction: Tensor, y: Tensor) -> int:
        return int((prediction.argmax(-1) == y).sum())


@register("adding")
class AddingTask(SyntheticTask):
    """The adding problem: regress the sum of the two marked values of ``T`` numbers."""

    metric, metric_mode = "mse", "min"
    has_accuracy = False
    min_length = 2
    defaults: ClassVar[dict[str, Any]] = {"length": 600, "hidden": 130, "clip_norm": 5.0}
    input_size, output_size = 2, 1

    def generator(self, length: int):
        return functools.partial(adding_problem, length=length)

    def outputs(self, model: nn.Module, x: Tensor) -> Tensor:
        return model.last(x).squeeze(-1)

    def batch_loss(self, prediction: Tensor, y: Tensor) -> Tensor:
        return F.mse_loss(prediction, y, reduction="sum")

    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        result = super().evaluate(model, split)
        return {"loss": result["loss"], "mse": result["loss"]}


@register("copy")
class CopyTask(SyntheticTask):
    """Copy memory: reproduce 10 symbols after ``T`` blanks (loss over all ``T + 20`` steps)."""

    metric, metric_mode = "loss", "min"
    defaults: ClassVar[dict[str, Any]] = {
        "length": 1000,
        "hidden": 50,
        "dropout": 0.05,
        "clip_norm": 1.0,
    }
    vocab_size = COPY_SYMBOLS + 2
    input_size, output_size = COPY_SYMBOLS + 2, COPY_SYMBOLS + 1

    def generator(self, length: int):
        return functools.partial(
            copy_memory, blanks=length, symbols=COPY_SYMBOLS, copy_length=COPY_LENGTH
        )

    def outputs(self, model: nn.Module, x: Tensor) -> Tensor:
        return model(x)

    def correct(self, prediction: Tensor, y: Tensor) -> int:
        copied = slice(-COPY_LENGTH, None)
        return int((prediction[copied].argmax(-1) == y[copied]).sum())

    def scored(self, terms: int) -> int:
        return terms * COPY_LENGTH // (self.length + 2 * COPY_LENGTH)

    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        result = super().evaluate(model, split)
        result["baseline"] = copy_memory_baseline(self.length, COPY_SYMBOLS, COPY_LENGTH)
        return result


@register("parity")
class ParityTask(SyntheticTask):
    """Parity (XOR) of ``T`` bits, supervised only at the last step."""

    defaults: ClassVar[dict[str, Any]] = {"length": 20, "hidden": 64, "clip_norm": 1.0}
    vocab_size = 2
    input_size, output_size = 2, 2

    def generator(self, length: int):
        return functools.partial(parity, length=length)

    def outputs(self, model: nn.Module, x: Tensor) -> Tensor:
        return model.last(x)


@register("order")
class TemporalOrderTask(SyntheticTask):
    """Temporal order: classify the order of two ``X``/``Y`` symbols among distractors."""

    defaults: ClassVar[dict[str, Any]] = {"length": 100, "hidden": 64, "clip_norm": 1.0}
    min_length = 10
    vocab_size = len(ORDER_SYMBOLS)
    input_size, output_size = len(ORDER_SYMBOLS), 4

    def generator(self, length: int):
        return functools.partial(temporal_order, length=length)

    def outputs(self, model: nn.Module, x: Tensor) -> Tensor:
        return model.last(x)


@register("selective-copy")
class SelectiveCopyTask(SyntheticTask):
    """Selective copying: recall 8 data tokens scattered among ``T`` noise steps, in order."""

    defaults: ClassVar[dict[str, Any]] = {"length": 200, "hidden": 128, "clip_norm": 1.0}
    min_length = SELECTIVE_TOKENS
    vocab_size = SELECTIVE_SYMBOLS + 2
    input_size, output_size = SELECTIVE_SYMBOLS + 2, SELECTIVE_SYMBOLS + 1

    def generator(self, length: int):
        return functools.partial(
            selective_copy, length=length, count=SELECTIVE_TOKENS, symbols=SELECTIVE_SYMBOLS
        )

    def outputs(self, model: nn.Module, x: Tensor) -> Tensor:
        return model(x)[-SELECTIVE_TOKENS:]
