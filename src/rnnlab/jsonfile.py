"""Reading the JSON files of a run directory (``vocab.json``, ``data.json``, ...).

A file that is missing, not UTF-8, not JSON or of the wrong shape is a ``CheckpointError``
naming it: one line on the command line, never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rnnlab.errors import CheckpointError


def read_json(path: Path, key: str | None = None, kind: type = object) -> Any:
    """The JSON value in ``path`` (``value[key]`` when ``key`` is given), checked to be a
    ``kind``."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
        if key is not None:
            value = value[key]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as error:
        why = f"no {key!r} entry" if isinstance(error, (KeyError, TypeError)) else error
        raise CheckpointError(f"cannot read {path}: {why}; the run's files are damaged") from None
    if not isinstance(value, kind):
        raise CheckpointError(
            f"cannot read {path}: expected a JSON {kind.__name__}; the run's files are damaged"
        )
    return value
