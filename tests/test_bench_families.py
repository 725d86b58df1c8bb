"""The other families in ``rnnlab bench``: the TCN baseline (``--model tcn``) on the sequence
tasks and the echo state network on Mackey-Glass (``rnnlab bench mackey-glass``)."""

from __future__ import annotations

import pytest
import torch

from rnnlab import tasks
from rnnlab.bench.entries import get_entry
from rnnlab.bench.runner import HEADER, format_row, resolve_settings, run_benchmark
from rnnlab.cli.main import main
from rnnlab.errors import ConfigError
from rnnlab.models.tcn import TCNSequenceModel
from rnnlab.training.config import make_config

TINY_ESN = {"hidden": 30, "series_length": 600, "washout": 50}


def test_tcn_sequence_model_is_causal_and_reads_the_last_valid_step():
    torch.manual_seed(0)
    model = TCNSequenceModel(3, channels=6, levels=3, output_size=2, kernel_size=3).eval()
    x = torch.randn(12, 4, 3)
    y = model(x)
    assert y.shape == (12, 4, 2)
    changed = x.clone()
    changed[7:] = torch.randn(5, 4, 3)  # the future must not change the past
    torch.testing.assert_close(model(changed)[:7], y[:7])
    assert not torch.allclose(model(changed)[7:], y[7:])
    lengths = torch.tensor([12, 5, 1, 9])
    torch.testing.assert_close(model.last(x, lengths), y[lengths - 1, torch.arange(4)])
    tokens = TCNSequenceModel(5, 4, 2, 5, vocab_size=5)
    assert tokens(torch.randint(0, 5, (7, 2))).shape == (7, 2, 5)


def test_model_tcn_builds_the_tcn_with_the_reference_sizes():
    settings = resolve_settings(get_entry("adding"), {"model": "tcn"})
    assert (settings["hidden"], settings["layers"], settings["kernel_size"]) == (30, 8, 7)
    assert resolve_settings(get_entry("adding"), {"model": "tcn", "hidden": 5})["hidden"] == 5
    assert resolve_settings(get_entry("adding"), {})["hidden"] == 130  # recurrent: unchanged
    config = make_config("copy", **resolve_settings(get_entry("copy"), {"model": "tcn"}))
    model = tasks.create("copy", config).build_model()
    assert isinstance(model, TCNSequenceModel) and model.tcn.receptive_field >= 1020


@pytest.mark.parametrize("name", ["adding", "copy"])
def test_bench_trains_the_tcn_and_prints_it_in_the_cell_column(name):
    result = run_benchmark(name, {"model": "tcn", "seed": 0}, quick=True)
    assert result.steps == 2 and result.parameters > 0
    row = format_row(result)
    assert row.startswith(f"| {name} | tcn |") and row.count("|") == HEADER.count("|")


def test_model_tcn_is_an_error_for_a_task_without_it(capsys):
    with pytest.raises(ConfigError, match="--model is not an option of task mackey-glass"):
        run_benchmark("mackey-glass", {**TINY_ESN, "model": "tcn"})
    assert main(["bench", "mackey-glass", "--model", "tcn"]) == 2
    assert "--model is not an option of task mackey-glass" in capsys.readouterr().err


def test_bench_mackey_glass_fits_the_esn_in_closed_form():
    result = run_benchmark("mackey-glass", TINY_ESN)
    assert result.steps == 0 and result.parameters == 31  # 30 readout weights and a bias
    assert result.evaluated.startswith("closed-form fit in")
    # the one-step forecast of a smooth series: far better than predicting the mean (NRMSE 1)
    assert result.metrics["rmse"] < 0.03 and result.metrics["nrmse"] < 0.1
    row = format_row(result)
    assert row.startswith("| mackey-glass | esn | 31 | 0 |") and "NRMSE" in row
    assert "ReservoirPy README RMSE 0.0020" in row and "hidden=30 (published: 100)" in row
    worse = run_benchmark("mackey-glass", {**TINY_ESN, "hidden": 2})
    assert worse.metrics["rmse"] > result.metrics["rmse"]


def test_mackey_glass_cannot_be_trained_by_gradient(capsys, tmp_path):
    assert main(["train", "--task", "mackey-glass", "--out", str(tmp_path / "run")]) == 2
    assert "fitted in closed form" in capsys.readouterr().err
    assert main(["bench", "mackey-glass", "--test-fraction", "1.5"]) == 2
    assert "--test-fraction" in capsys.readouterr().err
