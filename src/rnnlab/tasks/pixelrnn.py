"""``pixelrnn``: a Row LSTM PixelRNN on binarised MNIST digits, NLL in bits per dimension.

Data: the 10,000 MNIST test images (:mod:`rnnlab.data.mnist`, *mnist-test-split* protocol),
binarised at grey level 128 (pixel = 1 when >= 128). The 2,000 held-out images (``i % 5 == 4``)
are the test split; of the other 8,000, the last 500 are the validation split and 7,500 train.
Numbers are therefore labelled *mnist-test-split, threshold-binarised* and are not comparable
with the paper's stochastically binarised MNIST (79.2 nats for the Row LSTM's larger sibling).

Model: :class:`~rnnlab.models.pixel_rnn.PixelRNN` with ``--hidden`` channels and ``--layers``
Row LSTM layers. Reports ``loss`` in nats per pixel, ``bits_per_dim`` (= loss / ln 2) and
``nats_per_image`` (= loss x 784). ``sample`` (every ``--sample-every`` steps and at the end of
``rnnlab sample``) writes a PNG grid of 16 generated digits into the run directory.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.data.mnist import load_mnist_split
from rnnlab.models.pixel_rnn import PixelRNN
from rnnlab.tasks.base import Task, register

VALID_IMAGES = 500
THRESHOLD = 128
LN2 = math.log(2.0)


def binarise(images: Tensor) -> Tensor:
    """uint8 grey images ``[N, 28, 28]`` -> float ``[N, 1, 28, 28]`` of 0./1. (>= 128 is 1)."""
    return (images >= THRESHOLD).float().unsqueeze(1)


@register("pixelrnn")
class PixelRNNTask(Task):
    """Generative modelling of binarised MNIST digits, pixel by pixel, with a Row LSTM."""

    unit = "images"
    defaults = {
        "hidden": 32,
        "layers": 2,
        "batch_size": 32,
        "lr": 1e-3,
        "clip_norm": 1.0,
        "max_minutes": 6.0,
        "eval_every": 200,
        "sample_every": 500,
    }

    def __init__(self, config, run_dir: Path | None = None):
        super().__init__(config, run_dir)
        self._images: dict[str, Tensor] = {}

    def images(self, split: str) -> Tensor:
        """Binarised images ``[N, 1, 28, 28]`` of ``"train"``, ``"valid"`` or ``"test"``."""
        if not self._images:
            data_dir = self.config.data_dir
            rest, _ = load_mnist_split("train", "test-split", data_dir)
            held_out, _ = load_mnist_split("test", "test-split", data_dir)
            self._images = {
                "train": binarise(rest[:-VALID_IMAGES]),
                "valid": binarise(rest[-VALID_IMAGES:]),
                "test": binarise(held_out),
            }
        return self._images[split]

    def build_model(self) -> nn.Module:
        return PixelRNN(channels=self.config.hidden, layers=self.config.layers)

    def steps_per_epoch(self) -> int:
        return -(-len(self.images("train")) // self.config.batch_size)

    def train_batches(self, epoch: int, start: int = 0) -> Iterator[Tensor]:
        images = self.images("train")
        generator = torch.Generator().manual_seed(self.config.seed * 100_003 + epoch)
        order = torch.randperm(len(images), generator=generator)
        size = self.config.batch_size
        for first in range(start * size, len(order), size):
            yield images[order[first : first + size]]

    def loss(self, model: nn.Module, batch: Tensor, state: Any):
        loss = F.binary_cross_entropy_with_logits(model(batch), batch)
        return loss, None, {"count": float(len(batch))}

    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        images = self.images(split)
        device = next(model.parameters()).device
        total = 0.0
        for first in range(0, len(images), 250):
            x = images[first : first + 250].to(device)
            total += float(F.binary_cross_entropy_with_logits(model(x), x, reduction="sum"))
        loss = total / images.numel()
        pixels = images[0].numel()
        return {"loss": loss, "bits_per_dim": loss / LN2, "nats_per_image": loss * pixels}

    @torch.no_grad()
    def sample(self, model: nn.Module, seed: int | None = None, count: int = 16, **_: Any) -> str:
        """Draw ``count`` digits and write them as a PNG grid into the run directory."""
        generator = torch.Generator().manual_seed(self.config.seed if seed is None else seed)
        images = model.sample(count, (28, 28), generator=generator).cpu()
        path = Path(self.run_dir or self.config.out or ".") / (
            f"samples-seed{seed}.png" if seed is not None else "samples.png"
        )
        save_image_grid(images, path)
        return f"wrote {count} samples to {path}"


def save_image_grid(images: Tensor, path: Path, columns: int = 8) -> None:
    """Write ``[N, 1, Y, X]`` images in ``[0, 1]`` as one grey PNG grid (matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    count = len(images)
    rows = -(-count // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(columns, rows), squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index < count:
            ax.imshow(images[index, 0].numpy(), cmap="gray", vmin=0, vmax=1)
    fig.tight_layout(pad=0.1)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
