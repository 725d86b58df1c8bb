"""Run one benchmark with the Trainer and format its result beside the published numbers.

``run_benchmark`` resolves the settings (the entry's defaults < ``--quick`` < the user's flags),
trains within the budget (``resume_benchmark`` continues a stopped run to its budget) and
evaluates on the entry's split the checkpoint with the best validation metric (the final model
under *mnist-test-split*, whose validation and test images are the same); a task with
``closed_form = True`` (``mackey-glass``) is instead fitted once by ``task.fit(model)`` and
evaluated. ``evaluate_run`` does the same for an existing run directory. All return a
:class:`BenchResult`; ``format_row`` prints it as one Markdown table row and ``append_result``
adds it with date, commit, machine, command and budget to ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import torch

from rnnlab import tasks
from rnnlab.bench.entries import COLUMNS, BenchEntry, get_entry
from rnnlab.errors import CheckpointError
from rnnlab.models.sequence import count_parameters
from rnnlab.models.tcn import TCNSequenceModel
from rnnlab.training import checkpoint
from rnnlab.training.config import make_config
from rnnlab.training.trainer import Trainer

DEFAULT_BUDGET_MINUTES = 10.0
HEADER = "| task | cell | params | steps | minutes | result | " + " | ".join(COLUMNS) + " | notes |"
RULE = "|" + "---|" * (HEADER.count("|") - 1)


@dataclass
class BenchResult:
    """What one benchmark run measured."""

    entry: BenchEntry
    config: dict[str, Any]
    parameters: int
    steps: int
    minutes: float
    metrics: dict[str, float]
    evaluated: str = "final"
    """Which weights were evaluated: ``"final"`` or ``"best valid @ step N"``."""
    model_name: str = ""
    """What the cell column prints: the cell, or ``tcn`` for the convolutional baseline."""

    @property
    def value(self) -> float:
        return self.metrics[self.entry.metric] * self.entry.scale

    @property
    def labels(self) -> list[str]:
        """Protocol labels of this run (e.g. ``mnist-test-split``, ``T=100 (paper: 600)``)."""
        labels = [self.evaluated]
        if self.config.get("mnist_protocol") == "test-split":
            labels.append("mnist-test-split")
        for key, expected in self.entry.protocol.items():
            actual = self.config.get(key)
            if actual != expected and key != "mnist_protocol":
                labels.append(f"{key}={actual} (published: {expected})")
        return labels


def resolve_settings(
    entry: BenchEntry,
    flags: dict[str, Any],
    budget_minutes: float | None = None,
    quick: bool = False,
) -> dict[str, Any]:
    """The flags to train with: entry defaults (with ``--model tcn``: and the entry's TCN sizes)
    < quick settings < given flags < budget."""
    model = {**entry.tcn_settings, "model": "tcn"} if flags.get("model") == "tcn" else {}
    settings = {**entry.settings, **model, **(entry.quick if quick else {}), **flags}
    if budget_minutes is not None:
        settings["max_minutes"] = budget_minutes
        if not any(key in flags for key in ("max_steps", "epochs")):
            settings.pop("max_steps", None)
    elif not any(settings.get(key) for key in ("max_steps", "max_minutes", "epochs")):
        settings["max_minutes"] = DEFAULT_BUDGET_MINUTES
    return settings


def run_benchmark(
    name: str,
    flags: dict[str, Any] | None = None,
    budget_minutes: float | None = None,
    quick: bool = False,
    log: TextIO | None = None,
    progress: bool = False,
) -> BenchResult:
    """Train benchmark ``name`` and evaluate the final model on its reported split.

    ``flags`` are generic and task flags by their ``dest`` names (``{"cell": "gru"}``; one the
    task does not take is a ``ConfigError`` naming the task); the run
    directory is ``flags["out"]`` or a temporary folder removed afterwards. Trainer output goes
    to ``log`` (default: discarded).
    """
    entry = get_entry(name)
    settings = resolve_settings(entry, flags or {}, budget_minutes, quick)
    with tempfile.TemporaryDirectory(prefix="rnnlab-bench-") as scratch:
        run_dir = Path(settings.get("out") or Path(scratch) / "run")
        settings["out"] = str(run_dir)
        config = make_config(entry.task, **settings)
        task = tasks.create(entry.task, config)
        if getattr(task, "closed_form", False):
            return _fit_closed_form(entry, task)
        return _train(entry, task, run_dir, False, log, progress)


def resume_benchmark(
    name: str,
    config: argparse.Namespace,
    run_dir: str | Path,
    log: TextIO | None = None,
    progress: bool = False,
) -> BenchResult:
    """Continue the stopped run of benchmark ``name`` in ``run_dir`` from its ``last``
    checkpoint to the budget of ``config`` (the run's configuration, its budget possibly
    raised), and evaluate it as :func:`run_benchmark` does."""
    entry = get_entry(name)
    run_dir = Path(run_dir)
    if config.task != entry.task:
        raise CheckpointError(f"{run_dir} is a run of task {config.task!r}, not {entry.task!r}")
    config.out = str(run_dir)
    task = tasks.create(entry.task, config, run_dir)
    return _train(entry, task, run_dir, True, log, progress)


class BenchStopped(Exception):
    """A benchmark run stopped by a signal before its budget (saved, resumable)."""

    def __init__(self, signum: int, step: int):
        super().__init__(f"stopped at step {step:,} (saved)")
        self.signum, self.step = signum, step


def _train(
    entry: BenchEntry, task, run_dir: Path, resume: bool, log: TextIO | None, progress: bool
) -> BenchResult:
    """Train ``task`` (a new run, or resume the one in ``run_dir``) and evaluate it; a run
    stopped by a signal raises :class:`BenchStopped` instead."""
    out = log or io.StringIO()
    trainer = Trainer(task, task.config, run_dir, resume=resume, out=out, progress=progress)
    trainer.fit()
    if trainer.stop_signal:
        raise BenchStopped(trainer.stop_signal, trainer.step)
    return _evaluate(entry, task, trainer.model, run_dir, trainer.step, trainer.elapsed)


def evaluate_run(name: str, run_dir: str | Path, data_dir: str | None = None) -> BenchResult:
    """Evaluate an existing run of benchmark ``name`` (made by ``rnnlab bench --out DIR`` or
    ``rnnlab train``) as :func:`run_benchmark` would have at its end."""
    entry = get_entry(name)
    run_dir = Path(run_dir)
    saved = checkpoint.read_config(run_dir)
    if saved.get("task") != entry.task:
        raise CheckpointError(
            f"{run_dir} is a run of task {saved.get('task')!r}, not {entry.task!r}"
        )
    config = make_config(entry.task, base=saved, data_dir=data_dir)
    task = tasks.create(entry.task, config, run_dir)
    model = task.build_model().to(config.device)
    state = checkpoint.load_state(checkpoint.checkpoint_dir(run_dir, "last"))
    elapsed = state["schedule"]["elapsed"]
    return _evaluate(entry, task, model, run_dir, state["position"]["step"], elapsed)


def _fit_closed_form(entry: BenchEntry, task) -> BenchResult:
    """Fit a closed-form model (``task.fit(model) -> (seconds, fitted values)``) and evaluate it;
    the row's parameters are the fitted values and its time the fit time."""
    model = task.build_model().to(task.config.device)
    seconds, fitted = task.fit(model)
    model.eval()
    with torch.no_grad():
        metrics = task.evaluate(model, entry.split)
    return BenchResult(
        entry=entry,
        config=vars(task.config),
        parameters=fitted,
        steps=0,
        minutes=seconds / 60.0,
        metrics=metrics,
        evaluated=f"closed-form fit in {seconds:.3g} s",
        model_name=str(task.config.cell),
    )


def _evaluate(
    entry: BenchEntry, task, model, run_dir: Path, steps: int, seconds: float
) -> BenchResult:
    config = task.config
    same_images = getattr(config, "mnist_protocol", None) == "test-split"
    tag = "last" if same_images else "best"
    path = checkpoint.checkpoint_dir(run_dir, tag)
    checkpoint.load_weights(model, path)
    step = json.loads((path / "meta.json").read_text())["step"]
    model.eval()
    with torch.no_grad():
        metrics = task.evaluate(model, entry.split)
    return BenchResult(
        entry=entry,
        config=vars(config),
        parameters=count_parameters(model),
        steps=steps,
        minutes=seconds / 60.0,
        metrics=metrics,
        evaluated="final" if tag == "last" else f"best valid @ step {step:,}",
        model_name="tcn" if isinstance(model, TCNSequenceModel) else str(config.cell),
    )


def _format_value(value: float) -> str:
    return f"{value:.3e}" if 0 < abs(value) < 1e-3 else f"{value:.4g}"


def format_row(result: BenchResult) -> str:
    """One Markdown table row (columns of :data:`HEADER`)."""
    entry = result.entry
    labelled = ", ".join([entry.split, *result.labels])
    if "baseline" in result.metrics:
        labelled += f"; memoryless baseline {_format_value(result.metrics['baseline'])}"
    for key, label in entry.also.items():
        if key in result.metrics:  # a metric of some settings only (a probabilistic head)
            labelled += f"; {label} {_format_value(result.metrics[key])}"
    published = [entry.published.get(column, "-") for column in COLUMNS]
    notes = [entry.published["other"]] if "other" in entry.published else []
    notes += [entry.note] if entry.note else []
    notes.append(f"published: {entry.source}")
    cells = [
        entry.name,
        result.model_name,
        f"{result.parameters:,}",
        f"{result.steps:,}",
        f"{result.minutes:.1f}",
        f"{entry.label} {_format_value(result.value)}{'%' if entry.scale == 100 else ''} "
        f"({labelled})",
        *published,
        "; ".join(notes),
    ]
    return "| " + " | ".join(cells) + " |"


RESULTS = "benchmarks/RESULTS.md"


def git_commit(cwd: Path | None = None) -> str:
    """The current commit (short hash; ``+dirty`` when tracked files other than the results file
    have changes), or ``unknown``."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=cwd,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", f":!{RESULTS}"],
            capture_output=True,
            text=True,
            check=True,
            cwd=cwd,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def machine() -> str:
    """CPU/GPU, core count, torch threads and version, for the results file."""
    processor = platform.processor() or platform.machine()
    device = "cpu"
    if torch.cuda.is_available():
        device = torch.cuda.get_device_name(0)
    return (
        f"{platform.system()} {processor}, {os.cpu_count()} cores, torch "
        f"{torch.__version__} ({torch.get_num_threads()} threads), {device}"
    )


RESULTS_HEADER = (
    "# Benchmark results\n\n"
    "Appended by `rnnlab bench TASK --append-results`. Each row is one run: the final model "
    "after its budget, evaluated on the split named in the result. Published numbers beside it "
    "(see docs/bench.md for the sources); [M] marks numbers not verified in the source.\n\n"
    "| date (UTC) | commit | machine | command | budget | "
    + HEADER.removeprefix("| ")
    + "\n|"
    + "---|" * (5 + HEADER.count("|") - 1)
    + "\n"
)


def append_result(
    result: BenchResult, path: str | Path, command: str, budget: str, commit: str, note: str = ""
) -> None:
    """Append ``result`` to the results table in ``path`` (created with its header).

    ``commit`` is the code that ran (take :func:`git_commit` before training starts)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    where = machine() + (f"; {note}" if note else "")
    prefix = f"| {stamp} | {commit} | {where} | `{command}` | {budget} "
    if not path.exists():
        path.write_text(RESULTS_HEADER)
    with open(path, "a") as handle:
        handle.write(prefix + format_row(result) + "\n")


def command_line() -> str:
    """The command as typed (``rnnlab`` plus its arguments)."""
    return " ".join(["rnnlab", *sys.argv[1:]])
