"""``sst-tree``: sentiment of every phrase of the Stanford Sentiment Treebank with a tree network.

Data: SST's parse trees (:mod:`rnnlab.data.sst`; train 8544, dev 1101, test 2210 sentences),
found with ``--data-dir`` or downloaded. Model: :class:`~rnnlab.models.tree_sentiment.
TreeSentimentModel` with ``--model tree-lstm`` (binary Tree-LSTM of Tai et al. 2015),
``child-sum`` or ``recursive`` (Socher et al.), word vectors learned from random initialisation.

Training uses every labelled node of every tree (mean cross-entropy over nodes). Evaluation
reports, like Tai et al.: ``fine_acc``, the root (sentence) accuracy over 5 classes, and
``binary_acc``, the root accuracy positive vs negative on the sentences that are not neutral.
With ``--classes 5`` (default) the binary decision of the 5-class model is ``P(0)+P(1)`` vs
``P(3)+P(4)``; with ``--classes 2`` the model has 2 classes and trains on the non-neutral
nodes of the non-neutral sentences (as Tai et al.'s binary models). ``phrase_acc`` is the
accuracy over all labelled nodes.

Files it writes into the run: ``vocab.json`` (the training words, in id order; id 0 is unknown).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.data.sst import Tree, binary_label, load_sst
from rnnlab.errors import CheckpointError, ConfigError
from rnnlab.jsonfile import read_json
from rnnlab.layers.tree import TREE_CELLS, TreeBatch
from rnnlab.models.tree_sentiment import TreeSentimentModel
from rnnlab.tasks.base import Task, register
from rnnlab.tasks.sst import add_classes_argument

VOCAB = "vocab.json"
UNKNOWN = "<unk>"
SPLIT_FILES = {"train": "train", "valid": "dev", "test": "test"}


@register("sst-tree")
class SSTTree(Task):
    """Sentiment of every node of SST's parse trees with a Tree-LSTM or a recursive network."""

    unit = "trees"
    metric, metric_mode = "fine_acc", "max"
    defaults = {
        "hidden": 150,
        "embed": 300,
        "batch_size": 25,
        "optimizer": "adagrad",
        "lr": 0.05,
        "dropout": 0.5,
        "max_minutes": 8.0,
        "eval_every": 100,
        "log_every": 20,
    }

    @classmethod
    def add_arguments(cls, parser) -> None:
        parser.add_argument(
            "--model",
            default="tree-lstm",
            help=f"tree network for sst-tree: {', '.join(TREE_CELLS)} (tree-lstm)",
        )
        add_classes_argument(parser)

    def __init__(self, config, run_dir: Path | None = None):
        super().__init__(config, run_dir)
        if config.model not in TREE_CELLS:
            raise ConfigError(
                f"unknown --model {config.model!r} for sst-tree; choose one of: "
                f"{', '.join(TREE_CELLS)}"
            )
        if config.classes not in (5, 2):
            raise ConfigError(f"--classes must be 5 or 2, got {config.classes!r}")
        if config.model == "recursive" and config.embed != config.hidden:
            raise ConfigError(
                f"--model recursive uses the word vectors as leaf states: give --embed equal to "
                f"--hidden (now {config.embed} and {config.hidden})"
            )
        self.binary = config.classes == 2
        self.metric = "binary_acc" if self.binary else "fine_acc"
        self._trees: dict[str, list[Tree]] = {}
        self._eval_batches: dict[str, list[TreeBatch]] = {}
        if run_dir is not None:
            path = Path(run_dir) / VOCAB
            if not path.is_file():
                raise CheckpointError(f"{run_dir} has no {VOCAB}; it is not an sst-tree run")
            words = read_json(path, kind=list)
        else:
            words = [UNKNOWN] + sorted({w for t in self.trees("train") for w in t.leaves()})
        self.words = words
        self.ids = {word: i for i, word in enumerate(words)}

    def trees(self, split: str) -> list[Tree]:
        """The trees of ``"train"``, ``"valid"`` (SST dev) or ``"test"``; binary mode drops the
        neutral sentences."""
        if split not in self._trees:
            trees = load_sst(SPLIT_FILES[split], self.config.data_dir)
            if self.binary:
                trees = [t for t in trees if t.label != 2]
            self._trees[split] = trees
        return self._trees[split]

    def _batch(self, trees: list[Tree]) -> TreeBatch:
        label = _binary_node_label if self.binary else None
        return TreeBatch.from_trees(trees, lambda w: self.ids.get(w, 0), label)

    def save(self, run_dir: Path) -> None:
        (run_dir / VOCAB).write_text(json.dumps(self.words, ensure_ascii=False) + "\n")

    def build_model(self) -> nn.Module:
        c = self.config
        classes = 2 if self.binary else 5
        return TreeSentimentModel(len(self.words), c.embed, c.hidden, c.model, classes, c.dropout)

    def steps_per_epoch(self) -> int:
        return -(-len(self.trees("train")) // self.config.batch_size)

    def train_batches(self, epoch: int, start: int = 0) -> Iterator[TreeBatch]:
        trees = self.trees("train")
        generator = torch.Generator().manual_seed(self.config.seed * 100_003 + epoch)
        order = torch.randperm(len(trees), generator=generator).tolist()
        size = self.config.batch_size
        for first in range(start * size, len(order), size):
            yield self._batch([trees[i] for i in order[first : first + size]])

    def to_device(self, batch: TreeBatch, device: torch.device) -> TreeBatch:
        return batch.to(device)

    def loss(self, model: nn.Module, batch: TreeBatch, state: Any):
        logits = model(batch)
        loss = F.cross_entropy(logits, batch.labels, ignore_index=-1)
        return loss, None, {"count": float(batch.num_trees)}

    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        """Node loss, root accuracies (fine over 5 classes, binary on non-neutral roots) and
        the accuracy over all labelled nodes."""
        if split not in self._eval_batches:
            trees = self.trees(split)
            self._eval_batches[split] = [
                self._batch(trees[i : i + 256]) for i in range(0, len(trees), 256)
            ]
        device = next(model.parameters()).device
        loss_sum = nodes = phrase_right = roots = fine_right = polar = binary_right = 0.0
        for batch in self._eval_batches[split]:
            batch = batch.to(device)
            logits = model(batch)
            labelled = batch.labels >= 0
            loss_sum += float(
                F.cross_entropy(logits, batch.labels, ignore_index=-1, reduction="sum")
            )
            nodes += float(labelled.sum())
            phrase_right += float((logits.argmax(-1) == batch.labels)[labelled].sum())
            root_logits, root_labels = logits[batch.roots], batch.labels[batch.roots]
            right, count, b_right, b_count = _root_accuracy(root_logits, root_labels, self.binary)
            fine_right, roots = fine_right + right, roots + count
            binary_right, polar = binary_right + b_right, polar + b_count
        metrics = {
            "loss": loss_sum / nodes,
            "binary_acc": 100.0 * binary_right / max(polar, 1),
            "phrase_acc": 100.0 * phrase_right / nodes,
        }
        if not self.binary:
            metrics["fine_acc"] = 100.0 * fine_right / roots
        return metrics


def _binary_node_label(node: Tree) -> int:
    label = binary_label(node.label)
    return -1 if label is None else label


def _root_accuracy(
    logits: Tensor, labels: Tensor, binary: bool
) -> tuple[float, float, float, float]:
    """(fine right, roots, binary right, non-neutral roots) of one batch of roots."""
    if binary:
        right = float((logits.argmax(-1) == labels).sum())
        return right, float(len(labels)), right, float(len(labels))
    fine_right = float((logits.argmax(-1) == labels).sum())
    polar = labels != 2
    probs = logits[polar].softmax(-1)
    predicted_positive = probs[:, 3:].sum(-1) > probs[:, :2].sum(-1)
    binary_right = float((predicted_positive == (labels[polar] > 2)).sum())
    return fine_right, float(len(labels)), binary_right, float(polar.sum())
