"""``sst``: sentence-level sentiment on the Stanford Sentiment Treebank (many-to-one, words).

Data: :mod:`rnnlab.data.sst` (its tree parser); each sentence is its leaves (lower-cased
words) and its root label. ``--classes 5`` is the fine-grained task (very negative ..
very positive); ``--classes 2`` the binary task (negative 0-1 vs positive 3-4, neutral
sentences dropped: train 6920 / dev 872 / test 1821). Only the root labels are used (the
phrase labels of the inner nodes are not training examples here). Splits: train, ``valid`` =
dev, test.

Model: :class:`~rnnlab.models.SequenceClassifier` (``--bidirectional`` for a BiLSTM,
``--pooling``), word embeddings learned from scratch (no pretrained vectors).

Reports ``loss``, ``accuracy`` and ``balanced_accuracy``.

Example::

    rnnlab train --task sst --classes 2 --bidirectional --data-dir ../shared/data --epochs 4
    rnnlab predict --run runs/sst "a gorgeous, witty film" "dull and lifeless"
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from rnnlab.data.bucketing import BucketBatchSampler, pad_batch
from rnnlab.data.sst import binary_label, load_sst
from rnnlab.data.vocabulary import Vocabulary
from rnnlab.errors import CheckpointError, ConfigError
from rnnlab.models import SequenceClassifier
from rnnlab.tasks.base import register
from rnnlab.tasks.bucketed import BucketedTask
from rnnlab.tasks.names_classify import VOCAB, add_classifier_arguments, classifier_metrics

LABELS = {
    5: ["very negative", "negative", "neutral", "positive", "very positive"],
    2: ["negative", "positive"],
}
_FILES = {"train": "train", "valid": "dev", "test": "test"}
_PTB_WORD = re.compile(r"n't|'(?:s|re|ve|ll|d|m)\b|\w+?(?=n't)|\w+(?:[-.]\w+)*|[^\w\s]")


@functools.lru_cache(maxsize=6)
def _trees(split: str, data_dir: str | None) -> tuple:
    """The parsed trees of a split, parsed once per process."""
    return tuple(load_sst(split, data_dir))


def ptb_words(text: str) -> list[str]:
    """Lower-cased words split like the treebank's leaves ("isn't" -> "is", "n't")."""
    return _PTB_WORD.findall(text.lower())


def add_classes_argument(parser) -> None:
    """``--classes 5|2``, shared by the sst and sst-tree tasks."""
    parser.add_argument(
        "--classes", type=int, default=5, choices=(5, 2),
        help="SST labels: 5 fine-grained classes, or 2 (binary, neutral sentences dropped) (5)",
    )  # fmt: skip


@register("sst")
class SST(BucketedTask):
    """Root-level sentiment of SST sentences with a recurrent classifier."""

    metric, metric_mode = "accuracy", "max"
    unit = "sentences"
    defaults = {
        "hidden": 168,
        "embed": 128,
        "dropout": 0.5,
        "batch_size": 32,
        "lr": 3e-3,
        "clip_norm": 5.0,
        "epochs": 6,
        "eval_every": 200,
    }

    @classmethod
    def add_arguments(cls, parser) -> None:
        add_classes_argument(parser)
        parser.add_argument(
            "--min-freq",
            type=int,
            default=1,
            help="training words seen fewer times become <unk> (sst 1, translate 2)",
        )
        add_classifier_arguments(parser)

    def __init__(self, config, run_dir: Path | None = None):
        super().__init__(config, run_dir)
        self.labels = LABELS[config.classes]
        self._data: dict[str, list[tuple[list[str], int]]] = {}
        if run_dir is not None:
            path = Path(run_dir) / VOCAB
            if not path.is_file():
                raise CheckpointError(f"{run_dir} has no {VOCAB}; it is not an sst run")
            self.vocab = Vocabulary.load(path)
        else:
            words = (w for w, _ in self.data("train"))
            self.vocab = Vocabulary.build(words, min_freq=config.min_freq)

    def data(self, split: str) -> list[tuple[list[str], int]]:
        """``(words, label)`` of each sentence of ``split`` (binary: neutral ones dropped)."""
        if split not in self._data:
            examples = []
            for tree in _trees(_FILES[split], self.config.data_dir):
                label = tree.label if self.config.classes == 5 else binary_label(tree.label)
                if label is not None:
                    examples.append(([w.lower() for w in tree.leaves()], label))
            self._data[split] = examples
        return self._data[split]

    def save(self, run_dir: Path) -> None:
        self.vocab.save(run_dir / VOCAB)

    def build_model(self) -> nn.Module:
        c = self.config
        return SequenceClassifier(
            c.cell, len(self.vocab), len(self.labels), c.embed, c.hidden, c.layers,
            c.bidirectional, c.pooling, c.dropout,
        )  # fmt: skip

    def _encode(self, examples):
        tokens, lengths = pad_batch([self.vocab.encode(words) for words, _ in examples])
        return tokens, lengths, torch.tensor([label for _, label in examples])

    def train_lengths(self) -> list[int]:
        return [len(words) for words, _ in self.data("train")]

    def train_batches(self, epoch: int, start: int = 0) -> Iterator:
        train = self.data("train")
        for indices in self.train_sampler.epoch(epoch, start):
            yield self._encode([train[i] for i in indices])

    def loss(self, model, batch, state):
        tokens, lengths, labels = batch
        loss, metrics = model.loss(tokens, lengths, labels)
        return loss, None, {**metrics, "count": float(len(labels))}

    @torch.no_grad()
    def evaluate(self, model, split: str) -> dict[str, float]:
        examples = self.data(split)
        device = next(model.parameters()).device
        sampler = BucketBatchSampler([len(w) for w, _ in examples], 200, shuffle=False)
        logits, labels = [], []
        for indices in sampler:
            tokens, lengths, y = self._encode([examples[i] for i in indices])
            logits.append(model(tokens.to(device), lengths.to(device)).cpu())
            labels.append(y)
        metrics, _, _ = classifier_metrics(torch.cat(logits), torch.cat(labels), len(self.labels))
        return metrics

    @torch.no_grad()
    def predict(self, model, inputs: list[str]) -> list[str]:
        """The predicted sentiment of each sentence with its probability."""
        words = [ptb_words(text) for text in inputs]
        if not all(words):
            raise ConfigError("give non-empty sentences to classify")
        device = next(model.parameters()).device
        tokens, lengths = pad_batch([self.vocab.encode(w) for w in words])
        probs = model.predict(tokens.to(device), lengths.to(device)).cpu()
        return [
            f"{self.labels[int(p.argmax())]} ({float(p.max()):.2f}): {text}"
            for text, p in zip(inputs, probs)
        ]
