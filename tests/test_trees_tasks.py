"""The tasks sst-tree, pixelrnn and moving-digits train end to end with the Trainer (tiny models,
a few steps) and evaluate, restore and sample from their runs."""

from __future__ import annotations

import io

import pytest
import torch

from rnnlab import tasks
from rnnlab.errors import ConfigError
from rnnlab.models.pixel_rnn import PixelRNN
from rnnlab.training import Trainer, make_config
from rnnlab.training.load import load_run


def _train(task: str, run_dir, data_dir, **settings):
    config = make_config(
        task,
        data_dir=str(data_dir),
        out=str(run_dir),
        eval_every=1000,
        sample_every=1000,
        max_steps=2,
        **settings,
    )
    out = io.StringIO()
    metrics = Trainer(tasks.create(task, config), config, run_dir, out=out, progress=False).fit()
    return metrics, out.getvalue()


def test_sst_tree_trains_and_reports_root_accuracies(tmp_path, data_dir):
    metrics, printed = _train(
        "sst-tree", tmp_path / "run", data_dir, model="tree-lstm", hidden=6, embed=5
    )
    assert {"loss", "fine_acc", "binary_acc", "phrase_acc"} <= set(metrics)
    assert 0 <= metrics["fine_acc"] <= 100 and "fine_acc" in printed
    task, model, _ = load_run(tmp_path / "run")
    assert len(task.words) == model.embedding.num_embeddings


def test_sst_tree_rejects_bad_settings(data_dir):
    with pytest.raises(ConfigError, match="--embed equal to"):
        tasks.create("sst-tree", make_config("sst-tree", model="recursive", embed=5, hidden=6))
    with pytest.raises(ConfigError, match="unknown --model"):
        tasks.create("sst-tree", make_config("sst-tree", model="tree-gru"))


def test_pixelrnn_trains_and_samples_a_png(tmp_path, data_dir, monkeypatch):
    def blank(self, count, size, generator=None):  # drawing 784 pixels one by one takes seconds
        return torch.zeros(count, 1, *size)

    monkeypatch.setattr(PixelRNN, "sample", blank)
    metrics, _ = _train("pixelrnn", tmp_path / "run", data_dir, hidden=4, layers=1, batch_size=4)
    assert metrics["bits_per_dim"] == pytest.approx(metrics["loss"] / 0.6931471805599453)
    task, model, _ = load_run(tmp_path / "run")
    assert "wrote 16 samples" in task.sample(model, seed=3)
    assert (tmp_path / "run" / "samples-seed3.png").is_file()


def test_moving_digits_trains_and_writes_a_strip(tmp_path, data_dir):
    metrics, _ = _train(
        "moving-digits", tmp_path / "run", data_dir, hidden=4, batch_size=2, frames=4, context=2
    )
    assert {"loss", "rollout_loss", "rollout_ce", "copy_loss"} <= set(metrics)
    task, model, _ = load_run(tmp_path / "run")
    assert "wrote" in task.sample(model, seed=1)
    assert (tmp_path / "run" / "frames-seed1.png").is_file()
