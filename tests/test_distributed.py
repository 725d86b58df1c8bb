"""Data-parallel training: 2 gloo processes on CPU (on one "node" or two) follow the 1-process
loss curve."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import SRC, torchrun_two
from rnnlab import tasks
from rnnlab.training import Trainer, distributed, make_config

SETTINGS = dict(hidden=32, embed=16, seq_len=20, batch_size=8, log_every=1, eval_every=3)


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    rng = random.Random(0)
    words = "the quick brown fox jumps over a lazy dog and then some more words".split()
    path = tmp_path / "tiny.txt"
    path.write_text(" ".join(rng.choice(words) for _ in range(6000)))
    return path


def train_losses(run: Path) -> list[float]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in records if r["split"] == "train"]


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "checkpoints" / "last" / "model.safetensors"))


def train_in_process(run: Path, data: Path, max_steps: int, resume: bool = False) -> None:
    if resume:
        saved = json.loads((run / "config.json").read_text())
        config = make_config("charlm", base=saved, max_steps=max_steps)
    else:
        config = make_config(
            "charlm", data=str(data), max_steps=max_steps, out=str(run), **SETTINGS
        )
    task = tasks.create("charlm", config, run if resume else None)
    Trainer(task, config, run, resume=resume, out=io.StringIO(), progress=False).fit()


def test_two_gloo_processes_match_one_process_and_resume_with_one(tmp_path, text_file):
    two = tmp_path / "two"
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in SETTINGS.items()]
    command = ["train", "--data", str(text_file), "--max-steps", "6", *flags]
    tensorboard = importlib.util.find_spec("tensorboard") is not None
    if tensorboard:
        command.append("--tensorboard")
    done = torchrun_two(command, two)
    assert done.returncode == 0, done.stderr  # all of it: the cause is early
    assert done.stdout.count("run directory:") == 1  # only rank 0 prints
    assert done.stdout.count("----- sample at step 6") == 1
    steps = sorted(p.name for p in (two / "checkpoints").iterdir() if p.name.startswith("step-"))
    assert steps == ["step-0000006"]  # exactly one checkpoint, written once (by rank 0)
    assert len(train_losses(two)) == 6  # one metrics line per step, not one per rank
    if tensorboard:  # one event file, by rank 0
        assert len(list((two / "tensorboard").iterdir())) == 1

    one = tmp_path / "one"
    train_in_process(one, text_file, 10)
    assert train_losses(two) == pytest.approx(train_losses(one)[:6], abs=1e-5)
    logged = json.loads((one / "metrics.jsonl").read_text().splitlines()[0])
    assert {"grad_norm", "grad_norm/layers.0", "grad_norm/decoder", "clipped"} <= logged.keys()

    # the 2-process run resumed by ONE process continues like the uninterrupted run
    train_in_process(two, text_file, 10, resume=True)
    for key, value in weights(one).items():
        torch.testing.assert_close(weights(two)[key], value, atol=1e-5, rtol=0)


def test_shard_and_gather_are_inverse_and_split_streams_disjointly():
    x = torch.arange(24).view(3, 8)  # [T, B]
    parts = [distributed.shard((x, x), 1, distributed.DistInfo(r, 4)) for r in range(4)]
    assert [p[0][0].tolist() for p in parts] == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert torch.equal(torch.cat([p[0] for p in parts], 1), x)
    with pytest.raises(Exception, match="multiple of 3"):
        distributed.shard(x, 1, distributed.DistInfo(0, 3))


def test_the_program_collects_after_a_distributed_run_and_exits_normally(monkeypatch):
    """After tearing a process group down, ``rnnlab`` collects the references to it while the
    interpreter is whole and returns its code (no ``os._exit``: ``atexit`` handlers run)."""
    import rnnlab.cli.main as cli

    collected = []
    monkeypatch.setattr(cli.gc, "collect", lambda: collected.append(True))
    monkeypatch.setattr(cli.sys, "argv", ["rnnlab"])  # no command: prints the help, returns 2
    monkeypatch.setattr(distributed, "_torn_down", False)
    assert cli.main() == 2 and collected == []
    monkeypatch.setattr(distributed, "_torn_down", True)
    assert cli.main() == 2 and collected == [True]


def test_two_processes_stream_a_prepared_corpus_like_one(tmp_path, text_file):
    """With ``--data DIR`` each rank reads only its own streams; the curve is the same."""
    from rnnlab.data.prepared import prepare

    prepare([text_file], tmp_path / "prep")
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in SETTINGS.items()]
    done = torchrun_two(
        ["train", "--data", str(tmp_path / "prep"), "--max-steps", "4", *flags], tmp_path / "two"
    )
    assert done.returncode == 0, done.stderr
    one = tmp_path / "one"
    train_in_process(one, tmp_path / "prep", 4)
    assert train_losses(tmp_path / "two") == pytest.approx(train_losses(one), abs=1e-5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_nodes_on_localhost_train_like_one_process(tmp_path, text_file):
    """Two torchrun launchers (``--nnodes 2 --node-rank 0/1``, one process each, c10d
    rendezvous on 127.0.0.1) train one run: global rank 0 alone writes it, and its loss curve
    is the 1-process curve of the same global batch."""
    run, steps = tmp_path / "run", 4
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    endpoint = f"127.0.0.1:{_free_port()}"
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in SETTINGS.items()]
    nodes = []
    try:
        for node in range(2):
            command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2"]
            command += ["--node-rank", str(node), "--nproc-per-node", "1"]
            command += ["--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint]
            command += ["--rdzv-id", "two-nodes", "-m", "rnnlab", "train"]
            command += ["--data", str(text_file), "--out", str(run), *flags]
            command += ["--max-steps", str(steps), "--sample-every", "1000"]
            nodes.append(
                subprocess.Popen(
                    command,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    start_new_session=True,  # its own process group: killed as a whole
                )
            )
        deadline = time.monotonic() + 120
        outputs = [n.communicate(timeout=max(deadline - time.monotonic(), 1)) for n in nodes]
    finally:
        for n in nodes:
            if n.poll() is None:
                os.killpg(n.pid, signal.SIGKILL)
                n.wait()
    for n, (_, err) in zip(nodes, outputs):
        assert n.returncode == 0, err[-3000:]
    out = "".join(o for o, _ in outputs)
    assert out.count("run directory:") == 1 and out.count(f"done: {steps} steps") == 1
    assert "2 processes" in out
    assert [p.name for p in tmp_path.iterdir() if p.name != text_file.name] == ["run"]
    saved = sorted(p.name for p in (run / "checkpoints").iterdir() if p.name.startswith("step-"))
    assert saved == [f"step-{steps:07d}"]  # written once, by global rank 0
    assert len(train_losses(run)) == steps  # one metrics line per step, not one per node

    one = tmp_path / "one"
    train_in_process(one, text_file, steps)
    assert train_losses(run) == pytest.approx(train_losses(one), abs=1e-5)
    for key, value in weights(one).items():
        torch.testing.assert_close(weights(run)[key], value, atol=1e-5, rtol=0)


def _worker(agent: int, rank: int) -> int | None:
    """The pid of torchrun worker ``rank`` started by the agent process ``agent``, if any."""
    for proc in Path("/proc").iterdir():
        try:
            if not proc.name.isdigit() or int((proc / "stat").read_text().split()[3]) != agent:
                continue
            env = (proc / "environ").read_bytes().split(b"\0")
        except OSError:  # the process ended meanwhile
            continue
        if f"RANK={rank}".encode() in env:
            return int(proc.name)
    return None


def test_a_killed_worker_restarts_and_the_run_resumes(tmp_path, text_file):
    """``torchrun --max-restarts 1``: kill -9 rank 1 after a checkpoint; the restarted job
    resumes the same run directory from ``last`` and ends at ``--max-steps``."""
    run, steps = tmp_path / "run", 60
    # torch 2.13's agent keeps one TCP store for all restarts: a restarted worker can read the
    # dead one's gloo address from it and fail to connect; a store per round avoids that
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    env["TORCH_DISABLE_SHARE_RDZV_TCP_STORE"] = "1"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node", "2", "--max-restarts", "1", "--monitor-interval", "0.1"]
    command += ["-m", "rnnlab", "train", "--data", str(text_file), "--out", str(run)]
    command += [f"--{k.replace('_', '-')}={v}" for k, v in SETTINGS.items()]
    command += ["--max-steps", str(steps), "--eval-every", "5", "--sample-every", "1000"]
    agent = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: killed as a whole on a timeout
    )
    try:
        deadline = time.monotonic() + 90
        victim = None
        while victim is None and agent.poll() is None and time.monotonic() < deadline:
            if (run / "checkpoints" / "step-0000005").is_dir():
                victim = _worker(agent.pid, 1)
            time.sleep(0.02)
        assert victim is not None, "the run never reached its step-5 checkpoint"
        os.kill(victim, signal.SIGKILL)
        out, err = agent.communicate(timeout=max(deadline - time.monotonic(), 1) + 30)
    finally:
        if agent.poll() is None:
            os.killpg(agent.pid, signal.SIGKILL)
            agent.wait()
    assert agent.returncode == 0, err[-3000:]
    resumed = [int(n) for n in re.findall(r"resumed at step (\d+)", out)]
    assert len(resumed) == 1 and resumed[0] >= 5 and resumed[0] % 5 == 0, out
    assert f"done: {steps} steps" in out and f"run {run}" in out
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    by_step: dict[int, list[float]] = {}
    for record in records:
        if record["split"] == "train":
            by_step.setdefault(record["step"], []).append(record["loss"])
    assert sorted(by_step) == list(range(1, steps + 1))  # no step lost, none past the end
    for losses in by_step.values():  # a step redone after the restart repeats its loss
        assert losses == pytest.approx([losses[0]] * len(losses), abs=1e-5)


def test_an_elastic_restart_becomes_a_resume_of_the_named_run(tmp_path, text_file, monkeypatch):
    """The command line of a restarted torchrun job continues its ``--out`` run; without
    ``--out`` under ``--max-restarts`` it is refused (a new timestamped run would start over)."""
    from rnnlab.cli.main import main

    run = tmp_path / "run"
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in SETTINGS.items()]
    command = ["train", "--data", str(text_file), *flags, "--max-steps", "3", "--out", str(run)]
    monkeypatch.setenv("TORCHELASTIC_MAX_RESTARTS", "3")
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "0")
    assert main(command) == 0
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    assert main(command[:-4] + ["--max-steps", "6", "--out", str(run)]) == 0
    assert [
        r["step"]
        for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
        if r["split"] == "train"
    ] == [1, 2, 3, 4, 5, 6]
    assert main(command[:-2]) == 2  # no --out
