"""Sequential and permuted MNIST: classify a digit read one pixel per step (784 steps).

``seq-mnist`` reads the pixels in raster order, ``pmnist`` in one fixed random order drawn from
``--permutation-seed`` (default 0; the same permutation for every image, split and run). Pixels
are scaled to [0, 1] and normalised with MNIST's mean 0.1307 and deviation 0.3081 (as in
locuslab/TCN); the class is read from the output at step 784.

``--mnist-protocol standard`` trains on the 60,000 training images and validates and tests on the
10,000 test images (the papers' protocol; needs the training images). ``--mnist-protocol
test-split`` (*mnist-test-split*) uses only the 10,000 test images: 8,000 for training, 2,000 for
validation and test (see :mod:`rnnlab.data.mnist`); its numbers are not the papers' protocol.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnlab.data.mnist import PROTOCOLS, load_mnist_split
from rnnlab.errors import ConfigError, DataError
from rnnlab.tasks.base import register
from rnnlab.tasks.supervised import (
    SequenceTask,
    add_common_arguments,
    classification_counts,
    model_device,
)

MEAN, STD = 0.1307, 0.3081
PIXELS = 784


def pixel_sequences(images: Tensor, permutation: Tensor | None = None) -> Tensor:
    """uint8 images ``[N, 28, 28]`` -> normalised float pixel sequences ``[N, 784]``."""
    pixels = (images.reshape(len(images), PIXELS).float() / 255.0 - MEAN) / STD
    return pixels if permutation is None else pixels[:, permutation]


def fixed_permutation(seed: int) -> Tensor:
    """The pixel order of permuted MNIST for ``seed``: a permutation of 0..783."""
    return torch.randperm(PIXELS, generator=torch.Generator().manual_seed(seed))


@register("seq-mnist")
class SequentialMNIST(SequenceTask):
    """Pixel-by-pixel MNIST classification; ``accuracy`` picks the best checkpoint."""

    metric, metric_mode = "accuracy", "max"
    defaults: ClassVar[dict[str, Any]] = {
        "hidden": 130,
        "optimizer": "rmsprop",
        "lr": 1e-3,
        "clip_norm": 1.0,
        "batch_size": 64,
        "mnist_protocol": "standard",
    }
    input_size, output_size = 1, 10
    permuted: ClassVar[bool] = False

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
        add_common_arguments(parser)
        parser.add_argument(
            "--mnist-protocol",
            choices=PROTOCOLS,
            help="standard (60k/10k) or test-split (8k/2k of the 10k test images) (standard)",
        )
        parser.add_argument(
            "--permutation-seed", type=int, help="seed of permuted MNIST's pixel order (0)"
        )

    def __init__(self, config: argparse.Namespace, run_dir=None):
        super().__init__(config, run_dir)
        self.protocol = getattr(config, "mnist_protocol", None) or "standard"
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"--mnist-protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        seed = getattr(config, "permutation_seed", None) or 0
        self.permutation = fixed_permutation(seed) if self.permuted else None
        try:
            train = load_mnist_split("train", self.protocol, config.data_dir)
            test = load_mnist_split("test", self.protocol, config.data_dir)
        except DataError as error:
            if self.protocol != "standard":
                raise
            raise DataError(
                f"{error} (without the 60,000 training images, use --mnist-protocol test-split)"
            ) from None
        limit = getattr(config, "eval_examples", None)
        self.train_x, self.train_y = pixel_sequences(train[0], self.permutation), train[1]
        self.test_x = pixel_sequences(test[0][:limit], self.permutation)
        self.test_y = test[1][:limit]

    def steps_per_epoch(self) -> int:
        return len(self.train_y) // self.config.batch_size

    def train_batches(self, epoch: int, start: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
        generator = torch.Generator().manual_seed(self.config.seed * 100_003 + epoch)
        order = torch.randperm(len(self.train_y), generator=generator)
        size = self.config.batch_size
        for index in range(start, self.steps_per_epoch()):
            chosen = order[index * size : (index + 1) * size]
            yield self.train_x[chosen].t().unsqueeze(-1), self.train_y[chosen]

    def loss(self, model: nn.Module, batch: Any, state: Any):
        x, y = batch
        return F.cross_entropy(model.last(x), y), None, {"count": float(len(y))}

    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        if split not in ("valid", "test"):
            raise ConfigError(f"unknown split {split!r}; choose 'valid' or 'test'")
        device = model_device(model)
        total, correct = 0.0, 0
        size = max(self.config.batch_size, 256)
        for start in range(0, len(self.test_y), size):
            x = self.test_x[start : start + size].t().unsqueeze(-1).to(device)
            y = self.test_y[start : start + size].to(device)
            batch_loss, batch_correct = classification_counts(model.last(x), y)
            total, correct = total + batch_loss, correct + batch_correct
        count = len(self.test_y)
        return {"loss": total / count, "accuracy": correct / count}


@register("pmnist")
class PermutedMNIST(SequentialMNIST):
    """Permuted pixel-by-pixel MNIST (one fixed permutation from ``--permutation-seed``)."""

    permuted = True
