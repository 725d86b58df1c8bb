"""Dynamic evaluation lowers the loss on a test stream whose distribution differs from training."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from rnnlab.cli.main import main
from rnnlab.training.dynamic_eval import stream_loss
from rnnlab.training.load import load_run


@pytest.fixture
def shifted_run(tmp_path: Path, capsys) -> Path:
    """Trained on lower-case words; valid and test (the last 20%) are upper-case other words."""
    rng = random.Random(0)
    before = "the cat sat on the mat and the dog ran in the park".split()
    after = "QUANTUM FLUX 42 WARP DRIVE ENGAGED ZX".split()
    text = " ".join(rng.choice(before) for _ in range(3000))
    text += " " + " ".join(rng.choice(after) for _ in range(700))
    data = tmp_path / "shift.txt"
    data.write_text(text)
    run = tmp_path / "run"
    args = ["train", "--data", str(data), "--splits", "80/10/10", "--hidden", "32"]
    args += ["--embed", "8", "--seq-len", "32", "--batch-size", "8", "--max-steps", "40"]
    assert main([*args, "--eval-every", "40", "--out", str(run)]) == 0
    capsys.readouterr()
    return run


def test_dynamic_evaluation_adapts_to_the_shift(shifted_run, capsys):
    assert main(["eval", "--run", str(shifted_run), "--split", "test", "--dynamic"]) == 0
    out = capsys.readouterr().out
    static = float(out.split("static loss ")[1].split()[0])
    dynamic = float(out.split("dynamic (lr 0.1) loss ")[1].split()[0])
    assert dynamic < static - 0.5

    task, model, config = load_run(shifted_run)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ids = task.ids("test")
    assert stream_loss(model, ids, config.seq_len) == pytest.approx(static, abs=1e-4)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_dynamic_needs_a_positive_lr(shifted_run, capsys):
    args = ["eval", "--run", str(shifted_run), "--dynamic", "--dynamic-lr", "0"]
    assert main(args) == 2
    assert "--dynamic-lr must be positive" in capsys.readouterr().err
