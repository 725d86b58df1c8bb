"""``wordlm``: word-level language modelling on Penn Treebank (Mikolov's 10k-word version).

Data: ``ptb.{train,valid,test}.txt`` found through ``--data-dir`` (``DIR/ptb/`` or ``DIR/``),
the cache, or downloaded with checksums (:mod:`rnnlab.data.ptb`); ``<eos>`` ends each sentence,
giving 929,589 / 73,760 / 82,430 tokens and a vocabulary of 10,000 words. Or ``--data DIR``, a
corpus made by ``rnnlab prepare --level word`` (:mod:`rnnlab.data.prepared`), streamed from its
token file. Everything else is
:class:`~rnnlab.tasks.charlm.CharLM`'s: truncated BPTT over ``--batch-size`` contiguous streams,
the :class:`~rnnlab.models.language_model.LanguageModel`, the regularisation flags, plus
``--tie-weights`` and ``--adaptive-softmax`` (word ids are in order of frequency, most frequent
first, so that the head of an adaptive softmax holds the frequent words). Reports the loss in
nats per word and the perplexity ``exp(loss)``.

Defaults are the shape of Zaremba et al.'s small model (2 x 200 LSTM, 35 steps, 20 streams,
gradient norm clipped at 5), trained with Adam.

Files it writes into the run: ``vocab.json`` (the words, in id order) and ``data.json`` (the
sha256 and token counts of the three files).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from rnnlab.data.prepared import PreparedCorpus, is_prepared
from rnnlab.data.ptb import SPLITS, load_ptb_words, ptb_path
from rnnlab.data.words import EOS, WordVocabulary
from rnnlab.errors import CheckpointError, DataError
from rnnlab.jsonfile import read_json
from rnnlab.tasks.base import Task, register
from rnnlab.tasks.charlm import DATA, VOCAB, CharLM
from rnnlab.training.curriculum import build_curriculum


def parse_cutoffs(text: str) -> list[int]:
    """``"2000,6000"`` -> ``[2000, 6000]`` (argparse type of ``--adaptive-softmax``)."""
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated word counts such as 2000,6000, got {text!r}"
        ) from None


@register("wordlm")
class WordLM(CharLM):
    """Word-level PTB language modelling with truncated BPTT; metric: validation loss."""

    unit = "words"
    defaults = {
        "hidden": 200,
        "layers": 2,
        "embed": 200,
        "seq_len": 35,
        "batch_size": 20,
        "lr": 2e-3,
        "clip_norm": 5.0,
        "max_minutes": 10.0,
        "eval_every": 1000,
        "sample_every": 1000,
    }

    @classmethod
    def add_arguments(cls, parser) -> None:
        parser.add_argument(
            "--data",
            help="wordlm: a directory made by rnnlab prepare --level word; default: PTB",
        )
        parser.add_argument(
            "--tie-weights",
            action="store_true",
            default=False,
            help="wordlm: the output layer shares the embedding matrix (needs --embed = --hidden)",
        )
        parser.add_argument(
            "--adaptive-softmax",
            metavar="CUTOFFS",
            type=parse_cutoffs,
            default=None,
            help="wordlm: an adaptive softmax decoder with these cutoffs, e.g. 2000 or 2000,6000 "
            "(word ids are most frequent first; not with --tie-weights)",
        )

    def __init__(self, config, run_dir: Path | None = None):
        Task.__init__(self, config, run_dir)
        self._words: dict[str, list[str]] = {}
        self._ids: dict[str, Tensor] = {}
        self._train = None
        self._rows = None
        self.curriculum = build_curriculum(config, config.seq_len, what="--seq-len")
        data = getattr(config, "data", None)
        self.prepared = PreparedCorpus(data, "word") if is_prepared(data) else None
        if run_dir is not None:
            path = Path(run_dir) / VOCAB
            if not path.is_file():
                raise CheckpointError(f"{run_dir} has no {VOCAB}; it is not a wordlm run")
            self.vocab = WordVocabulary.load(path)
        elif self.prepared is not None:
            self.vocab = WordVocabulary(self.prepared.vocab)
            self._train_batches()  # too little text is an error before the run starts
            self._eval_batches("valid")
        else:
            self.vocab = WordVocabulary.by_frequency(self.words("train"))
            self._train_batches()  # too little text is an error before the run starts
            self.ids("valid")

    def words(self, split: str) -> list[str]:
        if split not in self._words:
            self._words[split] = load_ptb_words(split, self.config.data_dir)
        return self._words[split]

    def ids(self, split: str) -> Tensor:
        if split not in self._ids and self.prepared is not None:
            self._ids[split] = self.prepared.ids(split)
        if split not in self._ids:
            words = self.words(split)
            if not words:
                raise DataError(f"the PTB {split} file has no words")
            self._ids[split] = self.vocab.encode(words)
        return self._ids[split]

    @property
    def fingerprint(self) -> dict:
        if self.prepared is not None:
            return self.prepared.fingerprint
        files = {s: ptb_path(s, "word", self.config.data_dir) for s in SPLITS}
        return {
            "source": "ptb",
            "sha256": hashlib.sha256(b"".join(f.read_bytes() for f in files.values())).hexdigest(),
            "tokens": {s: len(self.words(s)) for s in SPLITS},
        }

    def describe(self) -> str:
        if self.prepared is not None:
            return self.prepared.describe()
        sizes = "/".join(f"{len(self.words(s)):,}" for s in SPLITS)
        return f"ptb: {sizes} train/valid/test words, vocabulary {len(self.vocab):,}"

    def save(self, run_dir: Path) -> None:
        self.vocab.save(run_dir / VOCAB)
        (run_dir / DATA).write_text(json.dumps(self.fingerprint, indent=2) + "\n")

    def _check_same_data(self) -> None:
        """A resumed run must train on the files it started with."""
        if self.run_dir is None:
            return
        if not (self.run_dir / DATA).is_file():
            raise CheckpointError(
                f"{self.run_dir} has no {DATA}: cannot check that the PTB files are the ones "
                "the run started with; restore the file or start a new run"
            )
        recorded = read_json(self.run_dir / DATA, kind=dict).get("sha256")
        if recorded != self.fingerprint["sha256"]:
            raise DataError(
                f"the training data changed since {self.run_dir} started; start a new run"
            )

    def model_options(self) -> dict[str, Any]:
        c = self.config
        return {
            **super().model_options(),
            "tie_weights": c.tie_weights,
            "adaptive_softmax": getattr(c, "adaptive_softmax", None),
        }

    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        """Loss in nats per word over the whole split and its perplexity."""
        loss = super().evaluate(model, split)["loss"]
        return {"loss": loss, "ppl": math.exp(loss)}

    def sample(
        self,
        model: nn.Module,
        length: int = 50,
        temperature: float = 1.0,
        prime: str | None = None,
        top_k: int | None = None,
        seed: int | None = None,
    ) -> str:
        """``length`` words after ``prime`` (words separated by spaces; default ``<eos>``),
        sentences on their own lines."""
        words = prime.split() if prime else [EOS]
        ids = model.generate(self.vocab.encode(words), length, temperature, top_k, seed)
        text = " ".join(words + self.vocab.decode(ids))
        return text.replace(f" {EOS} ", "\n").replace(EOS, "\n").strip()
