"""``rnnlab train --config FILE``: settings from a YAML, TOML or JSON file.

The file is a flat mapping of setting names (``seq_len`` or ``seq-len``) to values, any of the
flags of ``rnnlab train``::

    # run.yaml
    cell: gru
    hidden: 512
    seq-len: 200
    clip-norm: auto

Precedence: flags given on the command line > the file > the task's defaults > the trainer's.
Unknown names, names of another task's flags and values of the wrong type are one-line
``ConfigError`` s. A run's own
``config.json`` is such a file: ``rnnlab train --config RUN/config.json`` starts a new run with
the same settings (its ``out`` is ignored, so the new run gets its own directory).

YAML is read with PyYAML (``yaml.safe_load``), TOML with the standard library's ``tomllib``
(Python >= 3.11; ``tomli`` before), JSON with ``json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rnnlab.errors import ConfigError
from rnnlab.training import checkpoint
from rnnlab.training.config import not_an_option, owners

IGNORED_FROM_RUN = ("out", "resume")
"""Settings of a run's ``config.json`` that describe that run, not how to train."""


def _parse(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"--config {path} is not UTF-8 text: save it as UTF-8") from None
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ModuleNotFoundError:
            raise ConfigError(
                f"--config {path} needs PyYAML: pip install pyyaml (or use a .toml or .json file)"
            ) from None

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ConfigError(f"{path} is not valid YAML: {str(error).splitlines()[0]}") from None
    if suffix == ".toml":
        try:
            import tomllib
        except ModuleNotFoundError:  # Python < 3.11
            import tomli as tomllib
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path} is not valid TOML: {error}") from None
    if suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise ConfigError(f"{path} is not valid JSON: {error}") from None
    raise ConfigError(f"--config {path}: use a .yaml, .yml, .toml or .json file")


def _check_type(name: str, value: Any, action: argparse.Action | None, default: Any) -> Any:
    """``value`` when it fits the flag ``name`` (converted through the flag's type), else a
    ``ConfigError``."""
    if value is None:
        return None
    if isinstance(default, dict):  # a mapping setting, e.g. cell_options: {layer_norm: true}
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise ConfigError(f"config setting {name!r} must be a mapping, got {value!r}")
        return dict(value)
    kind = action.type if action is not None else type(default) if default is not None else None
    if action is not None and action.nargs == 0:  # an on/off flag (store_true)
        kind = bool
    wrong = None
    if kind is int:
        wrong = isinstance(value, bool) or not isinstance(value, int)
        expected = "an integer"
    elif kind is float:
        wrong = isinstance(value, bool) or not isinstance(value, (int, float))
        expected = "a number"
        value = value if wrong else float(value)
    elif kind is bool:
        wrong, expected = not isinstance(value, bool), "true or false"
    elif callable(kind) and kind is not str:  # a custom flag type, e.g. --clip-norm auto
        try:
            return kind(str(value))
        except (argparse.ArgumentTypeError, ValueError, TypeError) as error:
            raise ConfigError(f"config setting {name!r}: {error}") from None
    else:
        wrong, expected = not isinstance(value, str), "a string"
    if wrong:
        raise ConfigError(
            f"config setting {name!r} must be {expected}, got {value!r} ({type(value).__name__})"
        )
    return value


def read_config_file(path: str | Path) -> dict[Any, Any]:
    """The mapping in ``path``, not yet checked against any flags."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--config {path}: no such file")
    data = _parse(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of setting names to values")
    return data


def load_config_file(
    path: str | Path, parser: argparse.ArgumentParser, defaults: dict[str, Any], task: str
) -> dict[str, Any]:
    """The settings in ``path``, checked against ``parser``'s flags and the names in
    ``defaults`` (settings without a flag, such as ``recovery_patience``): those of ``task``;
    another task's setting is an error naming ``task``."""
    path = Path(path)
    data = read_config_file(path)
    actions = {a.dest: a for a in parser._actions if a.dest not in ("help", "config")}
    flag_names = {  # a flag's own name as well as its destination: cell_option -> cell_options
        o.lstrip("-").replace("-", "_"): a.dest for a in actions.values() for o in a.option_strings
    }
    from_run = path.name == checkpoint.CONFIG and checkpoint.is_run(path.parent)
    values: dict[str, Any] = {}
    for raw_name, value in data.items():
        name = str(raw_name).replace("-", "_")
        name = flag_names.get(name, name)
        if from_run and name in IGNORED_FROM_RUN:
            continue
        if name not in actions and name not in defaults:
            if owners(name):
                raise ConfigError(f"{path}: {not_an_option(name, task)}")
            close = [k for k in actions if k.startswith(name[:3])][:3]
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(f"{path}: unknown setting {raw_name!r}{hint}")
        values[name] = _check_type(raw_name, value, actions.get(name), defaults.get(name))
    return values
