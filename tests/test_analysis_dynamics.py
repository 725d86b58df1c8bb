"""Spectra, the scalar systems' fixed points, contractivity, and the CLI end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rnnlab
from rnnlab.analysis import dynamics
from rnnlab.cli.main import main


@pytest.mark.parametrize("w", [0.5, 1.0, 1.2, 1.5, 2.0, 3.0, 5.0])
def test_tanh_fixed_points_match_the_analytic_ones(w):
    points = dynamics.tanh_fixed_points(w)
    if w <= 1:
        assert points == [(0.0, True)]  # at w = 1 attracting, though not hyperbolic
        return
    (neg, s_neg), (zero, s_zero), (pos, s_pos) = points
    assert zero == 0.0 and not s_zero and s_neg and s_pos
    assert neg == -pos and 0 < pos < 1
    assert abs(np.tanh(w * pos) - pos) < 1e-14  # a fixed point
    # analytic: h_f = tanh(w h_f)  <=>  w = artanh(h_f) / h_f
    assert abs(np.arctanh(pos) / pos - w) < 1e-9
    # the iteration converges to it from any positive start
    assert abs(dynamics.iterate_tanh(w, 0.01, 3000)[-1] - pos) < 1e-9


def test_linear_scalar_cases():
    traj = dynamics.linear_scalar_trajectories(steps=10)
    assert len(traj) == 5
    for name, w in dynamics.LINEAR_CASES.items():
        np.testing.assert_allclose(traj[name], w ** np.arange(11))


def test_spectral_stats_of_known_matrices():
    cell = rnnlab.cells.create("rnn", input_size=2, hidden_size=3)
    with torch.no_grad():
        cell.weight_hh.copy_(torch.tensor([[0.0, 2.0, 0.0], [0.5, 0.0, 0.0], [0.0, 0.0, 0.3]]))
    stats = dynamics.spectral_stats(cell)
    assert abs(stats["W_hh/spectral_radius"] - 1.0) < 1e-6  # eigenvalues +-1, 0.3
    assert abs(stats["W_hh/sigma_max"] - 2.0) < 1e-6
    lstm = rnnlab.cells.create("lstm", input_size=2, hidden_size=3)
    assert sorted(dynamics.recurrent_blocks(lstm)) == ["W_hf", "W_hg", "W_hi", "W_ho"]


def test_contractivity_of_a_contractive_cell():
    cell = rnnlab.cells.create("rnn", input_size=2, hidden_size=6)
    with torch.no_grad():
        cell.weight_hh.mul_(0.5)
    result = dynamics.contractivity(cell, torch.randn(40, 3, 2))
    assert 0 < result["lambda"] <= 0.5 + 1e-5  # tanh' <= 1 and sigma_max(W) = 0.5
    errors = np.array(result["errors"])
    ks = np.array(result["ks"])
    assert np.all(np.diff(errors) < 0)
    assert np.all(errors <= errors[0] * result["lambda"] ** (ks - ks[0]) * 1.0001 + 1e-12)


@pytest.mark.parametrize(
    "argv",
    [
        ["scalar"],
        ["cliff", "--steps", "10", "--resolution", "30"],
        ["spectrum", "--cell", "gru", "--hidden", "8"],
        ["contractivity", "--hidden", "4", "--seq-len", "9", "--batch", "2"],
        ["compare-gradients", "--seq-len", "12", "--hidden", "6", "--batch", "2"],
        ["grad-flow", "--train-steps", "4", "--every", "2", "--seq-len", "6", "--hidden", "4"],
    ],
)
def test_cli_writes_a_png(tmp_path, capsys, argv, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "figure.png"
    assert main(["analyze", *argv, "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {out}" in capsys.readouterr().out
