"""``translate``: Multi30k English -> German with an encoder-decoder (sequence to sequence).

Data: :mod:`rnnlab.data.multi30k` (train 29,000 / valid 1,014 / test 2016 Flickr 1,000 pairs),
lower-cased and split into words and punctuation; words seen fewer than ``--min-freq`` (2)
times in training become ``<unk>``. Model: :class:`~rnnlab.models.Seq2Seq` (``--attention
dot|additive|none``, ``--bidirectional`` encoder, ``--length-mode``, scheduled sampling as in
``names-generate``). Batches group sentence pairs of similar length.

Reports ``loss`` (teacher-forced token cross-entropy, nats), ``ppl`` and ``bleu``: corpus BLEU
of the detokenised, lower-cased hypotheses against the lower-cased references
(``sacrebleu``, 13a tokenisation), decoded greedily on ``valid`` and with ``--beam`` on
``test`` (0 = greedy). ``sample`` prints a few source / reference / hypothesis triples;
``rnnlab predict --run DIR "a dog runs on the beach."`` translates sentences.

BLEU needs the optional dependency ``sacrebleu`` (``pip install 'rnnlab[translate]'``).

Example::

    rnnlab train --task translate --data-dir ../shared/data --max-minutes 30
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from rnnlab.data.bucketing import BucketBatchSampler, pad_batch
from rnnlab.data.multi30k import detokenize, load_multi30k, tokenize
from rnnlab.data.vocabulary import Vocabulary
from rnnlab.errors import CheckpointError, ConfigError
from rnnlab.models import Seq2Seq
from rnnlab.models.attention import ATTENTION_KINDS
from rnnlab.tasks.base import register
from rnnlab.tasks.bucketed import BucketedTask
from rnnlab.tasks.names_generate import add_decoder_arguments, schedule_from, with_teacher_prob

SRC_VOCAB, TGT_VOCAB = "vocab.en.json", "vocab.de.json"
MAX_OUTPUT = 60
"""Longest translation decoded, in tokens (the longest German training sentence has 44)."""


def corpus_bleu(hypotheses: list[str], references: list[str]) -> float:
    """Corpus BLEU (sacrebleu, 13a tokenisation) of detokenised sentences."""
    try:
        import sacrebleu
    except ImportError:
        raise ConfigError(
            "BLEU needs sacrebleu: pip install 'rnnlab[translate]' (or pip install sacrebleu)"
        ) from None
    return float(sacrebleu.corpus_bleu(hypotheses, [references]).score)


@register("translate")
class Translate(BucketedTask):
    """English -> German sentence translation with a recurrent encoder-decoder."""

    metric, metric_mode = "bleu", "max"
    unit = "pairs"
    needs = {"sacrebleu": "translate"}
    defaults = {
        "hidden": 256,
        "embed": 128,
        "dropout": 0.2,
        "batch_size": 64,
        "lr": 1e-3,
        "clip_norm": 1.0,
        "max_minutes": 30.0,
        "eval_every": 500,
        "sample_every": 500,
    }

    @classmethod
    def add_arguments(cls, parser) -> None:
        parser.add_argument(
            "--attention", default="dot", choices=(*ATTENTION_KINDS, "none"),
            help="decoder attention over the encoder outputs (dot)",
        )  # fmt: skip
        parser.add_argument(
            "--beam", type=int, default=0, help="beam size for the test BLEU (0: greedy)"
        )
        parser.add_argument(
            "--min-freq",
            type=int,
            default=2,
            help="training words seen fewer times become <unk> (sst 1, translate 2)",
        )
        parser.add_argument(
            "--bidirectional", action="store_true", help="bidirectional encoder (BiLSTM, ...)"
        )
        add_decoder_arguments(parser)

    def __init__(self, config, run_dir: Path | None = None):
        super().__init__(config, run_dir)
        self.schedule = schedule_from(config)
        self.teacher_prob: float | None = None  # at the last training step, for the logs
        self._pairs: dict[str, list[tuple[list[str], list[str], str]]] = {}
        if run_dir is not None:
            paths = [Path(run_dir) / SRC_VOCAB, Path(run_dir) / TGT_VOCAB]
            if not all(p.is_file() for p in paths):
                raise CheckpointError(f"{run_dir} has no {SRC_VOCAB}; it is not a translate run")
            self.src_vocab, self.tgt_vocab = (Vocabulary.load(p) for p in paths)
        else:
            train = self.pairs("train")
            self.src_vocab = Vocabulary.build((s for s, _, _ in train), config.min_freq)
            self.tgt_vocab = Vocabulary.build((t for _, t, _ in train), config.min_freq)

    def pairs(self, split: str) -> list[tuple[list[str], list[str], str]]:
        """``(english words, german words, german reference)`` of each pair of ``split``."""
        if split not in self._pairs:
            self._pairs[split] = [
                (tokenize(en), tokenize(de), de.lower())
                for en, de in load_multi30k(split, self.config.data_dir)
                if en and de
            ]
        return self._pairs[split]

    def save(self, run_dir: Path) -> None:
        self.src_vocab.save(run_dir / SRC_VOCAB)
        self.tgt_vocab.save(run_dir / TGT_VOCAB)

    def build_model(self) -> nn.Module:
        c = self.config
        return Seq2Seq(
            c.cell, len(self.src_vocab), len(self.tgt_vocab), c.embed, c.hidden, c.layers,
            c.bidirectional, None if c.attention == "none" else c.attention, c.dropout,
            c.length_mode, MAX_OUTPUT,
        )  # fmt: skip

    def _encode(self, pairs):
        src, src_lengths = pad_batch([self.src_vocab.encode(s) for s, _, _ in pairs])
        tgt, tgt_lengths = pad_batch([self.tgt_vocab.encode(t) for _, t, _ in pairs])
        return src, src_lengths, tgt, tgt_lengths

    def train_lengths(self) -> list[int]:
        return [len(s) + len(t) for s, t, _ in self.pairs("train")]

    def train_batches(self, epoch: int, start: int = 0) -> Iterator:
        train, per_epoch = self.pairs("train"), self.steps_per_epoch()
        for i, indices in enumerate(self.train_sampler.epoch(epoch, start), start):
            yield (*self._encode([train[j] for j in indices]), epoch * per_epoch + i)

    def loss(self, model, batch, state):
        src, src_lengths, tgt, tgt_lengths, step = batch
        teacher_prob = self.teacher_prob = self.schedule.probability(step)
        loss, metrics = model.loss(src, src_lengths, tgt, tgt_lengths, teacher_prob=teacher_prob)
        return (
            loss,
            None,
            {**metrics, "teacher_prob": teacher_prob, "count": float(len(src_lengths))},
        )

    def _translate(self, model, sources: list[list[str]], beam: int) -> list[str]:
        device = next(model.parameters()).device
        out = [""] * len(sources)
        sampler = BucketBatchSampler([len(s) for s in sources], 128, shuffle=False)
        for indices in sampler:
            src, lengths = pad_batch([self.src_vocab.encode(sources[i]) for i in indices])
            hyps = model.decode(src.to(device), lengths.to(device), beam=beam)
            for i, ids in zip(indices, hyps):
                out[i] = detokenize(self.tgt_vocab.decode(ids))
        return out

    @torch.no_grad()
    def evaluate(self, model, split: str) -> dict[str, float]:
        pairs = self.pairs(split)
        device = next(model.parameters()).device
        sampler = BucketBatchSampler([len(s) + len(t) for s, t, _ in pairs], 128, shuffle=False)
        total, tokens = 0.0, 0
        for indices in sampler:
            batch = [b.to(device) for b in self._encode([pairs[i] for i in indices])]
            _, metrics = model.loss(*batch)
            eos = len(indices) if model.decoder.length_mode == "eos" else 0
            count = int(batch[3].sum()) + eos  # the tokens the loss averaged over
            total += metrics["token_loss"] * count
            tokens += count
        beam = self.config.beam if split == "test" else 0
        hypotheses = self._translate(model, [s for s, _, _ in pairs], beam)
        loss = total / tokens
        metrics = {
            "loss": loss,
            "ppl": math.exp(min(loss, 50.0)),
            "bleu": corpus_bleu(hypotheses, [ref for _, _, ref in pairs]),
        }
        return with_teacher_prob(metrics, self.teacher_prob)

    @torch.no_grad()
    def sample(self, model, **_) -> str:
        """Three validation sentences: source, reference and the greedy translation."""
        pairs = self.pairs("valid")[:3]
        hyps = self._translate(model, [s for s, _, _ in pairs], beam=0)
        return "\n".join(
            f"src: {detokenize(s)}\nref: {ref}\nhyp: {hyp}" for (s, _, ref), hyp in zip(pairs, hyps)
        )

    @torch.no_grad()
    def predict(self, model, inputs: list[str]) -> list[str]:
        """German translations of English sentences (beam ``--beam``, greedy when 0)."""
        sources = [tokenize(text) for text in inputs]
        if not all(sources):
            raise ConfigError("give non-empty sentences to translate")
        return self._translate(model, sources, self.config.beam)
