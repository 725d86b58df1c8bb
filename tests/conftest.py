"""Shared fixtures. Real datasets come from ``../shared/data`` beside the project (or
``RNNLAB_DATA_DIR``); tests that need one are skipped when it is not there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    env = os.environ.get("RNNLAB_DATA_DIR")
    candidate = Path(env) if env else ROOT.parent / "shared" / "data"
    return candidate if candidate.is_dir() else None


@pytest.fixture
def data_dir() -> Path:
    path = shared_data_dir()
    if path is None:
        pytest.skip("no shared data directory (set RNNLAB_DATA_DIR)")
    return path


# Tests use tiny tensors: one thread avoids oversubscription on a busy 2-core machine.
torch.set_num_threads(1)


TINY_TEXT = "the quick brown fox jumps over the lazy dog.\n" * 12  # 540 characters


@pytest.fixture
def text_file(tmp_path) -> Path:
    """A 540-character corpus for tiny language-model runs (a module may override it)."""
    path = tmp_path / "text.txt"
    path.write_text(TINY_TEXT)
    return path


@pytest.fixture
def tiny_ptb(data_dir, monkeypatch):
    """The real PTB files (their checksums are verified), of which the ``wordlm`` task sees a
    tiny slice: the first 3,000 training words as train, and parts of them as valid and test."""
    import rnnlab.tasks.wordlm as wordlm
    from rnnlab.data.ptb import load_ptb_words

    train = load_ptb_words("train", data_dir)[:3000]
    slices = {"train": train, "valid": train[:400], "test": train[400:800]}
    monkeypatch.setattr(wordlm, "load_ptb_words", lambda split, data_dir=None: slices[split])
    return data_dir


@pytest.fixture
def tiny_wordlm(tiny_ptb):
    """``make(**flags)``: the configuration of a 12-step ``wordlm`` run on ``tiny_ptb``."""
    from rnnlab.training import make_config

    def make(**flags):
        sizes = {"hidden": 16, "embed": 16, "seq_len": 10, "batch_size": 4}
        steps = {"max_steps": 12, "eval_every": 6, "sample_every": 1000}
        return make_config("wordlm", data_dir=str(tiny_ptb), **{**sizes, **steps, **flags})

    return make


@pytest.fixture(autouse=True)
def _one_thread():
    """Every test starts on one thread, also after a test (e.g. `--threads N`) changed it."""
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


SRC = Path(__file__).resolve().parents[1] / "src"


def torchrun_two(args: list[str], out: Path) -> subprocess.CompletedProcess:
    """``rnnlab ARGS --out OUT`` in two gloo processes under torchrun (one thread each)."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node", "2", "-m", "rnnlab", *args, "--out", str(out)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
