"""Curriculum learning: train on short sequences first and lengthen them on a schedule.

The training length runs through stages ``L_0 = --curriculum-start``, ``L_{k+1} = min(full,
max(L_k + 1, round(--curriculum-factor * L_k)))`` until it reaches the full length ``full``:
the synthetic tasks' ``--length`` (the length of the generated training sequences) or the
language models' ``--seq-len`` (the truncated-BPTT chunk). Validation and test always use the
full length, so their numbers stay comparable with a run without curriculum.

==========  =================================================================================
step        stage ``k = step // --curriculum-every``: optimizer steps ``1 .. N`` train at
            ``L_0``, steps ``N + 1 .. 2N`` at ``L_1``, ... (``N`` default 500)
plateau     the next stage when the task's validation metric (the one that picks ``best``)
            has not improved on its best of the current stage by more than
            ``--curriculum-threshold`` of that best (relative, default 0.01) for
            ``--curriculum-patience`` validations in a row (default 2); the validations every
            ``--eval-every`` steps count (not a run's final one)
==========  =================================================================================

``--curriculum-start`` defaults to a quarter of the full length (at least the task's shortest
length) and ``--curriculum-factor`` to 2. The :class:`Curriculum` is part of the trainer's
checkpoint (stage, plateau counter, and ``position``: where the chunks of a language model
have reached in the current epoch's streams, in time steps), so ``--resume`` continues it
exactly.
"""

from __future__ import annotations

import argparse
from typing import Any

from rnnlab.errors import ConfigError

KINDS = ("step", "plateau")
DEFAULT_EVERY = 500
DEFAULT_PATIENCE = 2
DEFAULT_FACTOR = 2.0
DEFAULT_THRESHOLD = 0.01

CURRICULUM_DEFAULTS: dict[str, Any] = {
    "curriculum": None,
    "curriculum_start": None,
    "curriculum_factor": None,
    "curriculum_every": None,
    "curriculum_patience": None,
    "curriculum_threshold": None,
}
"""Off by default; the defaults of the kind chosen are filled in by :func:`validate_curriculum`."""


def add_curriculum_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("curriculum (docs/training.md)")
    g.add_argument(
        "--curriculum",
        metavar="{step,plateau}",
        help="train on short sequences first: lengthen every --curriculum-every steps (step) "
        "or when validation stops improving (plateau); synthetic tasks and language models",
    )
    g.add_argument(
        "--curriculum-start",
        type=int,
        metavar="L",
        help="first training length (a quarter of --length / --seq-len)",
    )
    g.add_argument(
        "--curriculum-factor",
        type=float,
        metavar="F",
        help=f"each stage multiplies the length by F, at least +1 ({DEFAULT_FACTOR:g})",
    )
    g.add_argument(
        "--curriculum-every",
        type=int,
        metavar="N",
        help=f"--curriculum step: steps per stage ({DEFAULT_EVERY})",
    )
    g.add_argument(
        "--curriculum-patience",
        type=int,
        metavar="P",
        help="--curriculum plateau: validations without improvement before lengthening "
        f"({DEFAULT_PATIENCE})",
    )
    g.add_argument(
        "--curriculum-threshold",
        type=float,
        metavar="R",
        help="--curriculum plateau: an improvement of less than R times the best value counts "
        f"as none ({DEFAULT_THRESHOLD:g})",
    )


def validate_curriculum(config: argparse.Namespace) -> None:
    """Raise ``ConfigError`` for curriculum settings no run can use, and fill in the defaults of
    the kind chosen (so that the run's ``config.json`` shows them)."""
    kind = getattr(config, "curriculum", None)
    if kind is None:
        needs = {
            "curriculum_start": "step or --curriculum plateau",
            "curriculum_factor": "step or --curriculum plateau",
            "curriculum_every": "step",
            "curriculum_patience": "plateau",
            "curriculum_threshold": "plateau",
        }
        for name, kinds in needs.items():
            if getattr(config, name, None) is not None:
                raise ConfigError(f"--{name.replace('_', '-')} needs --curriculum {kinds}")
        return
    if kind not in KINDS:
        raise ConfigError(f"unknown curriculum {kind!r}; choose step or plateau")
    unused = (
        ("curriculum_patience", "curriculum_threshold") if kind == "step" else ("curriculum_every",)
    )
    for name in unused:
        if getattr(config, name, None) is not None:
            other = "plateau" if kind == "step" else "step"
            raise ConfigError(f"--{name.replace('_', '-')} is for --curriculum {other}, not {kind}")
    if config.curriculum_factor is None:
        config.curriculum_factor = DEFAULT_FACTOR
    if kind == "step" and config.curriculum_every is None:
        config.curriculum_every = DEFAULT_EVERY
    if kind == "plateau":
        if config.curriculum_patience is None:
            config.curriculum_patience = DEFAULT_PATIENCE
        if config.curriculum_threshold is None:
            config.curriculum_threshold = DEFAULT_THRESHOLD
        if not 0.0 <= config.curriculum_threshold < 1.0:
            raise ConfigError(
                f"--curriculum-threshold must be in [0, 1), got {config.curriculum_threshold:g}"
            )
    for name in ("curriculum_start", "curriculum_every", "curriculum_patience"):
        value = getattr(config, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ConfigError(f"--{name.replace('_', '-')} must be an integer, got {value!r}")
        if value is not None and value < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be positive, got {value}")
    if not config.curriculum_factor > 1.0:
        raise ConfigError(f"--curriculum-factor must be > 1, got {config.curriculum_factor:g}")


def build_curriculum(
    config: argparse.Namespace, full: int, minimum: int = 1, what: str = "--length"
) -> Curriculum | None:
    """The curriculum ``config`` asks for, up to the task's full length ``full`` (``None`` when
    ``--curriculum`` is off). ``minimum`` is the task's shortest usable length; ``what`` names
    the flag that sets ``full``, for error messages."""
    kind = getattr(config, "curriculum", None)
    if kind is None:
        return None
    start = config.curriculum_start
    if start is None:
        start = min(full, max(minimum, -(-full // 4)))
    if not minimum <= start <= full:
        raise ConfigError(
            f"--curriculum-start must be between {minimum} and {what} {full}, got {start}"
        )
    return Curriculum(
        kind,
        start,
        full,
        factor=config.curriculum_factor,
        every=config.curriculum_every,
        patience=config.curriculum_patience,
        threshold=config.curriculum_threshold,
    )


class Curriculum:
    """The training length of a run, by stage; the trainer advances it and checkpoints it.

    Args:
        kind: ``"step"`` (a stage every ``every`` optimizer steps) or ``"plateau"`` (a stage
            after ``patience`` validations without improvement).
        start: the length of stage 0.
        full: the final length (the task's ``--length`` or ``--seq-len``).
        factor: growth per stage (> 1; each stage is at least one step longer).
        every: ``"step"``: optimizer steps per stage.
        patience: ``"plateau"``: validations without improvement before the next stage.
        threshold: ``"plateau"``: an improvement of less than ``threshold * |best|`` counts as
            none.

    Example::

        curriculum = Curriculum("step", 25, 200, factor=2.0, every=100)
        curriculum.lengths()            # [25, 50, 100, 200]
        curriculum.after_step(100)      # True: steps 101.. train at 50
    """

    def __init__(
        self,
        kind: str,
        start: int,
        full: int,
        factor: float = DEFAULT_FACTOR,
        every: int | None = None,
        patience: int | None = None,
        threshold: float | None = None,
    ):
        if kind not in KINDS:
            raise ConfigError(f"unknown curriculum {kind!r}; choose step or plateau")
        if not 1 <= start <= full or not factor > 1.0:
            raise ValueError(f"need 1 <= start <= full and factor > 1, got {start} {full} {factor}")
        self.kind, self.factor = kind, factor
        self.every = every or DEFAULT_EVERY
        self.patience = patience or DEFAULT_PATIENCE
        self.threshold = DEFAULT_THRESHOLD if threshold is None else threshold
        self.stages = self._stages(start, full, factor)
        self.stage = 0
        self.bad_validations = 0  # plateau: validations in a row without improvement
        self.stage_best: float | None = None  # plateau: best metric of the current stage
        self.validated_step: int | None = None  # plateau: the last validation counted
        self.position = 0
        """Time steps of the current epoch's streams already trained on, for tasks whose chunk
        boundaries move with the length (the language models); 0 for the others."""

    @staticmethod
    def _stages(start: int, full: int, factor: float) -> list[int]:
        lengths = [start]
        while lengths[-1] < full:
            lengths.append(min(full, max(lengths[-1] + 1, round(lengths[-1] * factor))))
        return lengths

    def lengths(self) -> list[int]:
        """The length of every stage, the last being the full length."""
        return list(self.stages)

    @property
    def length(self) -> int:
        """The training length now."""
        return self.stages[self.stage]

    @property
    def done(self) -> bool:
        """Whether the full length is reached."""
        return self.stage == len(self.stages) - 1

    def after_step(self, step: int) -> bool:
        """Called after optimizer step ``step`` (1-based); ``True`` when the length changed."""
        if self.kind != "step":
            return False
        stage = min(step // self.every, len(self.stages) - 1)
        changed = stage != self.stage
        self.stage = stage
        return changed

    def after_validation(self, step: int, value: float, mode: str) -> bool:
        """Called with the validation ``value`` of the task's metric at ``step`` (``mode``
        ``"min"`` or ``"max"``: whether lower or higher is better); ``True`` when the length
        changed. A step already counted is ignored (a run's final validation repeats it)."""
        if self.kind != "plateau" or self.done or step == self.validated_step:
            return False
        self.validated_step = step
        best = self.stage_best
        margin = 0.0 if best is None else self.threshold * abs(best)
        if best is None or (value < best - margin if mode == "min" else value > best + margin):
            self.stage_best, self.bad_validations = value, 0
            return False
        self.bad_validations += 1
        if self.bad_validations < self.patience:
            return False
        self.stage += 1
        self.stage_best, self.bad_validations = None, 0
        return True

    def describe(self) -> str:
        """One line: the kind and the lengths of the stages."""
        when = (
            f"every {self.every} steps"
            if self.kind == "step"
            else f"after {self.patience} validation{'s' * (self.patience != 1)} without improvement"
        )
        lengths = " -> ".join(str(n) for n in self.stages)
        return f"curriculum {self.kind}: length {lengths} (next stage {when})"

    def state_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "bad_validations": self.bad_validations,
            "stage_best": self.stage_best,
            "validated_step": self.validated_step,
            "position": self.position,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stage = state["stage"]
        self.bad_validations = state["bad_validations"]
        self.stage_best = state["stage_best"]
        self.validated_step = state["validated_step"]
        self.position = state["position"]
