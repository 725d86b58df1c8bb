"""``names-classify``: which of 18 languages a surname comes from (many-to-one, characters).

Data: :mod:`rnnlab.data.names` (18,015 distinct surname/language pairs), a stratified 80/10/10
split with a fixed seed, so every run holds out the same names. Model:
:class:`~rnnlab.models.SequenceClassifier` over characters (``--pooling``,
``--bidirectional``). Batches group names of similar length (:mod:`rnnlab.data.bucketing`).

Reports ``loss``, ``accuracy`` and ``balanced_accuracy`` (the mean of the per-language
accuracies); on the test split also ``accuracy/<language>`` for each language, and it writes
``confusion-test.png`` (rows: true language, columns: predicted; each row normalised) into the
run directory.

Run files: ``vocab.json`` (characters) and ``labels.json`` (the languages in id order).

Example::

    rnnlab train --task names-classify --data-dir ../shared/data --max-minutes 3
    rnnlab predict --run runs/names Nguyen Schmidt O'Neill
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from rnnlab.data.bucketing import BucketBatchSampler, pad_batch
from rnnlab.data.names import LANGUAGES, load_names, stratified_split
from rnnlab.data.vocabulary import Vocabulary
from rnnlab.errors import CheckpointError, ConfigError
from rnnlab.models import SequenceClassifier
from rnnlab.models.classifier import POOLINGS
from rnnlab.tasks.base import register
from rnnlab.tasks.bucketed import BucketedTask

VOCAB = "vocab.json"
SPLIT_SEED = 0
"""The held-out split is the same for every run (it does not follow ``--seed``)."""


def add_classifier_arguments(parser) -> None:
    """Flags shared by the classification tasks."""
    parser.add_argument(
        "--pooling", default="last", choices=POOLINGS, help="how steps become one vector (last)"
    )
    parser.add_argument(
        "--bidirectional", action="store_true", help="bidirectional encoder (BiLSTM, BiGRU, ...)"
    )


def classifier_metrics(logits: torch.Tensor, labels: torch.Tensor, num_classes: int):
    """Loss, accuracy, balanced accuracy and the confusion matrix ``[true, predicted]``."""
    predicted = logits.argmax(-1)
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.long)
    confusion.index_put_((labels.cpu(), predicted.cpu()), torch.tensor(1), accumulate=True)
    per_class = confusion.diag().double() / confusion.sum(1).clamp(min=1).double()
    present = confusion.sum(1) > 0
    metrics = {
        "loss": float(F.cross_entropy(logits, labels)),
        "accuracy": float((predicted == labels).double().mean()),
        "balanced_accuracy": float(per_class[present].mean()),
    }
    return metrics, confusion, per_class


def save_confusion_png(confusion: torch.Tensor, labels: list[str], path: Path) -> None:
    """A row-normalised confusion matrix as a PNG (rows true, columns predicted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = confusion.double() / confusion.sum(1, keepdim=True).clamp(min=1).double()
    size = max(5.0, 0.45 * len(labels))
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(rows.numpy(), cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=90)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(labels)):
        for j in range(len(labels)):
            if rows[i, j] >= 0.005:
                color = "white" if rows[i, j] > 0.5 else "black"
                ax.text(
                    j, i, f"{rows[i, j]:.2f}", ha="center", va="center", fontsize=6, color=color
                )
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


@register("names-classify")
class NamesClassify(BucketedTask):
    """Surname -> language with a character-level recurrent classifier."""

    metric, metric_mode = "accuracy", "max"
    unit = "names"
    defaults = {
        "hidden": 128,
        "embed": 32,
        "batch_size": 64,
        "lr": 2e-3,
        "clip_norm": 5.0,
        "max_minutes": 3.0,
        "eval_every": 200,
    }

    @classmethod
    def add_arguments(cls, parser) -> None:
        add_classifier_arguments(parser)

    def __init__(self, config, run_dir: Path | None = None):
        super().__init__(config, run_dir)
        self.labels = list(LANGUAGES)
        self._splits: dict[str, list[tuple[str, str]]] | None = None
        if run_dir is not None:
            path = Path(run_dir) / VOCAB
            if not path.is_file():
                raise CheckpointError(f"{run_dir} has no {VOCAB}; it is not a names-classify run")
            self.vocab = Vocabulary.load(path)
        else:
            self.vocab = Vocabulary.build(list(name) for name, _ in self.splits["train"])

    @property
    def splits(self) -> dict[str, list[tuple[str, str]]]:
        if self._splits is None:
            pairs = load_names(self.config.data_dir)
            self._splits = stratified_split(pairs, seed=SPLIT_SEED)
        return self._splits

    def save(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.vocab.save(run_dir / VOCAB)
        (run_dir / "labels.json").write_text(json.dumps(self.labels) + "\n")

    def build_model(self) -> nn.Module:
        c = self.config
        return SequenceClassifier(
            c.cell, len(self.vocab), len(self.labels), c.embed, c.hidden, c.layers,
            c.bidirectional, c.pooling, c.dropout,
        )  # fmt: skip

    def _encode(self, pairs: list[tuple[str, str]]):
        tokens, lengths = pad_batch([self.vocab.encode(name) for name, _ in pairs])
        labels = torch.tensor([self.labels.index(lang) for _, lang in pairs])
        return tokens, lengths, labels

    def train_lengths(self) -> list[int]:
        return [len(name) for name, _ in self.splits["train"]]

    def train_batches(self, epoch: int, start: int = 0) -> Iterator:
        train = self.splits["train"]
        for indices in self.train_sampler.epoch(epoch, start):
            yield self._encode([train[i] for i in indices])

    def loss(self, model, batch, state):
        tokens, lengths, labels = batch
        loss, metrics = model.loss(tokens, lengths, labels)
        return loss, None, {**metrics, "count": float(len(labels))}

    def _logits(self, model, pairs):
        device = next(model.parameters()).device
        sampler = BucketBatchSampler([len(n) for n, _ in pairs], 256, shuffle=False)
        logits, labels = [], []
        for indices in sampler:
            tokens, lengths, y = self._encode([pairs[i] for i in indices])
            logits.append(model(tokens.to(device), lengths.to(device)).cpu())
            labels.append(y)
        return torch.cat(logits), torch.cat(labels)

    @torch.no_grad()
    def evaluate(self, model, split: str) -> dict[str, float]:
        logits, labels = self._logits(model, self.splits[split])
        metrics, confusion, per_class = classifier_metrics(logits, labels, len(self.labels))
        if split == "test":
            metrics.update(
                {f"accuracy/{lang}": float(a) for lang, a in zip(self.labels, per_class)}
            )
            if self.run_dir is not None:
                save_confusion_png(confusion, self.labels, self.run_dir / "confusion-test.png")
        return metrics

    @torch.no_grad()
    def predict(self, model, inputs: list[str]) -> list[str]:
        """The three most likely languages of each surname, with their probabilities."""
        if not all(inputs):
            raise ConfigError("give non-empty surnames to classify")
        device = next(model.parameters()).device
        tokens, lengths = pad_batch([self.vocab.encode(name) for name in inputs])
        probs = model.predict(tokens.to(device), lengths.to(device)).cpu()
        out = []
        for name, p in zip(inputs, probs):
            top = p.topk(3)
            guesses = ", ".join(
                f"{self.labels[i]} {v:.2f}"
                for v, i in zip(top.values.tolist(), top.indices.tolist())
            )
            out.append(f"{name}: {guesses}")
        return out
