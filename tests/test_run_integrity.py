"""Runs that survive the real world: one writer per run, SIGTERM/SIGHUP saving like Ctrl-C,
checksummed checkpoints with fallback, non-finite settings and failed starts."""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rnnlab import tasks
from rnnlab.cli.main import main
from rnnlab.training.progress import is_bar_line
from rnnlab.training.run_lock import RunLock

ROOT = Path(__file__).resolve().parents[1]
TEXT = "It is a truth universally acknowledged, that a single man in possession.\n" * 20
TINY = ["--hidden", "10", "--embed", "4", "--seq-len", "8", "--batch-size", "4"]
SHORT = ["--eval-every", "3", "--sample-every", "3", "--splits", "80/20/0"]


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    path = tmp_path / "text.txt"
    path.write_text(TEXT)
    return path


@pytest.fixture
def run(tmp_path: Path, text_file: Path, capsys) -> Path:
    out = tmp_path / "run"
    assert main(["train", "--data", str(text_file), *TINY, *SHORT, "--max-steps", "6",
                 "--out", str(out)]) == 0  # fmt: skip
    capsys.readouterr()
    return out


def one_error_line(capsys) -> str:
    lines = capsys.readouterr().err.replace("\r", "\n").splitlines()
    err = [line for line in lines if line.strip() and not is_bar_line(line)]  # not the progress bar
    assert len(err) == 1 and err[0].startswith("rnnlab: error:"), err
    return err[0]


def test_a_second_writer_is_refused_naming_the_holder(run, capsys):
    lock = RunLock(run)  # as a training process holds it
    try:
        assert main(["train", "--resume", str(run), "--max-steps", "9"]) == 2
        line = one_error_line(capsys)
        assert f"is being written by process {os.getpid()}" in line
        assert main(["eval", "--run", str(run)]) == 0  # readers are not locked out
    finally:
        lock.release()
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--max-steps", "9"]) == 0


def test_a_new_run_into_a_locked_folder_is_refused(tmp_path, text_file, capsys):
    out = tmp_path / "racing"
    lock = RunLock(out)
    try:
        code = main(["train", "--data", str(text_file), *TINY, "--max-steps", "2",
                     "--out", str(out)])  # fmt: skip
        assert code == 2 and "is being written by process" in one_error_line(capsys)
        assert [p.name for p in out.iterdir()] == [".lock"]  # nothing of the other run touched
    finally:
        lock.release()


def test_sigterm_saves_and_exits_143_and_a_racing_process_is_refused(tmp_path, text_file):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "rnnlab", "train", "--data", str(text_file), *TINY]
    first = subprocess.Popen(
        [*command, "--max-steps", "100000", "--eval-every", "1000000", "--out", str(out)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (out / "checkpoints" / "last").exists():  # the first checkpoint is at step 0
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.2)
        second = subprocess.run(
            [*command, "--resume", str(out)], env=env, capture_output=True, text=True
        )
        assert second.returncode == 2
        assert second.stderr.strip().splitlines() == [
            f"rnnlab: error: {out} is being written by process {first.pid}; wait for it to "
            "finish, stop it, or use another --out"
        ]
        time.sleep(1.0)  # a few steps
        first.send_signal(signal.SIGTERM)
        stdout, _ = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 128 + signal.SIGTERM
    assert "stopped by SIGTERM" in stdout and f"rnnlab train --resume {out}" in stdout
    meta = json.loads((out / "checkpoints" / "last" / "meta.json").read_text())
    assert meta["step"] > 0  # the work since the step-0 checkpoint was saved
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert all(r["step"] <= meta["step"] for r in records)


def flip_bytes(path: Path, at: int = 200, count: int = 16) -> None:
    data = bytearray(path.read_bytes())
    at = min(at, len(data) - count)
    data[at : at + count] = bytes(255 - b for b in data[at : at + count])
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", ["model.safetensors", "state.pt"])
def test_a_damaged_checkpoint_file_is_one_line_naming_it(run, capsys, name):
    last = (run / "checkpoints" / "last").resolve()
    flip_bytes(last / name)
    assert main(["train", "--resume", str(run), "--max-steps", "9"]) == 2
    line = one_error_line(capsys)
    assert f"{last.name}/{name} does not match its SHA-256" in line
    if name == "model.safetensors":
        assert main(["eval", "--run", str(run)]) == 2
        assert "does not match its SHA-256" in one_error_line(capsys)
        assert main(["sample", "--run", str(run), "--length", "5"]) == 2
        assert "does not match its SHA-256" in one_error_line(capsys)


def test_a_dangling_last_falls_back_to_the_newest_finite_one_with_a_warning(run, capsys):
    root = run / "checkpoints"
    (root / "last").unlink()
    (root / "last").symlink_to("step-9999999")
    assert main(["eval", "--run", str(run), "--checkpoint", "last"]) == 0
    err = capsys.readouterr().err
    assert "warning: checkpoint 'last'" in err and "a dangling link" in err
    assert "using 'finite'" in err  # the newest checkpoint saved outside a non-finite stretch


def test_checkpoint_files_are_world_readable_like_the_rest(run):
    last = run / "checkpoints" / "last"
    for name in ("model.safetensors", "state.pt", "meta.json"):
        assert (last / name).stat().st_mode & 0o777 == 0o644, name


@pytest.mark.parametrize("flag", [["--lr", "nan"], ["--lr", "inf"], ["--dropout", "nan"]])
def test_non_finite_settings_are_refused_before_any_run_exists(tmp_path, text_file, capsys, flag):
    out = tmp_path / "never"
    assert main(["train", "--data", str(text_file), *TINY, *flag, "--out", str(out)]) == 2
    assert "must be a finite number" in one_error_line(capsys)
    assert not out.exists()


def test_a_non_finite_value_in_a_config_file_is_refused(tmp_path, text_file, capsys):
    config = tmp_path / "run.json"
    config.write_text('{"lr": NaN}')  # Python's json reads NaN
    out = tmp_path / "never"
    code = main(["train", "--config", str(config), "--data", str(text_file), "--out", str(out)])
    assert code == 2 and "--lr must be a finite number, got nan" in one_error_line(capsys)
    assert not out.exists()


def test_resume_refuses_another_out(run, tmp_path, capsys):
    assert main(["train", "--resume", str(run), "--out", str(tmp_path / "other")]) == 2
    assert "--resume continues" in one_error_line(capsys)


def strict_json(line: str) -> dict:
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(line, parse_constant=refuse)


def records_of(run: Path) -> list[dict]:
    return [strict_json(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_sigkill_then_resume_logs_every_step_once(tmp_path, text_file):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(
        [sys.executable, "-m", "rnnlab", "train", "--data", str(text_file), *TINY,
         "--max-steps", "100000", "--eval-every", "20", "--log-every", "1", "--out", str(out)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:  # a checkpoint after step 0, then steps logged beyond it
            assert first.poll() is None and time.monotonic() < deadline
            last = out / "checkpoints" / "last" / "meta.json"
            saved = json.loads(last.read_text())["step"] if last.exists() else 0
            logged = (out / "metrics.jsonl").read_text().count('"train"') if saved else 0
            if saved and logged > saved + 3:
                break
            time.sleep(0.1)
        first.kill()
        first.wait()
    finally:
        if first.poll() is None:
            first.kill()
    saved = json.loads((out / "checkpoints" / "last" / "meta.json").read_text())["step"]
    assert max(r["step"] for r in records_of(out)) > saved  # steps the checkpoint lacks
    assert main(["train", "--resume", str(out), "--max-steps", str(saved + 25)]) == 0
    for split in ("train", "valid"):
        steps = [r["step"] for r in records_of(out) if r["split"] == split]
        assert steps == sorted(set(steps)), split  # strictly increasing: no step twice
    assert [r["step"] for r in records_of(out) if r["split"] == "train"][-1] == saved + 25


def evaluate_as(monkeypatch, values):
    """Make charlm's validation loss follow ``values`` (the last one repeats)."""
    charlm = tasks.get("charlm")
    original = charlm.evaluate
    calls = []

    def evaluate(self, model, split):
        metrics = original(self, model, split)
        calls.append(split)
        value = values[min(len(calls), len(values)) - 1]
        return {**metrics, "loss": value, "bpc": value / math.log(2)}

    monkeypatch.setattr(charlm, "evaluate", evaluate)


def test_a_non_finite_validation_is_never_best_nor_written_as_infinity(
    tmp_path, text_file, capsys, monkeypatch
):
    evaluate_as(monkeypatch, [3.0, math.inf, math.nan, 4.0])
    out = tmp_path / "run"
    assert main(["train", "--data", str(text_file), *TINY, *SHORT, "--max-steps", "12",
                 "--out", str(out)]) == 0  # fmt: skip
    shown = capsys.readouterr().out
    assert "step 3 | valid" in shown and "step 6 | valid loss inf" in shown
    validations = [
        line for line in shown.splitlines() if line.startswith("step ") and "valid" in line
    ]
    assert [line.endswith("| best") for line in validations] == [
        True, False, False, False
    ]  # fmt: skip
    best = json.loads((out / "checkpoints" / "best" / "meta.json").read_text())
    assert best["step"] == 3 and best["loss"] == 3.0 and best["finite"] is True
    valid = [r for r in records_of(out) if r["split"] == "valid"]  # strict JSON throughout
    assert [r["loss"] for r in valid] == [3.0, None, None, 4.0]
    assert main(["plot", "--run", str(out)]) == 0  # the reader takes null as a gap


def test_a_run_whose_validation_is_never_finite_ends_with_one_line(
    tmp_path, text_file, capsys, monkeypatch
):
    evaluate_as(monkeypatch, [math.nan])
    out = tmp_path / "run"
    assert main(["train", "--data", str(text_file), *TINY, *SHORT, "--max-steps", "6",
                 "--out", str(out)]) == 2  # fmt: skip
    line = one_error_line(capsys)
    assert "every validation of" in line and "was non-finite (valid loss nan)" in line
    assert not (out / "checkpoints" / "best").exists()
    assert json.loads((out / "checkpoints" / "last" / "meta.json").read_text())["finite"] is False


def test_plot_reads_an_older_log_with_infinity(run, capsys):
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 7, "split": "valid", "loss": Infinity, "bpc": NaN}\n')
    assert main(["plot", "--run", str(run)]) == 0
    assert "valid bpc" in capsys.readouterr().out


def rewrite(checkpoint: Path, name: str, write) -> None:
    """Replace ``checkpoint/name`` through ``write(path)`` and record its new SHA-256, as if
    rnnlab had written it."""
    from rnnlab.training.checkpoint import file_sha256

    checkpoint = checkpoint.resolve()
    write(checkpoint / name)
    meta = json.loads((checkpoint / "meta.json").read_text())
    meta["sha256"][name] = file_sha256(checkpoint / name)
    (checkpoint / "meta.json").write_text(json.dumps(meta))


def test_sampling_from_non_finite_weights_is_one_line(run, capsys):
    import torch
    from safetensors.torch import load_file, save_file

    def poison(path):
        weights = load_file(str(path))
        first = sorted(weights)[0]
        weights[first] = torch.full_like(weights[first], math.nan)
        save_file(weights, str(path))

    for tag in ("best", "last"):
        rewrite(run / "checkpoints" / tag, "model.safetensors", poison)
    assert main(["sample", "--run", str(run), "--length", "5"]) == 2
    line = one_error_line(capsys)
    assert "hold nan or inf" in line and "the run diverged" in line


@pytest.mark.parametrize(
    "content, reason",
    [
        ("pickle", "holds Python objects beyond tensors and plain values"),
        ("empty", "it is empty"),
        ("torn", "not a training state rnnlab wrote"),
        ("list", "not a dictionary"),
        ("foreign", "does not fit this run (KeyError"),
    ],
)
def test_a_state_pt_rnnlab_did_not_write_is_one_line(run, capsys, content, reason):
    import torch

    def write(path):
        whole = path.read_bytes()
        if content == "pickle":
            torch.save({"optimizer": argparse.Namespace(lr=1)}, path)  # needs code to unpickle
        elif content == "empty":
            path.write_bytes(b"")
        elif content == "torn":
            path.write_bytes(whole[: len(whole) // 2])
        else:
            torch.save([1, 2] if content == "list" else {"optimizer": {}}, path)

    rewrite(run / "checkpoints" / "last", "state.pt", write)
    assert main(["train", "--resume", str(run), "--max-steps", "9"]) == 2
    line = one_error_line(capsys)
    assert reason in line and "weights_only" not in line and "\x1b" not in line
    assert main(["train", "--resume", str(run), "--max-steps", "9"]) == 2  # the lock was freed
    assert "being written" not in one_error_line(capsys)


def test_a_roll_back_skips_the_checkpoints_saved_inside_the_bad_stretch(tmp_path, text_file):
    import io

    from rnnlab.training import Trainer, make_config

    class FailingCharLM(tasks.get("charlm")):
        calls = 0

        def loss(self, model, batch, state):
            loss, new_state, metrics = super().loss(model, batch, state)
            FailingCharLM.calls += 1
            return (
                loss * (math.nan if FailingCharLM.calls in (6, 7, 8) else 1.0),
                new_state,
                metrics,
            )

    config = make_config("charlm", data=str(text_file), hidden=10, embed=4, seq_len=8,
                         batch_size=4, eval_every=1, sample_every=1000, max_steps=12,
                         recovery_patience=3)  # fmt: skip
    out = io.StringIO()
    trainer = Trainer(FailingCharLM(config), config, tmp_path / "r", out=out, progress=False)
    trainer.fit()
    # steps 6 and 7 were checkpointed (as `last`) while their losses were nan: not returned to
    assert "rolled back to step 5 " in out.getvalue()
    assert trainer.step == 12 and trainer.guard.rollbacks == 1


@pytest.fixture
def tmpfs(tmp_path):
    """A 256 KiB tmpfs at ``tmp_path/mnt`` (root can write anywhere else, whatever the mode);
    skipped where mounting is not permitted."""
    mount = tmp_path / "mnt"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs (chmod does not stop root, so root is tested)")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "--lazy", str(mount)], check=True)


def remount_read_only(mount: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)


def snapshot(run: Path) -> dict[str, bytes]:
    root = run / "checkpoints"
    last = (root / "last").resolve()
    files = {name: (last / name).read_bytes() for name in ("model.safetensors", "state.pt")}
    return {"link": os.readlink(root / "last").encode(), **files}


def test_a_new_run_into_a_read_only_folder_is_one_line(tmpfs, text_file, capsys):
    remount_read_only(tmpfs)
    for out in (tmpfs, tmpfs / "run"):  # the folder itself (empty) and one to be made in it
        assert main(["train", "--data", str(text_file), *TINY, "--out", str(out)]) == 2
        assert "Read-only file system; free space or fix permissions" in one_error_line(capsys)


def test_resuming_in_a_read_only_folder_is_one_line(run, tmpfs, capsys):
    shutil.copytree(run, tmpfs / "run", symlinks=True)
    before = snapshot(tmpfs / "run")
    remount_read_only(tmpfs)
    assert main(["train", "--resume", str(tmpfs / "run"), "--max-steps", "9"]) == 2
    assert "Read-only file system" in one_error_line(capsys)
    assert snapshot(tmpfs / "run") == before
    assert main(["eval", "--run", str(tmpfs / "run")]) == 0  # reading needs no write


def test_a_full_disk_during_a_checkpoint_write_is_one_line(run, tmpfs, capsys):
    shutil.copytree(run, tmpfs / "run", symlinks=True)
    before = snapshot(tmpfs / "run")
    filler = os.open(tmpfs / "filler", os.O_WRONLY | os.O_CREAT)
    try:  # fill the disk, then leave 8 KiB: less than a checkpoint
        while os.write(filler, b"\0" * 4096):
            pass
    except OSError:
        os.ftruncate(filler, os.fstat(filler).st_size - 8192)
    finally:
        os.close(filler)
    assert main(["train", "--resume", str(tmpfs / "run"), "--max-steps", "9"]) == 2
    line = one_error_line(capsys)
    assert "No space left on device; free space or fix permissions" in line
    assert "checkpoints" in line  # the checkpoint's write failed, not an earlier one
    assert snapshot(tmpfs / "run") == before  # the good checkpoint untouched
    leftovers = [p.name for p in (tmpfs / "run" / "checkpoints").iterdir() if p.name[0] == "."]
    assert leftovers == []
    (tmpfs / "filler").unlink()
    assert main(["train", "--resume", str(tmpfs / "run"), "--max-steps", "9"]) == 0
