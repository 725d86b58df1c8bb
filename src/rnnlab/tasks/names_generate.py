"""``names-generate``: surnames generated character by character, conditioned on a language
(one-to-many).

Data: the same names and held-out split as ``names-classify``. Model:
:class:`~rnnlab.models.ConditionalGenerator` with the language as the condition
(``--condition-mode init|input|both``) and the end of a name decided by ``--length-mode``
(``eos`` symbol, ``halt`` output, or ``length`` predicted first). Trained with teacher forcing
or scheduled sampling (``--scheduled-sampling linear|exponential|inverse_sigmoid|free``,
``--ss-k``, ``--ss-c``, ``--ss-min``; the current probability is logged as ``teacher_prob``).

Reports ``loss`` (token cross-entropy in nats per character, with the halt / length loss in
those modes) and ``token_loss``. ``sample`` prints generated names for a few languages;
``rnnlab predict --run DIR Russian Japanese`` generates names for the given languages.

Example::

    rnnlab train --task names-generate --data-dir ../shared/data --max-minutes 3
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from rnnlab.data.bucketing import BucketBatchSampler, pad_batch
from rnnlab.data.names import LANGUAGES, load_names, stratified_split
from rnnlab.data.vocabulary import Vocabulary
from rnnlab.errors import CheckpointError, ConfigError
from rnnlab.models import ConditionalGenerator
from rnnlab.models.decoder import LENGTH_MODES
from rnnlab.models.generator import CONDITION_MODES
from rnnlab.tasks.base import register
from rnnlab.tasks.bucketed import BucketedTask
from rnnlab.tasks.names_classify import SPLIT_SEED, VOCAB
from rnnlab.training.scheduled_sampling import SCHEDULES, ScheduledSampling

MAX_NAME_LENGTH = 24
"""Longest name generated (the longest surname in the data has 20 characters)."""


def add_decoder_arguments(parser) -> None:
    """Flags shared by the generating tasks (names-generate, translate)."""
    parser.add_argument(
        "--length-mode", default="eos", choices=LENGTH_MODES,
        help="how a generated sequence ends: <eos> symbol, halt output, or predicted length",
    )  # fmt: skip
    parser.add_argument(
        "--scheduled-sampling", default="teacher", choices=SCHEDULES,
        help="probability of feeding the gold token: teacher forcing, free running, or a decay",
    )  # fmt: skip
    parser.add_argument("--ss-k", type=float, help="schedule parameter k (see docs/tasks.md)")
    parser.add_argument("--ss-c", type=float, default=1e-4, help="linear decay per step (1e-4)")
    parser.add_argument("--ss-min", type=float, default=0.0, help="lowest probability (0)")


def schedule_from(config) -> ScheduledSampling:
    return ScheduledSampling(config.scheduled_sampling, config.ss_k, config.ss_c, config.ss_min)


def with_teacher_prob(metrics: dict[str, float], teacher_prob: float | None) -> dict[str, float]:
    """Add the scheduled-sampling probability of the last training step (when training), so
    that every validation line and ``metrics.jsonl`` record shows it."""
    return metrics if teacher_prob is None else {**metrics, "teacher_prob": teacher_prob}


@register("names-generate")
class NamesGenerate(BucketedTask):
    """Language -> surname with a conditional character-level generator."""

    metric, metric_mode = "loss", "min"
    unit = "names"
    defaults = {
        "hidden": 128,
        "embed": 32,
        "batch_size": 64,
        "lr": 2e-3,
        "clip_norm": 5.0,
        "max_minutes": 3.0,
        "eval_every": 200,
        "sample_every": 500,
    }

    @classmethod
    def add_arguments(cls, parser) -> None:
        parser.add_argument(
            "--condition-mode", default="both", choices=CONDITION_MODES,
            help="the language enters as the initial state, an input at every step, or both",
        )  # fmt: skip
        add_decoder_arguments(parser)

    def __init__(self, config, run_dir: Path | None = None):
        super().__init__(config, run_dir)
        self.labels = list(LANGUAGES)
        self.schedule = schedule_from(config)
        self.teacher_prob: float | None = None  # at the last training step, for the logs
        self._splits = None
        if run_dir is not None:
            path = Path(run_dir) / VOCAB
            if not path.is_file():
                raise CheckpointError(f"{run_dir} has no {VOCAB}; it is not a names-generate run")
            self.vocab = Vocabulary.load(path)
        else:
            self.vocab = Vocabulary.build(list(name) for name, _ in self.splits["train"])

    @property
    def splits(self):
        if self._splits is None:
            self._splits = stratified_split(load_names(self.config.data_dir), seed=SPLIT_SEED)
        return self._splits

    def save(self, run_dir: Path) -> None:
        self.vocab.save(run_dir / VOCAB)

    def build_model(self) -> nn.Module:
        c = self.config
        return ConditionalGenerator(
            c.cell, len(self.vocab), num_conditions=len(self.labels), condition_size=c.embed,
            embed_size=c.embed, hidden_size=c.hidden, num_layers=c.layers,
            condition_mode=c.condition_mode, dropout=c.dropout, length_mode=c.length_mode,
            max_length=MAX_NAME_LENGTH,
        )  # fmt: skip

    def _encode(self, pairs):
        targets, lengths = pad_batch([self.vocab.encode(name) for name, _ in pairs])
        languages = torch.tensor([self.labels.index(lang) for _, lang in pairs])
        return languages, targets, lengths

    def train_lengths(self) -> list[int]:
        return [len(name) for name, _ in self.splits["train"]]

    def train_batches(self, epoch: int, start: int = 0) -> Iterator:
        train, per_epoch = self.splits["train"], self.steps_per_epoch()
        for i, indices in enumerate(self.train_sampler.epoch(epoch, start), start):
            yield (*self._encode([train[j] for j in indices]), epoch * per_epoch + i)

    def loss(self, model, batch, state):
        languages, targets, lengths, step = batch
        teacher_prob = self.teacher_prob = self.schedule.probability(step)
        loss, metrics = model.loss(languages, targets, lengths, teacher_prob=teacher_prob)
        return loss, None, {**metrics, "teacher_prob": teacher_prob, "count": float(len(lengths))}

    @torch.no_grad()
    def evaluate(self, model, split: str) -> dict[str, float]:
        pairs = self.splits[split]
        device = next(model.parameters()).device
        sampler = BucketBatchSampler([len(n) for n, _ in pairs], 256, shuffle=False)
        totals: dict[str, float] = {}
        for indices in sampler:
            languages, targets, lengths = self._encode([pairs[i] for i in indices])
            loss, metrics = model.loss(languages.to(device), targets.to(device), lengths.to(device))
            for key, value in {"loss": float(loss), **metrics}.items():
                totals[key] = totals.get(key, 0.0) + value * len(indices)
        metrics = {key: value / len(pairs) for key, value in totals.items()}
        return with_teacher_prob(metrics, self.teacher_prob)

    @torch.no_grad()
    def _generate(self, model, languages: list[str], temperature: float, seed: int | None):
        device = next(model.parameters()).device
        generator = torch.Generator(device=device)
        if seed is None:
            generator.seed()  # a fresh seed for this generator only; the global RNG is untouched
        else:
            generator.manual_seed(seed)
        ids = torch.tensor([self.labels.index(lang) for lang in languages], device=device)
        names = model.generate(ids, temperature=temperature, generator=generator)
        return ["".join(self.vocab.decode(s)) for s in names]

    def sample(self, model, temperature: float = 0.8, seed: int | None = None, **_) -> str:
        """Four names for each of six languages."""
        shown = ["Russian", "English", "Japanese", "Italian", "German", "Vietnamese"]
        names = self._generate(model, [lang for lang in shown for _ in range(4)], temperature, seed)
        return "\n".join(
            f"{lang:>10}: {', '.join(names[4 * i : 4 * i + 4])}" for i, lang in enumerate(shown)
        )

    def predict(self, model, inputs: list[str]) -> list[str]:
        """Three generated surnames for each language named in ``inputs``."""
        known = {lang.lower(): lang for lang in self.labels}
        unknown = [x for x in inputs if x.lower() not in known]
        if unknown:
            raise ConfigError(
                f"unknown language {unknown[0]!r}; choose from {', '.join(self.labels)}"
            )
        languages = [known[x.lower()] for x in inputs]
        names = self._generate(model, [lang for lang in languages for _ in range(3)], 0.8, None)
        return [
            f"{lang}: {', '.join(names[3 * i : 3 * i + 3])}" for i, lang in enumerate(languages)
        ]
