"""Running a sweep: one Optuna study, each trial a training run in ``DIR/trials/NNNN``.

The study lives in an Optuna RDB storage (``sqlite:///DIR/study.db`` unless the sweep file gives
a database URL), so running the same command again resumes it, and the same command on another
machine (with a shared database URL) adds workers. Workers send a heartbeat: a trial whose
worker died is marked failed by the next worker that starts a trial, and retried as a new trial
that resumes the dead one's run directory from its last checkpoint. A trial stopped by Ctrl-C
or SIGTERM is saved, marked failed and resumed the same way by the next session. Each trial
reports its validations to the pruner (:class:`~rnnlab.training.trainer.Trainer`'s
``on_validate``); the study stops once ``trials`` trials have completed or been pruned.
"""

from __future__ import annotations

import json
import multiprocessing
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from rnnlab import tasks
from rnnlab.errors import ConfigError
from rnnlab.sweep.spec import CELL_OPTION, SweepSpec
from rnnlab.training import checkpoint
from rnnlab.training.config import make_config
from rnnlab.training.trainer import Trainer

SPEC_FILE = "sweep.json"
"""The sweep file as the study was started, in the sweep directory (the report reads it)."""
STUDY_DB = "study.db"
TRIALS = "trials"
COMPARED = ("name", "task", "fixed", "space")
"""What a resumed sweep must share with the one that started the directory."""


class Interrupted(Exception):
    """A signal stopped a trial (saved); the sweep ends with exit code 128 + ``signum``."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by signal {signum}")
        self.signum = signum


def require_optuna():
    """The ``optuna`` module, or a one-line ``ConfigError`` naming the extra."""
    try:
        import optuna
    except ImportError:
        raise ConfigError(
            "rnnlab sweep needs Optuna: pip install 'rnnlab[sweep]' (optuna, scikit-learn)"
        ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def storage(spec: SweepSpec, directory: Path):
    """The study's storage: the sweep file's URL or SQLite in ``directory``, with heartbeats
    and retries of trials whose worker died."""
    optuna = require_optuna()
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    url = spec.storage or f"sqlite:///{(directory / STUDY_DB).resolve()}"
    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    beat = max(1, round(spec.heartbeat_seconds))
    try:
        return RDBStorage(
            url,
            engine_kwargs=kwargs,
            heartbeat_interval=beat,
            grace_period=2 * beat,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=3),
        )
    except (optuna.exceptions.StorageInternalError, ImportError, ValueError) as error:
        raise ConfigError(f"cannot open the study storage {url}: {error}") from None


def direction(spec: SweepSpec) -> str:
    return "maximize" if tasks.get(spec.task).metric_mode == "max" else "minimize"


def open_study(spec: SweepSpec, directory: Path, seed: int = 0, create: bool = True):
    """The sweep's Optuna study (created when ``create``), its sampler seeded with ``seed``."""
    optuna = require_optuna()
    sampler = (
        optuna.samplers.TPESampler(seed=seed)
        if spec.sampler == "tpe"
        else optuna.samplers.RandomSampler(seed=seed)
    )
    pruner = {
        "none": optuna.pruners.NopPruner,
        "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=2),
        "halving": optuna.pruners.SuccessiveHalvingPruner,
    }[spec.pruner]()
    store = storage(spec, directory)
    if not create:
        try:
            return optuna.load_study(
                study_name=spec.name, storage=store, sampler=sampler, pruner=pruner
            )
        except KeyError:
            raise ConfigError(
                f"{directory} has no study {spec.name!r} yet; run the sweep"
            ) from None
    return optuna.create_study(
        study_name=spec.name,
        storage=store,
        sampler=sampler,
        pruner=pruner,
        direction=direction(spec),
        load_if_exists=True,
    )


def suggest(trial, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One value per setting of ``space`` from ``trial``."""
    params = {}
    for name, spec in space.items():
        if "categorical" in spec:
            params[name] = trial.suggest_categorical(name, spec["categorical"])
        elif "log_uniform" in spec:
            params[name] = trial.suggest_float(name, *spec["log_uniform"], log=True)
        elif "uniform" in spec:
            params[name] = trial.suggest_float(name, *spec["uniform"])
        else:
            params[name] = trial.suggest_int(name, *spec["int"], log=bool(spec.get("log")))
    return params


def trial_settings(spec: SweepSpec, params: dict[str, Any], number: int) -> dict[str, Any]:
    """``make_config`` keyword arguments of one trial: fixed settings, the trial's values (a
    ``cell_option.K`` joins ``cell_options``), its budget and seed."""
    settings: dict[str, Any] = {"seed": spec.seed + number}
    settings.update({k.replace("-", "_"): v for k, v in spec.fixed.items()})
    options = dict(settings.pop("cell_options", None) or {})
    for name, value in params.items():
        key = name.replace("-", "_")
        if key.startswith(CELL_OPTION):
            options[key[len(CELL_OPTION) :]] = value
        else:
            settings[key] = value
    if options:
        settings["cell_options"] = options
    if spec.minutes_per_trial is not None:
        settings["max_minutes"] = spec.minutes_per_trial
    else:
        settings["max_steps"] = spec.steps_per_trial
    return settings


def _source_run(trial) -> Path | None:
    """The run directory a retried or resumed trial continues: Optuna's retry of a trial whose
    worker died copies its user attributes, ``run_dir`` among them, as does
    :func:`requeue_interrupted`."""
    run_dir = trial.user_attrs.get("run_dir")
    return Path(run_dir) if run_dir and checkpoint.is_run(Path(run_dir)) else None


def make_objective(spec: SweepSpec, directory: Path):
    """The function Optuna calls per trial: train, report validations, return the best."""
    optuna = require_optuna()

    def objective(trial) -> float:
        params = suggest(trial, spec.space)
        run_dir = _source_run(trial)
        resume = run_dir is not None
        if run_dir is None:
            run_dir = directory / TRIALS / f"{trial.number:04d}"
        trial.set_user_attr("run_dir", str(run_dir))
        if resume:
            config = make_config(spec.task, base=checkpoint.read_config(run_dir))
        else:
            config = make_config(
                spec.task, out=str(run_dir), **trial_settings(spec, params, trial.number)
            )
        task = tasks.create(config.task, config, run_dir if resume else None)
        pruned = []

        def on_validate(step: int, metrics: dict[str, float]) -> bool:
            trial.report(metrics[task.metric], step)
            pruned.append(trial.should_prune())
            return pruned[-1]

        started = time.monotonic()
        with open(directory / TRIALS / f"{trial.number:04d}.log", "a") as log:
            trainer = Trainer(
                task,
                config,
                run_dir,
                resume=resume,
                out=log,
                progress=False,
                on_validate=on_validate,
            )
            trainer.fit()
        if trainer.stop_signal:
            trial.set_user_attr("interrupted", True)
            raise Interrupted(trainer.stop_signal)
        trial.set_user_attr("steps", trainer.step)
        trial.set_user_attr("minutes", (time.monotonic() - started) / 60)
        shown = " ".join(f"{k} {_short(v)}" for k, v in params.items())
        if pruned and pruned[-1]:
            print(f"trial {trial.number} | {shown} | pruned at step {trainer.step}", flush=True)
            raise optuna.TrialPruned()
        test = _test_metric(task, trainer, run_dir)
        if test is not None:
            trial.set_user_attr(f"test_{task.metric}", test)
        best = trainer.best if trainer.best is not None else float("nan")
        where = f" | test {task.metric} {test:.4f}" if test is not None else ""
        print(
            f"trial {trial.number} | {shown} | valid {task.metric} {best:.4f}{where} "
            f"| {trainer.step} steps",
            flush=True,
        )
        return best

    return objective


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _test_metric(task, trainer: Trainer, run_dir: Path) -> float | None:
    """The task's metric on its test split with the ``best`` weights (``None`` without one)."""
    checkpoint.load_weights(trainer.model, checkpoint.checkpoint_dir(run_dir, "best"))
    trainer.model.eval()
    try:
        with torch.no_grad():
            return float(task.evaluate(trainer.model, "test")[task.metric])
    except ConfigError:  # the task has no test split
        return None


def prepare(spec: SweepSpec, directory: Path) -> None:
    """Create ``directory`` with its copy of the sweep file, or check it holds this sweep."""
    (directory / TRIALS).mkdir(parents=True, exist_ok=True)
    saved_path = directory / SPEC_FILE
    if saved_path.exists():
        saved = json.loads(saved_path.read_text())
        changed = [k for k in COMPARED if saved.get(k) != spec.to_dict()[k]]
        if changed:
            raise ConfigError(
                f"{directory} holds a sweep with another {changed[0]!r}; use another --out "
                "to start a new sweep"
            )
    checkpoint.write_json_atomic(saved_path, spec.to_dict())


def requeue_interrupted(study) -> int:
    """Queue a resuming trial for each trial a signal stopped; returns how many."""
    optuna = require_optuna()
    trials = study.get_trials(deepcopy=False)
    taken = {t.user_attrs.get("resumes") for t in trials}
    queued = 0
    for t in trials:
        if t.state == optuna.trial.TrialState.FAIL and t.user_attrs.get("interrupted"):
            if t.number not in taken:
                attrs = {"resumes": t.number, "run_dir": t.user_attrs.get("run_dir")}
                study.enqueue_trial(t.params, user_attrs=attrs)
                queued += 1
    return queued


def finished(study) -> int:
    optuna = require_optuna()
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=states))


def work(spec: SweepSpec, directory: Path, worker: int = 0) -> int:
    """One worker: run trials until the study has ``spec.trials`` finished ones (or the
    session's ``total_minutes`` are spent); returns the exit code."""
    optuna = require_optuna()
    probe = open_study(spec, directory)
    seed = spec.seed * 1_000_003 + len(probe.trials) * 101 + worker  # no repeat on resume
    study = open_study(spec, directory, seed=seed)
    if finished(study) >= spec.trials:
        return 0
    stop = optuna.study.MaxTrialsCallback(
        spec.trials,
        states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED),
    )
    timeout = spec.total_minutes * 60 if spec.total_minutes else None
    try:
        study.optimize(
            make_objective(spec, directory),
            timeout=timeout,
            callbacks=[stop],
            catch=(),
        )
    except Interrupted as stopped:
        print(f"sweep stopped by signal {stopped.signum}; run it again to resume", flush=True)
        return 128 + stopped.signum
    return 0


def _work_in_process(spec_dict: dict[str, Any], directory: str, worker: int, threads: int) -> None:
    torch.set_num_threads(threads)
    raise SystemExit(work(SweepSpec(**spec_dict), Path(directory), worker))


def run_sweep(spec: SweepSpec, directory: Path, workers: int = 1) -> int:
    """Run (or resume) the sweep in ``directory`` with ``workers`` local processes."""
    require_optuna()
    prepare(spec, directory)
    study = open_study(spec, directory)
    queued = requeue_interrupted(study)
    done = finished(study)
    print(
        f"sweep {spec.name}: {done}/{spec.trials} trials finished"
        + (f", {queued} interrupted to resume" if queued else "")
        + f" | {directory}",
        flush=True,
    )
    if workers == 1:
        code = work(spec, directory)
    else:
        context = multiprocessing.get_context("spawn")
        threads = max(1, torch.get_num_threads() // workers)
        processes = [
            context.Process(
                target=_work_in_process, args=(spec.to_dict(), str(directory), i, threads)
            )
            for i in range(workers)
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join()
        code = max((p.exitcode or 0) for p in processes)
    print(f"sweep {spec.name}: {finished(study)}/{spec.trials} trials finished", flush=True)
    return code
