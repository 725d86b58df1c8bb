"""A sweep file: what to train, what to search, and how long.

YAML, TOML or JSON, for example::

    name: greff-jsb                 # the study's name (default: the file's stem)
    task: jsb
    fixed: {layers: 1, optimizer: sgd, eval_every: 25}
    space:                          # setting -> distribution; cell_option.K is --cell-option K=
      cell_option.variant: {categorical: [vanilla, nig, nfg]}
      lr: {log_uniform: [1.0e-4, 1.0e-1]}
      momentum: {uniform: [0.0, 0.99]}
      hidden: {int: [20, 200], log: true}
    sampler: random                 # random | tpe
    pruner: none                    # none | median | halving
    trials: 24                      # trials to finish (complete or pruned), over all workers
    minutes_per_trial: 0.5          # or steps_per_trial: N; total_minutes caps a session
    reference: vanilla              # the report's baseline value of each categorical

Settings are ``rnnlab train``'s flags, underscored (``momentum``, ``input_noise`` ...).
``storage`` (a database URL) replaces the default
``sqlite:///DIR/study.db``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rnnlab.errors import ConfigError

"""Settings the trainer reads when present that ``rnnlab train`` has no flag for yet."""
CELL_OPTION = "cell_option."
DISTRIBUTIONS = ("categorical", "uniform", "log_uniform", "int")
SAMPLERS = ("random", "tpe")
PRUNERS = ("none", "median", "halving")
KEYS = (
    "name",
    "task",
    "fixed",
    "space",
    "sampler",
    "pruner",
    "trials",
    "minutes_per_trial",
    "steps_per_trial",
    "total_minutes",
    "reference",
    "storage",
    "seed",
    "heartbeat_seconds",
)


@dataclass
class SweepSpec:
    """A checked sweep file (see the module's docstring for the keys)."""

    name: str
    task: str
    space: dict[str, dict[str, Any]]
    fixed: dict[str, Any] = field(default_factory=dict)
    sampler: str = "random"
    pruner: str = "none"
    trials: int = 10
    minutes_per_trial: float | None = None
    steps_per_trial: int | None = None
    total_minutes: float | None = None
    reference: str | None = None
    storage: str | None = None
    seed: int = 0
    heartbeat_seconds: float = 30.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _parse(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"sweep file {path} is not UTF-8 text: save it as UTF-8") from None
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        import yaml

        parse, errors = yaml.safe_load, yaml.YAMLError
    elif suffix == ".toml":
        try:
            import tomllib
        except ModuleNotFoundError:  # Python < 3.11
            import tomli as tomllib
        parse, errors = tomllib.loads, tomllib.TOMLDecodeError
    elif suffix == ".json":
        parse, errors = json.loads, json.JSONDecodeError
    else:
        raise ConfigError(f"sweep file {path} must end in .yaml, .yml, .toml or .json")
    try:
        return parse(text)
    except errors as error:
        first = str(error).splitlines()[0]
        raise ConfigError(f"sweep file {path} cannot be read: {first}") from None


def known_settings(task: str) -> dict[str, Any]:
    """Every setting a trial of ``task`` takes, with its default."""
    from rnnlab import tasks
    from rnnlab.training.config import GENERIC_DEFAULTS, task_argument_defaults

    if task not in tasks.available():
        raise ConfigError(f"unknown task {task!r}; choose one of {', '.join(tasks.available())}")
    return {**GENERIC_DEFAULTS, **task_argument_defaults(tasks.get(task))}


def _check_distribution(name: str, spec: Any) -> None:
    if not isinstance(spec, dict) or not spec.keys() & set(DISTRIBUTIONS):
        raise ConfigError(
            f"space: {name} needs one of {', '.join(DISTRIBUTIONS)}, like {{uniform: [0, 1]}}"
        )
    kind = next(k for k in DISTRIBUTIONS if k in spec)
    values = spec[kind]
    if kind == "categorical":
        if not isinstance(values, list) or not values:
            raise ConfigError(f"space: {name}: categorical needs a non-empty list of values")
        return
    if not (isinstance(values, list) and len(values) == 2) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
    ):
        raise ConfigError(f"space: {name}: {kind} needs [low, high], got {values!r}")
    low, high = values
    if not low < high or (kind == "log_uniform" and low <= 0) or not math.isfinite(high - low):
        raise ConfigError(f"space: {name}: {kind} needs low < high (and low > 0 for log_uniform)")
    if kind == "int" and not all(isinstance(v, int) for v in values):
        raise ConfigError(f"space: {name}: int needs integer bounds, got {values!r}")


def load_spec(path: str | Path) -> SweepSpec:
    """Read and check a sweep file; every problem is a one-line ``ConfigError``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"sweep file {path} does not exist")
    data = _parse(path)
    if not isinstance(data, dict):
        raise ConfigError(f"sweep file {path} must be a mapping of keys (task, space, ...)")
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise ConfigError(f"sweep file {path}: unknown key {unknown[0]!r}; keys: {', '.join(KEYS)}")
    for key in ("task", "space"):
        if key not in data:
            raise ConfigError(f"sweep file {path} needs a {key!r}")
    data.setdefault("name", path.stem)
    spec = SweepSpec(**data)
    known = known_settings(spec.task)
    if not isinstance(spec.space, dict) or not spec.space:
        raise ConfigError(f"sweep file {path}: space must map settings to distributions")
    for name in [*spec.fixed, *spec.space]:
        key = name.replace("-", "_")
        if not key.startswith(CELL_OPTION) and key not in known:
            raise ConfigError(
                f"sweep file {path}: {name!r} is not a setting of task {spec.task!r} "
                "(use rnnlab train's flag names, or cell_option.NAME)"
            )
    for name, distribution in spec.space.items():
        _check_distribution(name, distribution)
    if spec.sampler not in SAMPLERS:
        raise ConfigError(f"sampler {spec.sampler!r} unknown; choose {' or '.join(SAMPLERS)}")
    if spec.pruner not in PRUNERS:
        raise ConfigError(f"pruner {spec.pruner!r} unknown; choose one of {', '.join(PRUNERS)}")
    if (spec.minutes_per_trial is None) == (spec.steps_per_trial is None):
        raise ConfigError(f"sweep file {path}: give minutes_per_trial or steps_per_trial")
    for key in ("trials", "minutes_per_trial", "steps_per_trial", "total_minutes"):
        value = getattr(spec, key)
        if value is not None and (not isinstance(value, (int, float)) or value <= 0):
            raise ConfigError(f"sweep file {path}: {key} must be a positive number, got {value!r}")
    return spec
