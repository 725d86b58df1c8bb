"""The trainer: exact resume, carried state, non-finite steps, roll-back, atomic checkpoints."""

from __future__ import annotations

import io
import json
import math
import os
import signal

import pytest
import torch
from safetensors.torch import load_file

from rnnlab import tasks
from rnnlab.errors import ConfigError
from rnnlab.training import Trainer, checkpoint, make_config
from rnnlab.training.clipping import clip_gradients
from rnnlab.training.recovery import TrainingDiverged
from rnnlab.training.schedules import lr_factor


def tiny(text_file, **kw):
    settings = dict(
        data=str(text_file),
        hidden=12,
        embed=6,
        layers=2,
        dropout=0.2,
        seq_len=8,
        batch_size=4,
        eval_every=1000,
        sample_every=1000,
        log_every=5,
        max_steps=10,
    )
    settings.update(kw)
    return make_config("charlm", **settings)


def train(config, run_dir, resume=False, task=None):
    task = task or tasks.create("charlm", config, run_dir if resume else None)
    trainer = Trainer(task, config, run_dir, resume=resume, out=io.StringIO(), progress=False)
    return trainer, trainer.fit()


def weights(run_dir, tag="last"):
    return load_file(str(run_dir / "checkpoints" / tag / "model.safetensors"))


def test_resume_is_exact_across_an_epoch_boundary(text_file, tmp_path):
    # 486 training characters / 4 streams / 8 steps = 15 chunks per epoch: 40 steps cross two
    # epoch boundaries (state reset) and the resume point 20 lies inside epoch 1.
    straight, _ = train(tiny(text_file, max_steps=40), tmp_path / "a")
    assert straight.epoch == 2
    train(tiny(text_file, max_steps=20), tmp_path / "b")
    resumed, _ = train(tiny(text_file, max_steps=40), tmp_path / "b", resume=True)
    a, b = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.step == 40
    state = checkpoint.load_state(tmp_path / "b" / "checkpoints" / "last")
    assert state["position"] == {"step": 40, "epoch": 2, "batch": 10}


class RecordingCharLM(tasks.get("charlm")):
    """charlm that records the state it receives and can return a NaN loss on chosen calls."""

    def __init__(self, config, run_dir=None, nan_calls=()):
        super().__init__(config, run_dir)
        self.received, self.returned, self.calls, self.nan_calls = [], [], 0, set(nan_calls)

    def loss(self, model, batch, state):
        self.received.append(state)
        loss, new_state, metrics = super().loss(model, batch, state)
        self.returned.append(new_state)
        self.calls += 1
        if self.calls in self.nan_calls:
            loss = loss * math.nan
        return loss, new_state, metrics


def test_state_is_carried_detached_and_reset_each_epoch(text_file, tmp_path):
    config = tiny(text_file, max_steps=20)
    task = RecordingCharLM(config)
    train(config, tmp_path / "r", task=task)
    assert task.received[0] is None and task.received[15] is None  # epoch starts
    for i in range(1, 15):
        received, previous = task.received[i], task.returned[i - 1]
        assert received is not None
        for got, want in zip(received, previous):
            for g, w in zip(got, want):
                assert torch.equal(g, w) and not g.requires_grad


def test_non_finite_loss_is_skipped_and_counted(text_file, tmp_path):
    config = tiny(text_file, max_steps=6)
    task = RecordingCharLM(config, nan_calls={3})
    trainer, _ = train(config, tmp_path / "n", task=task)
    assert trainer.guard.skipped == 1 and trainer.guard.rollbacks == 0
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    records = [json.loads(line) for line in open(tmp_path / "n" / "metrics.jsonl")]
    assert records[0]["skipped"] == 1


def test_repeated_failures_roll_back_with_lower_lr(text_file, tmp_path):
    config = tiny(text_file, max_steps=12, eval_every=4, recovery_patience=3)
    task = RecordingCharLM(config, nan_calls={6, 7, 8})  # steps 6-8 fail: back to step 4
    trainer, _ = train(config, tmp_path / "rb", task=task)
    assert trainer.guard.rollbacks == 1 and trainer.lr_scale == 0.5
    assert trainer.step == 12 and task.calls == 12 + 4  # steps 5-8 were replayed
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(config.lr * 0.5)
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_training_that_never_recovers_stops_with_an_error(text_file, tmp_path):
    config = tiny(text_file, max_steps=50, recovery_patience=2)
    task = RecordingCharLM(config, nan_calls=set(range(1, 100)))
    with pytest.raises(TrainingDiverged, match="non-finite"):
        train(config, tmp_path / "d", task=task)


def test_failed_checkpoint_write_keeps_the_previous_one(text_file, tmp_path, monkeypatch):
    run_dir = tmp_path / "c"
    trainer, _ = train(tiny(text_file, max_steps=4), run_dir)
    before = weights(run_dir)

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    trainer.step += 1
    with torch.no_grad():
        for p in trainer.model.parameters():
            p.add_(1.0)
    with pytest.raises(OSError):
        trainer._save(("last", "best"))
    after = weights(run_dir)
    assert all(torch.equal(before[k], after[k]) for k in before)
    leftovers = [p.name for p in (run_dir / "checkpoints").iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_out_dir_of_an_existing_run_is_refused(text_file, tmp_path):
    train(tiny(text_file, max_steps=2), tmp_path / "x")
    before = weights(tmp_path / "x")
    with pytest.raises(ConfigError, match="--resume"):
        train(tiny(text_file, max_steps=2, lr=1.0), tmp_path / "x")
    assert all(torch.equal(before[k], weights(tmp_path / "x")[k]) for k in before)


def test_ctrl_c_saves_and_stops(text_file, tmp_path):
    class Interrupting(RecordingCharLM):
        def loss(self, model, batch, state):
            if self.calls == 4:
                os.kill(os.getpid(), signal.SIGINT)
            return super().loss(model, batch, state)

    config = tiny(text_file, max_steps=50)
    trainer, _ = train(config, tmp_path / "i", task=Interrupting(config))
    assert trainer.step == 5
    assert checkpoint.load_state(tmp_path / "i" / "checkpoints" / "last")["position"]["step"] == 5


def test_clipping_by_norm_and_by_value():
    p = torch.nn.Parameter(torch.zeros(4))
    p.grad = torch.tensor([3.0, 4.0, 0.0, 0.0])
    norm, clipped = clip_gradients([p], max_norm=1.0)
    assert norm == pytest.approx(5.0) and clipped
    assert float(p.grad.norm()) == pytest.approx(1.0, abs=1e-5)
    p.grad = torch.tensor([3.0, -0.5, 0.0, 0.0])
    norm, clipped = clip_gradients([p], max_value=1.0)
    assert clipped and torch.equal(p.grad, torch.tensor([1.0, -0.5, 0.0, 0.0]))
    p.grad = torch.tensor([math.inf, 0.0, 0.0, 0.0])
    assert not math.isfinite(clip_gradients([p], max_norm=1.0)[0])


def test_clipped_fraction_is_reported(text_file, tmp_path):
    trainer, _ = train(tiny(text_file, max_steps=5, clip_norm=1e-6), tmp_path / "cf")
    assert trainer._counters()["clipped_fraction"] == 1.0


def test_schedules():
    assert lr_factor("constant", 0.7, 100) == 1.0
    assert lr_factor("cosine", 0.0, 0) == pytest.approx(1.0)
    assert lr_factor("cosine", 1.0, 9) == pytest.approx(0.1)
    assert lr_factor("step", 0.6, 9) == 0.25
    assert lr_factor("constant", 0.0, 4, warmup=10) == pytest.approx(0.5)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd", "rmsprop", "adagrad"])
def test_every_optimizer_trains(text_file, tmp_path, optimizer):
    _, metrics = train(tiny(text_file, max_steps=3, optimizer=optimizer), tmp_path / optimizer)
    assert math.isfinite(metrics["loss"]) and metrics["bpc"] == metrics["loss"] / math.log(2)


def test_config_precedence():
    config = make_config("charlm", max_steps=7)
    assert config.max_steps == 7 and config.max_minutes is None  # budget given replaces default
    assert config.hidden == tasks.get("charlm").defaults["hidden"]
    assert make_config("charlm", clip_value=1.0).clip_norm is None


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_other_cells_train_and_resume(text_file, tmp_path, cell):
    train(tiny(text_file, cell=cell, max_steps=3), tmp_path / cell)
    trainer, metrics = train(tiny(text_file, cell=cell, max_steps=5), tmp_path / cell, resume=True)
    assert trainer.step == 5 and math.isfinite(metrics["loss"])


def test_epoch_budget_and_cosine_schedule(text_file, tmp_path):
    config = tiny(text_file, epochs=2, max_steps=None, schedule="cosine")
    assert config.max_steps is None and config.max_minutes is None
    trainer, _ = train(config, tmp_path / "e")
    assert trainer.epoch == 2 and trainer.step == 30  # 15 chunks per epoch
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(config.lr * 0.1, rel=0.05)


def test_spectral_radius_and_largest_singular_value_are_logged(text_file, tmp_path):
    from rnnlab.analysis.dynamics import spectral_stats

    config = tiny(text_file, max_steps=4, eval_every=2)
    trainer, _ = train(config, tmp_path / "s")
    records = [json.loads(line) for line in open(tmp_path / "s" / "metrics.jsonl")]
    spectra = [r for r in records if r.get("split") == "spectrum"]
    assert [r["step"] for r in spectra] == [2, 4]
    cells = [(n, m) for n, m in trainer.model.named_modules() if hasattr(m, "weight_hh")]
    name, cell = cells[0]
    stats = spectral_stats(cell)
    radius = max(v for k, v in stats.items() if k.endswith("spectral_radius"))
    assert spectra[-1][f"{name}/spectral_radius"] == pytest.approx(radius)
    assert spectra[-1][f"{name}/sigma_max"] >= spectra[-1][f"{name}/spectral_radius"] - 1e-6
