"""A run killed with SIGKILL (no clean-up at all) and resumed ends with the weights of a run that
was never interrupted: at three random steps, and in the middle of writing a checkpoint."""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import random
import signal
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from rnnlab import tasks
from rnnlab.training import Trainer, checkpoint, make_config

MAX_STEPS = 24
SETTINGS = dict(hidden=24, embed=8, seq_len=16, batch_size=4, eval_every=5, sample_every=1000)
KILL_STEPS = sorted(random.Random(10).sample(range(2, MAX_STEPS), 3))


@pytest.fixture(scope="module")
def text_file(tmp_path_factory) -> Path:
    rng = random.Random(0)
    words = "to be or not that is the question whether tis nobler in mind".split()
    path = tmp_path_factory.mktemp("data") / "tiny.txt"
    path.write_text(" ".join(rng.choice(words) for _ in range(3000)))
    return path


def train(run: Path, data: Path | None, resume: bool = False) -> None:
    if resume:
        config = make_config("charlm", base=json.loads((run / "config.json").read_text()))
    else:
        config = make_config(
            "charlm", data=str(data), max_steps=MAX_STEPS, out=str(run), **SETTINGS
        )
    task = tasks.create("charlm", config, run if resume else None)
    Trainer(task, config, run, resume=resume, out=io.StringIO(), progress=False).fit()


def _train_and_die(run: Path, data: Path, kill_step: int | None, in_checkpoint: bool) -> None:
    """Child process: train and SIGKILL itself at ``kill_step`` (after that many forward
    passes) or half-way through writing the first checkpoint after step 5."""
    kill = lambda: os.kill(os.getpid(), signal.SIGKILL)  # noqa: E731
    if in_checkpoint:
        save = torch.save

        def save_then_die(obj, path, *args, **kwargs):
            save(obj, path, *args, **kwargs)
            if isinstance(obj, dict) and obj.get("position", {}).get("step", 0) > 5:
                kill()  # model.safetensors and state.pt written, not yet renamed into place

        torch.save = save_then_die
    else:
        from rnnlab.tasks.charlm import CharLM

        loss, calls = CharLM.loss, [0]

        def loss_then_die(self, model, batch, state):
            calls[0] += 1
            if calls[0] == kill_step:
                kill()
            return loss(self, model, batch, state)

        CharLM.loss = loss_then_die
    train(run, data)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, text_file) -> dict[str, torch.Tensor]:
    run = tmp_path_factory.mktemp("whole") / "run"
    train(run, text_file)
    return load_file(str(run / "checkpoints" / "last" / "model.safetensors"))


@pytest.mark.parametrize(
    "kill_step, in_checkpoint",
    [(step, False) for step in KILL_STEPS] + [(None, True)],
    ids=[f"step{step}" for step in KILL_STEPS] + ["in-checkpoint"],
)
def test_sigkill_then_resume_gives_the_uninterrupted_weights(
    tmp_path, text_file, uninterrupted, kill_step, in_checkpoint
):
    run = tmp_path / "run"
    child = multiprocessing.get_context("fork").Process(
        target=_train_and_die, args=(run, text_file, kill_step, in_checkpoint)
    )
    child.start()
    child.join(120)
    assert child.exitcode == -signal.SIGKILL
    killed_at = json.loads((run / "checkpoints" / "last" / "meta.json").read_text())["step"]
    assert killed_at < MAX_STEPS
    train(run, None, resume=True)
    resumed = load_file(str(checkpoint.checkpoint_dir(run) / "model.safetensors"))
    assert resumed.keys() == uninterrupted.keys()
    for key, value in uninterrupted.items():
        assert torch.equal(resumed[key], value), key
    assert not list((run / "checkpoints").glob(".tmp-*"))  # half-written checkpoints removed
