"""``metrics.jsonl``: one JSON object per line, the train logs and validations of a run.

Every line is strict JSON: a non-finite number (a diverged loss, an infinite spectral radius)
is written as ``null``, never as ``NaN`` or ``Infinity``. :func:`read_records` gives ``null``
back as ``nan``. On resume the log is cut back to the checkpoint's step with :func:`truncate`,
so a run killed after logging steps it had not yet saved holds each step once.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any


def append(path: Path, record: dict[str, Any]) -> None:
    """Append ``record`` to the log at ``path`` as one line of strict JSON."""
    line = json.dumps(_strict(record), allow_nan=False)
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records of the log at ``path`` (``null`` numbers as ``nan``); lines that are not a
    JSON object with a numeric ``step`` (one cut short by a kill) are left out."""
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        record = _record(line)
        if record is not None:
            records.append({k: math.nan if v is None else v for k, v in record.items()})
    return records


def truncate(path: Path, step: int) -> None:
    """Keep only the records of the log at ``path`` up to ``step`` (the checkpoint resumed
    from), rewriting the file atomically; a missing log stays missing."""
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    kept = [line for line in lines if (r := _record(line)) is not None and r["step"] <= step]
    if len(kept) == len(lines):
        return
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in kept))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _strict(value: Any) -> Any:
    """``value`` with every non-finite float in it replaced by ``None``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    return value


def _record(line: str) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(record, dict):
        return None
    step = record.get("step")
    if isinstance(step, bool) or not isinstance(step, (int, float)) or not math.isfinite(step):
        return None
    return record
