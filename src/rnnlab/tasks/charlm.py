"""``charlm``: the character-level language model (the default task of ``rnnlab train``).

Data: ``--data`` (a UTF-8 file, ``tinyshakespeare``, or by default the Python standard library
sources; see :mod:`rnnlab.data.text`) split by ``--splits``, or a directory made by ``rnnlab
prepare`` (:mod:`rnnlab.data.prepared`; its own splits), streamed from its token file with each
distributed rank reading only its own streams; truncated BPTT over
``--batch-size`` contiguous streams (:mod:`rnnlab.data.batching`); with ``--curriculum``
(:mod:`rnnlab.training.curriculum`) the training chunks grow to ``--seq-len`` on the schedule,
evaluation always uses ``--seq-len``. Model:
:class:`rnnlab.models.language_model.LanguageModel`. Reports the loss in nats per character and
in bits per character (``bpc = loss / ln 2``).

Files it writes into the run: ``vocab.json`` (the characters, in id order) and ``data.json``
(the corpus fingerprint: source, file count, characters, sha256, split sizes).
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from rnnlab.data.batching import StreamBatches
from rnnlab.data.prepared import PreparedCorpus, PreparedStreams, is_prepared
from rnnlab.data.text import Corpus, Vocabulary, load_corpus, parse_splits
from rnnlab.errors import CheckpointError, ConfigError, DataError
from rnnlab.jsonfile import read_json
from rnnlab.models.language_model import LanguageModel
from rnnlab.tasks.base import Task, register
from rnnlab.training.curriculum import build_curriculum
from rnnlab.training.regularization import model_regularizers

VOCAB, DATA = "vocab.json", "data.json"
LN2 = math.log(2.0)
EVAL_STREAMS = 64
"""Parallel streams when evaluating (more than in training: forward-only is cheap per stream)."""


def splits_flag(text: str) -> str:
    """``--splits``: checked when parsed (before any data is read), kept as written."""
    try:
        parse_splits(text)
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("--splits ")) from None
    return text


@register("charlm")
class CharLM(Task):
    """Character-level language modelling with truncated BPTT."""

    unit = "chars"
    batch_dim = 1  # batches are (x [T, B], y [T, B]); distributed ranks split the B streams
    defaults = {
        "hidden": 256,
        "layers": 1,
        "embed": 64,
        "seq_len": 100,
        "batch_size": 32,
        "lr": 4e-3,
        "clip_norm": 5.0,
        "max_minutes": 5.0,
    }

    @classmethod
    def add_arguments(cls, parser) -> None:
        parser.add_argument(
            "--data",
            help="UTF-8 text file, dataset name (tinyshakespeare) or directory made by rnnlab "
            "prepare; default: the Python standard library sources",
        )
        parser.add_argument(
            "--splits",
            type=splits_flag,
            default="90/5/5",
            help="train/valid/test percentages (90/5/5; 90/10/0 = nanoGPT shakespeare_char)",
        )

    def __init__(self, config, run_dir: Path | None = None):
        super().__init__(config, run_dir)
        self._corpus: Corpus | None = None
        self._ids: dict[str, Tensor] = {}
        self._train: StreamBatches | None = None
        self._rows: range | None = None  # this rank's streams (prepared data, distributed)
        self.curriculum = build_curriculum(config, config.seq_len, what="--seq-len")
        data = getattr(config, "data", None)
        self.prepared = PreparedCorpus(data, "char") if is_prepared(data) else None
        if run_dir is not None:
            path = Path(run_dir) / VOCAB
            if not path.is_file():
                raise CheckpointError(f"{run_dir} has no {VOCAB}; it is not a charlm run")
            self.vocab = Vocabulary.load(path)
        elif self.prepared is not None:
            self.vocab = Vocabulary(self.prepared.vocab)
            self._train_batches()  # too little text is an error before the run starts
            self._eval_batches("valid")
        else:
            self.vocab = Vocabulary.from_text(self.corpus.text)
            self._train_batches()  # too little text is an error before the run starts
            self.ids("valid")

    # data, loaded on first use (sampling from a run needs none)
    @property
    def corpus(self) -> Corpus:
        if self._corpus is None:
            self._corpus = load_corpus(self.config.data, self.config.splits, self.config.data_dir)
        return self._corpus

    @property
    def fingerprint(self) -> dict[str, Any]:
        """What ``data.json`` records; its ``sha256`` identifies the training data."""
        return self.prepared.fingerprint if self.prepared is not None else self.corpus.fingerprint

    def ids(self, split: str) -> Tensor:
        if split not in self._ids and self.prepared is not None:
            self._ids[split] = self.prepared.ids(split)
        if split not in self._ids:
            text = self.corpus.split(split)
            if not text:
                raise DataError(f"the {split} split is empty (--splits {self.config.splits})")
            self._ids[split] = self.vocab.encode(text)
        return self._ids[split]

    def describe(self) -> str:
        if self.prepared is not None:
            return self.prepared.describe()
        fp = self.corpus.fingerprint
        sizes = "/".join(f"{len(self.corpus.split(k)):,}" for k in ("train", "valid", "test"))
        return (
            f"{fp['source']}: {fp['files']} file(s), {sizes} train/valid/test characters, "
            f"vocabulary {len(self.vocab)}"
        )

    def save(self, run_dir: Path) -> None:
        self.vocab.save(run_dir / VOCAB)
        (run_dir / DATA).write_text(json.dumps(self.fingerprint, indent=2) + "\n")

    def build_model(self) -> nn.Module:
        c = self.config
        return LanguageModel(
            len(self.vocab),
            c.embed,
            c.hidden,
            c.layers,
            c.cell,
            c.dropout,
            **self.model_options(),
        )

    def model_options(self) -> dict[str, Any]:
        """Keyword arguments of the :class:`LanguageModel` beyond its sizes: the cells' options
        (``--cell-option``) and the regularisers."""
        c = self.config
        return {**getattr(c, "cell_options", {}), **model_regularizers(c)}

    def _train_batches(self) -> StreamBatches:
        if self._train is None:
            c = self.config
            self._check_same_data()
            if self.prepared is not None:
                self._train = PreparedStreams(
                    self.prepared, "train", c.batch_size, c.seq_len, self._rows
                )
            else:
                self._train = StreamBatches(self.ids("train"), c.batch_size, c.seq_len)
        return self._train

    def batches_per_rank(self, rank: int, world: int) -> bool:
        """Make :meth:`train_batches` yield only rank ``rank``'s ``B / world`` streams (its
        columns of the global batch) when the data is prepared: ``True`` then, and the trainer
        does not slice. In-memory text is sliced by the trainer (``False``)."""
        if self.prepared is None:
            return False
        part = self.config.batch_size // world
        self._rows, self._train = range(rank * part, (rank + 1) * part), None
        return True

    def _check_same_data(self) -> None:
        """A resumed run must train on the data it started with."""
        if self.run_dir is None:
            return
        if not (self.run_dir / DATA).is_file():
            raise CheckpointError(
                f"{self.run_dir} has no {DATA}: cannot check that the training data is the one "
                "the run started with; restore the file or start a new run"
            )
        recorded = read_json(self.run_dir / DATA, kind=dict)
        if recorded.get("sha256") != self.fingerprint["sha256"]:
            raise DataError(
                f"the training data changed since {self.run_dir} started (sha256 "
                f"{recorded.get('sha256', '?')[:12]}... -> "
                f"{self.fingerprint['sha256'][:12]}...); start a new run"
            )

    def steps_per_epoch(self) -> int:
        """Chunks per epoch (with a curriculum: at the current chunk length)."""
        batches = self._train_batches()
        if self.curriculum is None:
            return len(batches)
        return -(-(batches.stream_length - 1) // self.curriculum.length)

    def train_batches(self, epoch: int, start: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
        """The chunks of ``epoch`` from chunk ``start``; with a curriculum, from the position
        the curriculum keeps in time steps (``start`` 0 begins the epoch at step 0)."""
        batches = self._train_batches()
        if self.curriculum is None:
            return batches.iterate(start)
        if start == 0:
            self.curriculum.position = 0
        return batches.follow(self.curriculum)

    def loss(self, model: nn.Module, batch, state: Any):
        x, y = batch
        loss, state = model.loss(x, y, state)
        return loss, state, {"count": float(y.numel())}

    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        """Loss over the whole split, streams carried across chunks as in training."""
        batches = self._eval_batches(split)
        device = next(model.parameters()).device
        total, count, state = 0.0, 0, None
        for x, y in batches.iterate():
            loss, state = model.loss(x.to(device), y.to(device), state)
            total += float(loss) * y.numel()
            count += y.numel()
        loss = total / count
        return {"loss": loss, "bpc": loss / LN2}

    def _eval_batches(self, split: str) -> StreamBatches:
        """The evaluation chunks of ``split``: up to 64 streams of ``--seq-len`` steps."""
        prepared = self.prepared
        size = prepared.length(split) if prepared is not None else self.ids(split).numel()
        if size < 2:
            raise DataError(f"the {split} split has fewer than 2 characters; nothing to predict")
        seq_len = min(self.config.seq_len, size - 1)
        streams = max(1, min(EVAL_STREAMS, size // (seq_len + 1)))
        if prepared is not None:
            return PreparedStreams(prepared, split, streams, seq_len, what=f"{split} split")
        return StreamBatches(self.ids(split), streams, seq_len, what=f"{split} split")

    def sample(
        self,
        model: nn.Module,
        length: int = 300,
        temperature: float = 0.8,
        prime: str | None = None,
        top_k: int | None = None,
        seed: int | None = None,
    ) -> str:
        prime = prime or ("\n" if "\n" in self.vocab else self.vocab.chars[0])
        ids = model.generate(self.vocab.encode(prime), length, temperature, top_k, seed)
        return prime + self.vocab.decode(ids)
