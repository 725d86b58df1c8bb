"""The run directory and its checkpoints, written atomically.

Layout::

    runs/20261122-031500/
      config.json              every resolved setting (read by --resume, sample, eval)
      metrics.jsonl            one JSON object per line: train logs and validations
      <task files>             what the task saved (charlm: vocab.json, data.json)
      checkpoints/
        step-000500/           one checkpoint
          model.safetensors    the weights (safetensors: no code runs when loading)
          state.pt             optimizer, schedule, RNG states, data position, carried hidden
                               state, counters; loaded with torch.load(weights_only=True)
          meta.json            step, validation metrics, whether they and the step's loss were
                               finite, and the SHA-256 of the two files above
        last -> step-000500    symbolic links, replaced atomically
        best -> step-000500    the best finite validation
        finite -> step-000500  the newest saved outside a non-finite stretch (roll-backs)

A checkpoint is written into a temporary directory and renamed into place, then the ``last`` /
``best`` link is replaced with ``os.replace`` (atomic on POSIX). A crash at any moment leaves the
previous checkpoint intact; directories no link points to are deleted afterwards (only by the
process that holds the run's lock, :mod:`rnnlab.training.run_lock`). Loading verifies each file
against its recorded SHA-256; a damaged ``last`` falls back to ``finite``, then ``best``, with a
warning.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes
from torch import nn

from rnnlab.errors import CheckpointError
from rnnlab.jsonfile import read_json

CONFIG = "config.json"
METRICS = "metrics.jsonl"
CHECKPOINTS = "checkpoints"
TAGS = ("last", "best", "finite")
FALLBACKS = {"last": ("finite", "best"), "finite": ("best", "last"), "best": ()}
"""The checkpoints that stand in, in order, for a damaged or missing one."""
FILES = ("model.safetensors", "state.pt")
"""The checkpoint files whose SHA-256 its ``meta.json`` records."""


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` through a temporary file and a rename."""
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:  # a full disk leaves no partial file behind
        if os.path.exists(tmp):
            os.unlink(tmp)


def is_run(run_dir: Path) -> bool:
    """A ``config.json`` and a ``last`` link (even a dangling one: ``best`` may stand in)."""
    last = run_dir / CHECKPOINTS / "last"
    return (run_dir / CONFIG).is_file() and (last.exists() or last.is_symlink())


def read_config(run_dir: str | Path) -> dict[str, Any]:
    """The ``config.json`` of a run, or a ``CheckpointError`` saying why it is not a run."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"run directory {run_dir} does not exist")
    if not is_run(run_dir):
        raise CheckpointError(
            f"{run_dir} is not an rnnlab run (no {CONFIG} and {CHECKPOINTS}/last); "
            "pass the directory `rnnlab train` created"
        )
    config = read_json(run_dir / CONFIG, kind=dict)
    if not isinstance(config.get("task"), str):
        raise CheckpointError(f"{run_dir / CONFIG} names no task; the run's files are damaged")
    return config


def save_checkpoint(
    run_dir: Path,
    step: int,
    model: nn.Module,
    state: dict[str, Any],
    meta: dict[str, Any],
    tags: tuple[str, ...] = ("last",),
) -> Path:
    """Write checkpoint ``step-NNNNNN`` atomically and point each of ``tags`` at it."""
    root = run_dir / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:07d}"
    final = root / name
    if not final.is_dir():
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".tmp-{name}-"))
        try:
            weights = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
            # serialized in memory, written by Python: a full disk is an OSError naming the file
            _write_bytes(tmp / "model.safetensors", safetensors_bytes(weights))
            buffer = io.BytesIO()
            torch.save(state, buffer)
            _write_bytes(tmp / "state.pt", buffer.getbuffer())
            sha256 = {file: file_sha256(tmp / file) for file in FILES}
            write_json_atomic(tmp / "meta.json", {"step": step, **meta, "sha256": sha256})
            for file in FILES:
                os.chmod(tmp / file, 0o644)
            os.chmod(tmp, 0o755)
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    for tag in tags:
        link_tmp = root / f".{tag}.{os.getpid()}"
        if link_tmp.is_symlink() or link_tmp.exists():
            link_tmp.unlink()
        try:
            link_tmp.symlink_to(name)
            os.replace(link_tmp, root / tag)
        finally:
            if link_tmp.is_symlink():
                link_tmp.unlink()
    _remove_unlinked(root)
    return final


def _write_bytes(path: Path, data: bytes | memoryview) -> None:
    """Write ``data`` to ``path``; an ``OSError`` (a full disk) names the file."""
    try:
        path.write_bytes(data)
    except OSError as error:
        if error.filename is not None:
            raise
        raise OSError(error.errno, error.strerror, str(path)) from None


def _remove_unlinked(root: Path) -> None:
    keep = {os.readlink(root / tag) for tag in TAGS if (root / tag).is_symlink()}
    for entry in root.iterdir():
        stale = entry.name.startswith(".tmp-")  # a checkpoint a killed process left half-written
        if stale or (entry.name.startswith("step-") and entry.name not in keep):
            shutil.rmtree(entry, ignore_errors=True)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def damage(path: Path) -> str | None:
    """Why the checkpoint directory ``path`` cannot be trusted, or ``None`` when it is intact."""
    if not path.is_dir():
        return "missing" + (" (a dangling link)" if path.is_symlink() else "")
    path = path.resolve()  # name the step directory, not the link
    try:
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
        recorded = meta.get("sha256", {}) if isinstance(meta, dict) else None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return f"{path / 'meta.json'} is missing or not JSON"
    if not isinstance(recorded, dict):
        return f"{path / 'meta.json'} is not a checkpoint's metadata"
    for name in FILES:
        file = path / name
        if not file.is_file():
            return f"{file} is missing"
        if name in recorded and file_sha256(file) != recorded[name]:  # older runs record none
            return f"{file} does not match its SHA-256 in meta.json (the file is damaged)"
    return None


def checkpoint_dir(run_dir: Path, tag: str = "last") -> Path:
    """The intact checkpoint ``tag`` of ``run_dir``; a damaged one falls back to its
    :data:`FALLBACKS` with a warning on stderr; no intact one is a ``CheckpointError`` naming the
    damage."""
    root = run_dir / CHECKPOINTS
    candidates = [tag, *FALLBACKS[tag]]
    reasons = []
    for candidate in candidates:
        path = root / candidate
        reason = damage(path)
        if reason is None:
            if reasons:
                print(
                    f"rnnlab: warning: checkpoint {tag!r} of {run_dir}: {reasons[0]}; "
                    f"using {candidate!r} ({path.resolve().name})",
                    file=sys.stderr,
                )
            return path
        reasons.append(reason)
    raise CheckpointError(f"{run_dir} has no intact {tag!r} checkpoint: {reasons[0]}")


def load_weights(model: nn.Module, path: Path) -> None:
    """Load ``path/model.safetensors`` into ``model``; a mismatch is a ``CheckpointError``."""
    try:
        weights = load_file(str(path / "model.safetensors"))
    except Exception as error:  # safetensors raises its own error types
        raise CheckpointError(f"cannot read {path / 'model.safetensors'}: {error}") from None
    own = model.state_dict()
    missing = sorted(set(own) - set(weights))
    unexpected = sorted(set(weights) - set(own))
    if missing or unexpected:
        raise CheckpointError(
            f"checkpoint {path} does not fit the model: missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}"
        )
    for key, value in weights.items():
        if value.shape != own[key].shape:
            raise CheckpointError(
                f"checkpoint {path} does not fit the model: {key} has shape "
                f"{list(value.shape)} in the checkpoint but {list(own[key].shape)} in the model"
            )
    model.load_state_dict(weights)


def load_state(path: Path) -> dict[str, Any]:
    """The training state of a checkpoint (``torch.load(weights_only=True)``)."""
    file = path / "state.pt"
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # torch's text suggests weights_only=False: never do that
        why = "it holds Python objects beyond tensors and plain values, which are never loaded"
        raise CheckpointError(f"{file} is not a training state rnnlab wrote: {why}") from None
    except Exception as error:  # a torn or foreign file fails in many types
        empty = file.is_file() and file.stat().st_size == 0
        why = "it is empty" if empty else first_sentence(error)
        raise CheckpointError(f"{file} is not a training state rnnlab wrote: {why}") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{file} is not a training state rnnlab wrote: not a dictionary")
    return state


def non_finite_weights(model: nn.Module) -> str | None:
    """The name of the first parameter or buffer of ``model`` holding a ``nan`` or ``inf``, or
    ``None`` when every value is finite."""
    for name, value in model.state_dict().items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            return name
    return None


def first_sentence(error: Exception) -> str:
    """The first sentence of ``error``'s message without terminal escapes (its type when
    empty)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip()
    return text.splitlines()[0].split(". ")[0] if text else type(error).__name__
