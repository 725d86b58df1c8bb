"""Every command that reads a run meets damaged files with exit 0 or 2 and one line, never a
traceback: random and mutated ``config.json``, ``vocab.json``, ``data.json``, ``meta.json``,
checkpoint files, ``metrics.jsonl`` and data files in a copy of one real small run."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnlab.cli.main import main
from rnnlab.training.checkpoint import file_sha256
from rnnlab.training.progress import is_bar_line

ROOT = Path(__file__).resolve().parents[1]
TEXT = "It is a truth universally acknowledged, that a single man in possession.\n" * 20
FILES = [
    "config.json",
    "vocab.json",
    "data.json",
    "metrics.jsonl",
    "text.txt",
    "checkpoints/last/meta.json",
    "checkpoints/last/model.safetensors",
    "checkpoints/last/state.pt",
    "checkpoints/best/meta.json",
    "checkpoints/best/model.safetensors",
]


def commands(run: Path) -> list[list[str]]:
    """Every entry point that reads a run (``train --resume`` also writes it); ``export``, which
    loads through the same ``load_run`` as ``eval``, is left out: tracing costs seconds."""
    return [
        ["eval", "--run", str(run)],
        ["sample", "--run", str(run), "--length", "5", "--seed", "0"],
        ["plot", "--run", str(run), "--out", str(run / "plot.png")],
        ["train", "--resume", str(run), "--max-steps", "8"],
    ]


@pytest.fixture(scope="module")
def made_run(tmp_path_factory) -> Path:
    """One real run (6 steps, validated at 3 and 6), its data file inside it as ``text.txt``."""
    root = tmp_path_factory.mktemp("fuzz")
    (root / "text.txt").write_text(TEXT)
    run = root / "run"
    argv = ["train", "--data", str(root / "text.txt"), "--hidden", "8", "--embed", "4",
            "--seq-len", "8", "--batch-size", "4", "--eval-every", "3", "--sample-every", "100",
            "--splits", "80/20/0", "--max-steps", "6", "--out", str(run)]  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(argv) == 0
    shutil.move(root / "text.txt", run / "text.txt")
    config = json.loads((run / "config.json").read_text())
    config["data"] = "RUN/text.txt"  # each copy points at its own data file
    (run / "config.json").write_text(json.dumps(config))
    return run


def copy_run(made_run: Path, into: Path) -> Path:
    run = into / "run"
    shutil.copytree(made_run, run, symlinks=True)
    path = run / "config.json"
    path.write_text(path.read_text().replace("RUN/text.txt", str(run / "text.txt")))
    return run


def check(argv: list[str]) -> tuple[int, list[str]]:
    """Run ``rnnlab ARGV`` in this process: its exit code and stderr lines (without the
    progress bar); an exception escaping ``main`` fails the test with its traceback."""
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except BaseException:
            pytest.fail(f"rnnlab {' '.join(argv)} raised:\n{traceback.format_exc()}")
    lines = [line for line in err.getvalue().replace("\r", "\n").splitlines()]
    return code, [line for line in lines if line.strip() and not is_bar_line(line)]


def assert_clean(argv: list[str], code: int, lines: list[str]) -> None:
    shown = f"rnnlab {' '.join(argv)} -> {code}: {lines}"
    assert code in (0, 2), shown
    assert not any("Traceback" in line for line in lines), shown
    errors = [line for line in lines if line.startswith("rnnlab: error:")]
    others = [line for line in lines if line not in errors]
    assert len(errors) == (code == 2), shown  # one error line exactly when it failed
    assert all(line.startswith("rnnlab: warning:") for line in others), shown


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def mutations(draw):
    """``(file, how, argument)``: what to do to which file of the run."""
    file = draw(st.sampled_from(FILES))
    how = draw(
        st.sampled_from(["bytes", "flip", "truncate", "empty", "delete", "json-value", "json-key"])
    )
    if how == "bytes":
        return file, how, draw(st.binary(max_size=64))
    if how in ("flip", "truncate"):
        return file, how, draw(st.floats(0, 1))
    if how == "json-value":
        return file, how, (draw(st.integers(0, 50)), draw(json_values))
    if how == "json-key":
        return file, how, draw(st.integers(0, 50))
    return file, how, None


def mutate(run: Path, file: str, how: str, argument, re_sign: bool) -> None:
    """Apply one mutation; ``re_sign`` records the checkpoint files' new SHA-256, as if rnnlab
    had written them (so the damage reaches the readers behind the checksum)."""
    path = run / file
    data = path.read_bytes()
    if how == "delete":
        path.unlink()
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "bytes":
        path.write_bytes(argument)
    elif how == "flip":
        at = int(argument * max(len(data) - 1, 0))
        path.write_bytes(data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :] if data else b"")
    elif how == "truncate":
        path.write_bytes(data[: int(argument * len(data))])
    else:
        edit_json(path, data, how, argument)
    if re_sign and "checkpoints" in file and path.exists():
        step = path.resolve().parent
        try:
            meta = json.loads((step / "meta.json").read_text())
            meta["sha256"] = {
                name: file_sha256(step / name)
                for name in ("model.safetensors", "state.pt")
                if (step / name).exists()
            }
        except (ValueError, TypeError, KeyError, OSError):
            return  # the meta.json itself is what was damaged
        (step / "meta.json").write_text(json.dumps(meta))


def edit_json(path: Path, data: bytes, how: str, argument) -> None:
    """Replace the value of one key (``json-value``) or delete one key (``json-key``) of a JSON
    object file; other files get the value as their whole content."""
    try:
        value = json.loads(data)
    except ValueError:
        value = None
    if not isinstance(value, dict) or not value:
        path.write_text(json.dumps(argument[1] if how == "json-value" else []))
        return
    keys = sorted(value)
    if how == "json-value":
        index, new = argument
        value[keys[index % len(keys)]] = new
    else:
        del value[keys[argument % len(keys)]]
    path.write_text(json.dumps(value))


@settings(
    max_examples=10,
    deadline=None,
    derandomize=True,  # the same examples every run: a failure is reproducible
    suppress_health_check=[HealthCheck.too_slow],
)
@given(mutation=mutations(), re_sign=st.booleans())
def test_damaged_run_files_are_one_line_never_a_traceback(made_run, mutation, re_sign):
    with tempfile.TemporaryDirectory() as into:
        run = copy_run(made_run, Path(into))
        mutate(run, *mutation, re_sign=re_sign)
        for argv in commands(run):
            assert_clean(argv, *check(argv))


def test_a_real_process_meets_damaged_files_with_one_line(made_run, tmp_path):
    run = copy_run(made_run, tmp_path)
    (run / "checkpoints/last/state.pt").write_bytes(b"\x80\x02}q\x00.")  # a bare pickle
    (run / "vocab.json").write_bytes(b"\xff\xfe{")  # not UTF-8
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    for argv in (["train", "--resume", str(run), "--max-steps", "8"], ["eval", "--run", str(run)]):
        done = subprocess.run(
            [sys.executable, "-m", "rnnlab", *argv], env=env, capture_output=True, text=True
        )
        lines = [line for line in done.stderr.replace("\r", "\n").splitlines() if line.strip()]
        assert_clean(argv, done.returncode, [line for line in lines if not is_bar_line(line)])
