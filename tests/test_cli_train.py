"""``rnnlab train | sample | eval`` end to end, and every bad input: one line, exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rnnlab.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
TEXT = "It is a truth universally acknowledged, that a single man in possession.\n" * 20


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text(TEXT)
    return path


TINY = ["--hidden", "10", "--embed", "4", "--seq-len", "8", "--batch-size", "4"]


TRAIN_OUTPUT: dict[Path, str] = {}


@pytest.fixture
def run_dir(tmp_path, text_file, capsys):
    out = tmp_path / "run"
    args = ["--max-steps", "6", "--eval-every", "3", "--sample-every", "3", "--splits", "80/20/0"]
    assert main(["train", "--data", str(text_file), *TINY, *args, "--out", str(out)]) == 0
    TRAIN_OUTPUT[out] = capsys.readouterr().out
    return out


def test_train_writes_a_run(run_dir):
    assert {p.name for p in run_dir.iterdir()} >= {
        "config.json",
        "metrics.jsonl",
        "vocab.json",
        "data.json",
        "checkpoints",
    }
    out = TRAIN_OUTPUT[run_dir]
    assert "valid loss" in out and "bpc" in out and "sample at step 3" in out
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {r["split"] for r in records} == {"train", "valid", "spectrum"}
    config = json.loads((run_dir / "config.json").read_text())
    assert config["hidden"] == 10 and config["max_steps"] == 6 and config["task"] == "charlm"
    fingerprint = json.loads((run_dir / "data.json").read_text())
    assert fingerprint["characters"] == len(TEXT)


def test_sample_and_eval(run_dir, capsys):
    args = ["sample", "--run", str(run_dir), "--length", "40", "--prime", "It ", "--seed", "3"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert main(args) == 0
    assert capsys.readouterr().out == first  # same seed, same text
    assert first.startswith("It ") and len(first) == len("It ") + 40 + 1
    assert main(["sample", "--run", str(run_dir), "--length", "5", "--top-k", "1"]) == 0
    assert main(["eval", "--run", str(run_dir), "--split", "valid"]) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    assert line.startswith("valid") and "loss" in line and "bpc" in line
    assert main(["eval", "--run", str(run_dir), "--split", "test"]) == 2
    assert "test split is empty" in error_line(capsys)


def test_resume_continues_and_records_budget(run_dir, capsys):
    assert main(["train", "--resume", str(run_dir), "--max-steps", "8"]) == 0
    config = json.loads((run_dir / "config.json").read_text())
    assert config["max_steps"] == 8 and config["splits"] == "80/20/0"  # not reset to defaults
    meta = json.loads((run_dir / "checkpoints" / "last" / "meta.json").read_text())
    assert meta["step"] == 8


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("rnnlab: error:")
    return err[0]


def bad_file(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


@pytest.mark.parametrize(
    "make_args, message",
    [
        (lambda t, f: ["--data", str(t / "nope.txt")], "does not exist"),
        (lambda t, f: ["--data", bad_file(t, "e.txt", b"")], "is empty"),
        (lambda t, f: ["--data", bad_file(t, "b.bin", b"\x89PNG\x00\x00\x01")], "binary"),
        (lambda t, f: ["--data", bad_file(t, "l.txt", b"na\xefve " * 50)], "not UTF-8"),
        (lambda t, f: ["--data", bad_file(t, "s.txt", b"too short")], "fewer than one batch"),
        (lambda t, f: ["--data", f, "--cell", "transformer"], "unknown cell"),
        (lambda t, f: ["--data", f, "--optimizer", "lion"], "unknown optimizer"),
        (lambda t, f: ["--data", f, "--cell-option", "peepholes=1"], "has no option 'peepholes'"),
        (lambda t, f: ["--data", f, "--hidden", "0"], "--hidden must be positive"),
        (lambda t, f: ["--data", f, "--seq-len", "-3"], "--seq-len must be positive"),
        (lambda t, f: ["--data", f, "--batch-size", "0"], "--batch-size must be positive"),
        (lambda t, f: ["--data", f, "--lr", "0"], "--lr must be positive"),
        (lambda t, f: ["--data", f, "--splits", "90/10"], "--splits"),
        (
            lambda t, f: (
                ["--data", f, "--device", "cuda:7"]
                if not torch.cuda.is_available()
                else ["--data", f, "--device", "tpu"]
            ),
            "device",
        ),
        (lambda t, f: ["--resume", str(t)], "not an rnnlab run"),
        (lambda t, f: ["--resume", str(t / "missing")], "does not exist"),
    ],
)
def test_bad_train_input(tmp_path, text_file, capsys, make_args, message):
    args = [
        "train",
        *TINY,
        "--max-steps",
        "2",
        "--out",
        str(tmp_path / "out"),
        *make_args(tmp_path, str(text_file)),
    ]
    assert main(args) == 2
    assert message in error_line(capsys)
    assert not (tmp_path / "out" / "checkpoints").exists()


def test_bad_run_directories(tmp_path, run_dir, capsys):
    assert main(["sample", "--run", str(tmp_path)]) == 2
    assert "not an rnnlab run" in error_line(capsys)
    assert main(["eval", "--run", str(tmp_path / "nothing")]) == 2
    assert "does not exist" in error_line(capsys)
    assert main(["sample", "--run", str(run_dir), "--temperature", "0"]) == 2
    assert "temperature" in error_line(capsys)
    assert main(["sample", "--run", str(run_dir), "--prime", "§"]) == 2
    assert "vocabulary" in error_line(capsys)
    assert main(["train", "--resume", str(run_dir), "--hidden", "32"]) == 2
    assert "cannot change 'hidden'" in error_line(capsys)


def test_checkpoint_that_does_not_fit(run_dir, capsys):
    config = json.loads((run_dir / "config.json").read_text())
    config["hidden"] = 11
    (run_dir / "config.json").write_text(json.dumps(config))
    assert main(["eval", "--run", str(run_dir)]) == 2
    assert "does not fit the model" in error_line(capsys)
    assert main(["--debug", "eval", "--run", str(run_dir)]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_existing_run_is_not_overwritten(run_dir, text_file, capsys):
    before = (run_dir / "checkpoints" / "last" / "model.safetensors").read_bytes()
    assert main(["train", "--data", str(text_file), *TINY, "--out", str(run_dir)]) == 2
    assert "--resume" in error_line(capsys)
    assert (run_dir / "checkpoints" / "last" / "model.safetensors").read_bytes() == before


def test_python_m_rnnlab_subprocess(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    bad = subprocess.run(
        [sys.executable, "-m", "rnnlab", "train", "--data", str(tmp_path / "missing.txt")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        f"rnnlab: error: data file {tmp_path / 'missing.txt'} does not exist"
    ]
    assert "Traceback" not in bad.stderr


def test_resume_refuses_changed_data(run_dir, text_file, capsys):
    text_file.write_text(TEXT.upper())
    assert main(["train", "--resume", str(run_dir), "--max-steps", "8"]) == 2
    assert "training data changed" in error_line(capsys)


def test_tinyshakespeare_by_name(tmp_path, data_dir, capsys):
    out = tmp_path / "ts"
    args = ["--data", "tinyshakespeare", "--data-dir", str(data_dir), "--splits", "90/10/0"]
    assert (
        main(["train", *args, *TINY, "--max-steps", "2", "--eval-every", "100", "--out", str(out)])
        == 0
    )
    fingerprint = json.loads((out / "data.json").read_text())
    assert fingerprint["dataset"] == "tinyshakespeare" and fingerprint["characters"] == 1115394
    assert "65" in capsys.readouterr().out  # vocabulary size in the start line


def test_cell_options_reach_every_cell_and_the_run_config(tmp_path, text_file, capsys):
    out = tmp_path / "ln"
    args = ["--cell-option", "layer_norm=True", "--cell-option", "forget_bias=2.0"]
    assert (
        main(
            [
                "train",
                "--data",
                str(text_file),
                *TINY,
                "--layers",
                "2",
                *args,
                "--max-steps",
                "2",
                "--splits",
                "80/20/0",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    config = json.loads((out / "config.json").read_text())
    assert config["cell_options"] == {"layer_norm": True, "forget_bias": 2.0}
    from rnnlab.training import load_run

    _, model, _ = load_run(out)
    lstm_cells = [m for m in model.modules() if type(m).__name__ == "LSTMCell"]
    assert len(lstm_cells) == 2
    assert all(c.layer_norm and c.forget_bias == 2.0 for c in lstm_cells)
