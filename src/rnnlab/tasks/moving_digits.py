"""``moving-digits``: next-frame prediction of bouncing MNIST digits with ConvLSTM layers.

Data: videos from :func:`rnnlab.data.moving_digits.moving_digits` (``--frames`` frames of 64x64,
two digits). Training videos are generated on the fly from the 8,000 non-held-out MNIST test
images (*mnist-test-split* protocol), a fresh, seeded set for every batch; the validation (64
videos, seed 1) and test (256 videos, seed 2) videos use the 2,000 held-out images, so they show
digits never seen in training. Model: :class:`~rnnlab.models.frame_predictor.
ConvLSTMFramePredictor` (``--hidden`` channels, ``--layers``, ``--kernel-size``).

Reports, in nats per pixel (binary cross-entropy, pixels in ``[0, 1]``):

* ``loss``: predicting each frame from the true frames before it (teacher forcing);
* ``rollout_loss``: predicting the last ``--frames - --context`` frames from the first
  ``--context`` ones, each predicted frame fed back; ``rollout_ce`` is the same summed over the
  predicted frames of one video (the "cross-entropy per sequence" of Shi et al.);
* ``copy_loss``: the reference of predicting each frame as a copy of the one before.

``sample`` writes a PNG strip (true frames, next-frame predictions, rollout) into the run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.data.mnist import load_mnist_split
from rnnlab.data.moving_digits import moving_digits
from rnnlab.errors import ConfigError
from rnnlab.models.frame_predictor import ConvLSTMFramePredictor
from rnnlab.tasks.base import Task, register

BATCHES_PER_EPOCH = 100
EVAL_VIDEOS = {"valid": (64, 1), "test": (256, 2)}
COPY_EPS = 1e-3


@register("moving-digits")
class MovingDigits(Task):
    """Predict the next frame of videos of bouncing digits with ConvLSTM layers."""

    unit = "videos"
    defaults = {
        "hidden": 32,
        "layers": 1,
        "batch_size": 8,
        "lr": 2e-3,
        "clip_norm": 1.0,
        "max_minutes": 8.0,
        "eval_every": 100,
        "sample_every": 100,
    }

    @classmethod
    def add_arguments(cls, parser) -> None:
        parser.add_argument(
            "--frames", type=int, default=20, help="moving-digits: frames per video (20)"
        )
        parser.add_argument(
            "--context",
            type=int,
            default=10,
            help="moving-digits: true frames given before the rollout (10)",
        )
        parser.add_argument(
            "--kernel-size", type=int, default=3, help="moving-digits: ConvLSTM kernel size (3)"
        )

    def __init__(self, config, run_dir: Path | None = None):
        super().__init__(config, run_dir)
        if not 1 <= config.context < config.frames:
            raise ConfigError(
                f"--context must be between 1 and --frames - 1, got {config.context} "
                f"with --frames {config.frames}"
            )
        self._digits: dict[str, Tensor] = {}
        self._videos: dict[str, Tensor] = {}

    def digits(self, part: str) -> Tensor:
        """``"train"``: the 8,000 non-held-out test images; ``"test"``: the 2,000 held out."""
        if part not in self._digits:
            self._digits[part], _ = load_mnist_split(part, "test-split", self.config.data_dir)
        return self._digits[part]

    def videos(self, split: str) -> Tensor:
        if split not in self._videos:
            count, seed = EVAL_VIDEOS[split]
            self._videos[split] = moving_digits(
                self.digits("test"), count, self.config.frames, seed=seed
            )
        return self._videos[split]

    def build_model(self) -> nn.Module:
        c = self.config
        return ConvLSTMFramePredictor(1, c.hidden, c.layers, c.kernel_size)

    def steps_per_epoch(self) -> int:
        return BATCHES_PER_EPOCH

    def train_batches(self, epoch: int, start: int = 0) -> Iterator[Tensor]:
        c = self.config
        for index in range(start, BATCHES_PER_EPOCH):
            seed = 1_000_003 * (c.seed + 1) + BATCHES_PER_EPOCH * epoch + index
            yield moving_digits(self.digits("train"), c.batch_size, c.frames, seed=seed)

    def loss(self, model: nn.Module, batch: Tensor, state: Any):
        loss = F.binary_cross_entropy_with_logits(model(batch[:, :-1]), batch[:, 1:])
        return loss, None, {"count": float(len(batch))}

    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        videos = self.videos(split)
        device = next(model.parameters()).device
        context = self.config.context
        future = videos.shape[1] - context
        teacher = rollout = copy = 0.0
        for first in range(0, len(videos), 32):
            v = videos[first : first + 32].to(device)
            teacher += float(
                F.binary_cross_entropy_with_logits(model(v[:, :-1]), v[:, 1:], reduction="sum")
            )
            predicted = model.rollout(v[:, :context], future).clamp(1e-7, 1 - 1e-7)
            rollout += float(F.binary_cross_entropy(predicted, v[:, context:], reduction="sum"))
            previous = v[:, :-1].clamp(COPY_EPS, 1 - COPY_EPS)
            copy += float(F.binary_cross_entropy(previous, v[:, 1:], reduction="sum"))
        pixels = videos[0, 0].numel()
        steps = videos.shape[1] - 1
        return {
            "loss": teacher / (len(videos) * steps * pixels),
            "rollout_loss": rollout / (len(videos) * future * pixels),
            "rollout_ce": rollout / len(videos),
            "copy_loss": copy / (len(videos) * steps * pixels),
        }

    @torch.no_grad()
    def sample(self, model: nn.Module, seed: int | None = None, **_: Any) -> str:
        """Write a PNG strip of two test videos: truth, next-frame predictions, rollout."""
        videos = self.videos("test")[:2]
        device = next(model.parameters()).device
        v = videos.to(device)
        context = self.config.context
        next_frame = torch.sigmoid(model(v[:, :-1])).cpu()
        rollout = model.rollout(v[:, :context], v.shape[1] - context).cpu()
        path = Path(self.run_dir or self.config.out or ".") / (
            f"frames-seed{seed}.png" if seed is not None else "frames.png"
        )
        save_frame_strip(videos, next_frame, rollout, context, path)
        return f"wrote predicted vs true frames to {path}"


def save_frame_strip(
    videos: Tensor, next_frame: Tensor, rollout: Tensor, context: int, path: Path
) -> None:
    """For each video three rows: the true frames; the next-frame predictions (under frames
    1..T-1); the rollout after ``context`` true frames (under frames context..T-1)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    count, steps = videos.shape[:2]
    fig, axes = plt.subplots(3 * count, steps, figsize=(steps * 0.8, 3 * count * 0.85))
    titles = ("true", "next-frame", f"rollout after {context}")
    for n in range(count):
        rows = (videos[n], [None, *next_frame[n]], [None] * context + list(rollout[n]))
        for r, frames in enumerate(rows):
            for t in range(steps):
                ax = axes[3 * n + r, t]
                ax.set_xticks([])
                ax.set_yticks([])
                if frames[t] is not None:
                    ax.imshow(frames[t][0].numpy(), cmap="gray", vmin=0, vmax=1)
                else:
                    ax.axis("off")
                if t == 0 and frames[t] is not None:
                    ax.set_ylabel(titles[r], fontsize=6)
            if frames[0] is None:
                first = next(t for t in range(steps) if frames[t] is not None)
                axes[3 * n + r, first].set_ylabel(titles[r], fontsize=6)
    fig.tight_layout(pad=0.1)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
