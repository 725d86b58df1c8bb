"""The trainer's generic flags, their defaults, and how a run's configuration is resolved.

Resolution order for every setting: a flag the user gave > the task's ``defaults`` > the
trainer's :data:`GENERIC_DEFAULTS` (or the default of the task's own flag). On ``--resume`` the
run's ``config.json`` comes first and only flags given again on the command line change it.

Programs (benchmarks, tests) build a configuration without a command line::

    config = make_config("charlm", data="input.txt", hidden=128, max_steps=200)
"""

from __future__ import annotations

import argparse
import ast
import inspect
import math
from typing import Any

from rnnlab.errors import CheckpointError, ConfigError
from rnnlab.training.curriculum import (
    CURRICULUM_DEFAULTS,
    add_curriculum_arguments,
    validate_curriculum,
)
from rnnlab.training.regularization import (
    REGULARIZATION_DEFAULTS,
    add_regularization_arguments,
    validate_regularization,
)

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "adagrad")
SCHEDULES = ("constant", "cosine", "step")

GENERIC_DEFAULTS: dict[str, Any] = {
    "task": "charlm",
    "data_dir": None,
    "cell": "lstm",
    "cell_options": {},
    "hidden": 256,
    "layers": 1,
    "embed": 64,
    "dropout": 0.0,
    "seq_len": 100,
    "batch_size": 32,
    "lr": 2e-3,
    "optimizer": "adam",
    "momentum": None,
    "input_noise": 0.0,
    "schedule": "constant",
    "warmup": 0,
    "clip_norm": None,
    "clip_value": None,
    "clip_target": 0.05,
    "max_steps": None,
    "max_minutes": None,
    "epochs": None,
    "eval_every": 500,
    "sample_every": 250,
    "log_every": 50,
    "log_grad_flow": None,
    "tensorboard": False,
    "recovery_patience": 5,
    "seed": 0,
    "device": "cpu",
    "out": None,
    "resume": None,
    **REGULARIZATION_DEFAULTS,
    **CURRICULUM_DEFAULTS,
}
"""Defaults of the generic flags (a task's ``defaults`` override them)."""

POSITIVE_INTS = ("hidden", "layers", "embed", "seq_len", "batch_size", "max_steps", "epochs")
POSITIVE_FLOATS = ("lr", "max_minutes", "clip_value")
POSITIVE_INTERVALS = (
    "eval_every",
    "sample_every",
    "log_every",
    "recovery_patience",
    "log_grad_flow",
)
EXCLUSIVE = (("clip_norm", "clip_value"), ("max_steps", "max_minutes", "epochs"))
"""Groups of settings where giving one drops the defaults of the others (giving ``--max-steps``
replaces a default time budget; ``--clip-value`` replaces a default ``--clip-norm``)."""
RUN_ONLY = ("out", "resume", "device", "max_steps", "max_minutes", "epochs", "tensorboard")
"""Settings a resumed run may change; every other one must stay as the run was started."""


def add_generic_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags every task understands. Their parsed default is ``None`` ("not given") so that
    task defaults and a resumed run's configuration can fill them in."""
    g = parser.add_argument_group("model")
    g.add_argument("--cell", help="recurrent cell, any of `rnnlab.cells.available()` (lstm)")
    g.add_argument(
        "--cell-option",
        dest="cell_options",
        action="append",
        type=parse_cell_option,
        metavar="KEY=VALUE",
        help="keyword argument of every cell, repeatable: --cell-option layer_norm=True",
    )
    g.add_argument("--hidden", type=int, help="hidden units per layer (256)")
    g.add_argument("--layers", type=int, help="stacked recurrent layers (1)")
    g.add_argument("--embed", type=int, help="input embedding size (64)")
    g.add_argument("--dropout", type=float, help="dropout between layers and before the output")
    g = parser.add_argument_group("training")
    g.add_argument("--seq-len", type=int, help="steps per truncated-BPTT chunk (100)")
    g.add_argument("--batch-size", type=int, help="parallel streams / sequences per batch (32)")
    g.add_argument("--lr", type=float, help="peak learning rate (2e-3)")
    g.add_argument("--optimizer", help=f"one of {', '.join(OPTIMIZERS)} (adam)")
    g.add_argument("--momentum", type=float, help="sgd's momentum (0.9)")
    g.add_argument(
        "--input-noise",
        type=float,
        metavar="SIGMA",
        help="std of Gaussian noise added to real-valued inputs in training (0)",
    )
    g.add_argument("--schedule", help=f"learning-rate schedule: {', '.join(SCHEDULES)} (constant)")
    g.add_argument("--warmup", type=int, help="linear warm-up steps (0)")
    clip = g.add_mutually_exclusive_group()
    clip.add_argument(
        "--clip-norm",
        type=_clip_norm,
        help="clip the global gradient norm to X, or `auto`: at the running quantile that clips "
        "--clip-target of the steps",
    )
    clip.add_argument("--clip-value", type=float, help="clip every gradient element to [-X, X]")
    g.add_argument("--clip-target", type=float, help="share of steps --clip-norm auto clips (0.05)")
    g.add_argument("--max-steps", type=int, help="stop after N optimizer steps")
    g.add_argument("--max-minutes", type=float, help="stop after X minutes of training")
    g.add_argument("--epochs", type=int, help="stop after N passes over the training data")
    g.add_argument("--eval-every", type=int, help="validate every N steps (500)")
    g.add_argument("--sample-every", type=int, help="print a sample every N steps (250)")
    g.add_argument("--log-every", type=int, help="log training metrics every N steps (50)")
    g.add_argument(
        "--log-grad-flow", type=int, metavar="EVERY", help="log dL_T/dh_t every N steps (off)"
    )
    g.add_argument(
        "--tensorboard",
        action="store_true",
        default=None,
        help="also write the metrics as TensorBoard event files into RUN/tensorboard",
    )
    g.add_argument("--seed", type=int, help="random seed (0)")
    g.add_argument("--device", help="cpu, cuda, cuda:1, ... (cpu)")
    g = parser.add_argument_group("run")
    g.add_argument("--task", help="what to learn (charlm); see `rnnlab.tasks.available()`")
    g.add_argument("--data-dir", help="folder holding datasets (DIR/<dataset>/<file>)")
    g.add_argument("--out", help="run directory to create (runs/<timestamp>)")
    g.add_argument("--resume", metavar="DIR", help="continue the run in DIR exactly")
    add_regularization_arguments(parser)
    add_curriculum_arguments(parser)


def _clip_norm(text: str) -> float | str:
    """``--clip-norm``: a number or ``auto``."""
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or auto, got {text!r}") from None


def parse_cell_option(text: str) -> tuple[str, Any]:
    """``"layer_norm=True"`` -> ``("layer_norm", True)``; the value is a Python literal
    (number, True/False/None, quoted string) or else a plain string."""
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (like layer_norm=True), got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def given(args: argparse.Namespace) -> dict[str, Any]:
    """The settings the user gave explicitly (parsed defaults are ``None``)."""
    skip = ("func", "debug", "command")
    return {k: v for k, v in vars(args).items() if v is not None and k not in skip}


def task_argument_defaults(task_cls) -> dict[str, Any]:
    """Defaults of a task's own flags, read from a scratch parser."""
    parser = argparse.ArgumentParser(add_help=False)
    task_cls.add_arguments(parser)
    return {a.dest: a.default for a in parser._actions if a.dest != argparse.SUPPRESS}


def task_options(task_cls) -> dict[str, Any]:
    """Every setting task ``task_cls`` takes (the generic ones and its own), with its default."""
    return {**GENERIC_DEFAULTS, **task_argument_defaults(task_cls), **task_cls.defaults}


def owners(name: str) -> list[str]:
    """The tasks that have a flag of their own for setting ``name``."""
    from rnnlab.tasks import available, get

    return [t for t in available() if name in task_argument_defaults(get(t))]


def not_an_option(name: str, task: str) -> str:
    """The message for a setting ``name`` that task ``task`` does not take, naming the tasks
    that do."""
    flag = "--" + name.replace("_", "-")
    owners_ = owners(name)
    shown = ", ".join(owners_[:4]) + (f" and {len(owners_) - 4} more" if len(owners_) > 4 else "")
    where = f" (tasks that take it: {shown})" if owners_ else ""
    return f"{flag} is not an option of task {task}{where}"


_KIND_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
_KIND_NAMES.update({list: "a list", tuple: "a list", dict: "a mapping"})


def _same_kind(value: Any, default: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(default))


def _check_saved_kinds(saved: dict[str, Any], defaults: dict[str, Any]) -> None:
    """A resumed run's settings have the kinds of the defaults (``"hidden": "big"`` is not a
    size): a ``CheckpointError`` naming the setting otherwise."""
    for name, value in saved.items():
        default = defaults.get(name)
        if value is not None and default is not None and not _same_kind(value, default):
            raise CheckpointError(
                f"the run's config.json has {name} = {value!r}, not {_KIND_NAMES[type(default)]}; "
                "the file is damaged (restore it, or start a new run)"
            )


def make_config(task: str = "charlm", base: dict[str, Any] | None = None, **given_: Any):
    """Resolve a full configuration: ``given_`` > ``base`` (a resumed run) > task > generic.

    A setting that is neither generic nor one of the task's own flags is an error naming the
    task, so that two tasks can give one flag different meanings."""
    from rnnlab.tasks import get

    task_cls = get(task)
    values = task_options(task_cls)
    for name in base or {}:
        if name not in values:
            raise CheckpointError(
                f"the run's config.json has {name!r}, but {not_an_option(name, task)}; "
                "remove it from the file, or start a new run"
            )
    _check_saved_kinds(base or {}, values)
    values.update(base or {})
    given_ = {k: v for k, v in given_.items() if v is not None}
    for name in given_:
        if name not in values:
            raise ConfigError(not_an_option(name, task))
    if isinstance(given_.get("cell_options"), list):
        given_["cell_options"] = dict(given_["cell_options"])
    for group in EXCLUSIVE:
        if any(k in given_ for k in group):
            values.update({k: None for k in group})
    values.update(given_)
    values["task"] = task
    config = argparse.Namespace(**values)
    validate(config)
    return config


def validate(config: argparse.Namespace) -> None:
    """Raise ``ConfigError`` for a setting no run can use."""
    for name, value in sorted(vars(config).items()):  # flags and config files alike
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"--{name.replace('_', '-')} must be a finite number, got {value}")
    for name in POSITIVE_INTS + POSITIVE_FLOATS + POSITIVE_INTERVALS:
        value = getattr(config, name, None)
        kind = float if name in POSITIVE_FLOATS else int
        if value is not None and not _same_kind(value, kind()):
            flag = "--" + name.replace("_", "-")
            raise ConfigError(f"{flag} must be {_KIND_NAMES[kind]}, got {value!r}")
        if value is not None and value <= 0:
            flag = "--" + name.replace("_", "-")
            raise ConfigError(f"{flag} must be positive, got {value}")
    clip_norm = config.clip_norm
    if clip_norm is not None and clip_norm != "auto":
        if isinstance(clip_norm, str) or clip_norm <= 0:
            raise ConfigError(f"--clip-norm must be a positive number or auto, got {clip_norm!r}")
    if not 0.0 < config.clip_target < 1.0:
        raise ConfigError(f"--clip-target must be in (0, 1), got {config.clip_target}")
    if config.input_noise < 0:
        raise ConfigError(f"--input-noise must be zero or positive, got {config.input_noise}")
    if config.momentum is not None and not 0.0 <= config.momentum < 1.0:
        raise ConfigError(f"--momentum must be in [0, 1), got {config.momentum}")
    if config.warmup < 0:
        raise ConfigError(f"--warmup must be zero or positive, got {config.warmup}")
    if not 0.0 <= config.dropout < 1.0:
        raise ConfigError(f"--dropout must be in [0, 1), got {config.dropout}")
    if config.optimizer not in OPTIMIZERS:
        raise ConfigError(
            f"unknown optimizer {config.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}"
        )
    if config.schedule not in SCHEDULES:
        raise ConfigError(
            f"unknown schedule {config.schedule!r}; choose one of {', '.join(SCHEDULES)}"
        )
    if config.clip_norm is not None and config.clip_value is not None:
        raise ConfigError("give --clip-norm or --clip-value, not both")
    validate_regularization(config)
    validate_curriculum(config)
    from rnnlab.cells import available, get

    if config.cell not in available():
        raise ConfigError(
            f"unknown cell {config.cell!r}; available cells: {', '.join(available())}"
        )
    accepted = inspect.signature(get(config.cell)).parameters
    for key in getattr(config, "cell_options", None) or {}:
        if key not in accepted or key in ("input_size", "hidden_size"):
            raise ConfigError(
                f"cell {config.cell!r} has no option {key!r}; it takes "
                f"{', '.join(k for k in accepted if k not in ('input_size', 'hidden_size'))}"
            )
