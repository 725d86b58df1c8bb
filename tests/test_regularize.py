"""Regularisers: identity (or expectation) at evaluation, active in training, masks shared across
time where they must be, parameters untouched by weight noise, penalties as their formulas."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import rnnlab
from rnnlab.cells.elman import ElmanCell
from rnnlab.errors import ConfigError
from rnnlab.layers.unroll import unroll
from rnnlab.regularize import (
    LockedDropout,
    RecurrentDropout,
    WeightDrop,
    WeightNoise,
    Zoneout,
    activation_regularization,
    constrain_spectral_norm_,
    embedding_dropout,
    gradient_norm_preservation,
    recurrent_l2,
    temporal_activation_regularization,
)


class RecordingElman(ElmanCell):
    """An Elman cell that remembers the state fed into each step."""

    def step(self, xp_t, state):
        self.seen.append(state.detach().clone())
        return super().step(xp_t, state)


def test_locked_dropout_one_mask_across_time():
    drop = LockedDropout(0.5)
    x = torch.ones(7, 4, 10)
    y = drop(x)
    assert torch.equal(y, y[0].expand_as(y))
    assert set(y.unique().tolist()) == {0.0, 2.0}
    drop.eval()
    assert torch.equal(drop(x), x)
    bf = LockedDropout(0.5, batch_first=True)(torch.ones(4, 7, 10))
    assert torch.equal(bf, bf[:, :1].expand_as(bf))


def test_embedding_dropout_drops_whole_words():
    emb = nn.Embedding(20, 6)
    tokens = torch.tensor([[1, 2, 1, 3, 2, 1]] * 3)
    torch.manual_seed(3)
    out = embedding_dropout(emb, tokens, 0.5)
    dropped = (out == 0).all(-1)
    for word in (1, 2, 3):
        assert dropped[tokens == word].unique().numel() == 1
    kept = ~dropped
    torch.testing.assert_close(out[kept], emb(tokens)[kept] * 2)
    assert torch.equal(embedding_dropout(emb, tokens, 0.5, training=False), emb(tokens))


def test_recurrent_dropout_same_mask_every_step_new_mask_per_sequence():
    inner = RecordingElman(3, 32)
    inner.seen = []
    cell = RecurrentDropout(inner, 0.5)
    x = torch.randn(6, 2, 3)
    unroll(cell, x, torch.randn(2, 32))
    patterns = [(s == 0) for s in inner.seen]
    assert patterns[0].any()
    assert all(torch.equal(p, patterns[0]) for p in patterns)
    inner.seen = []
    unroll(cell, x, torch.randn(2, 32))
    assert not torch.equal(inner.seen[0] == 0, patterns[0])
    cell.eval()
    y_eval, _ = unroll(cell, x, torch.zeros(2, 32))
    y_ref, _ = unroll(inner, x, torch.zeros(2, 32))
    torch.testing.assert_close(y_eval, y_ref)


def test_recurrent_dropout_masks_only_h_of_lstm():
    cell = RecurrentDropout(rnnlab.cells.create("lstm", input_size=2, hidden_size=8), 0.5)
    state = cell.init_state(3)
    state = type(state)(torch.ones(3, 8), torch.ones(3, 8))
    seen = []
    original = cell.inner.step
    cell.inner.step = lambda xp, s: (seen.append(s), original(xp, s))[1]
    cell.step(torch.zeros(3, 32), state)
    assert (seen[0].h == 0).any() and torch.equal(seen[0].c, state.c)


def test_zoneout_train_picks_old_or_new_and_eval_is_expectation():
    inner = rnnlab.cells.create("lstm", input_size=3, hidden_size=16)
    cell = Zoneout(inner, p_hidden=0.3, p_cell=0.6)
    xp = inner.precompute(torch.randn(1, 5, 3))[0]
    state = type(inner.init_state(5))(torch.randn(5, 16), torch.randn(5, 16))
    _, new = inner.step(xp, state)
    y, zoned = cell.step(xp, state)
    for field in (0, 1):
        is_old = torch.isclose(zoned[field], state[field])
        is_new = torch.isclose(zoned[field], new[field])
        assert torch.all(is_old | is_new) and is_old.any() and is_new.any()
    assert torch.equal(y, zoned.h)
    cell.eval()
    y, zoned = cell.step(xp, state)
    torch.testing.assert_close(zoned.h, 0.3 * state.h + 0.7 * new.h)
    torch.testing.assert_close(zoned.c, 0.6 * state.c + 0.4 * new.c)


def test_weight_drop_one_mask_per_pass_and_plain_parameters():
    inner = rnnlab.cells.create("gru", input_size=3, hidden_size=8)
    cell = WeightDrop(inner, 0.5)
    assert set(cell.state_dict()) == {f"inner.{k}" for k in inner.state_dict()}
    x = torch.randn(5, 2, 3)
    y, _ = rnnlab.Recurrent(cell)(x)
    masked = cell.masked_weights["weight_hh"].detach()
    assert (masked == 0).any()
    reference = rnnlab.cells.create("gru", input_size=3, hidden_size=8)
    reference.load_state_dict(inner.state_dict())
    with torch.no_grad():
        reference.weight_hh.copy_(masked)
    y_ref, _ = unroll(reference, x, reference.init_state(2))
    torch.testing.assert_close(y, y_ref)
    y.sum().backward()
    assert inner.weight_hh.grad is not None and (inner.weight_hh.grad == 0).any()
    cell.eval()
    torch.testing.assert_close(rnnlab.Recurrent(cell)(x)[0], rnnlab.Recurrent(inner)(x)[0])
    nested = WeightDrop(Zoneout(inner, p_hidden=0.1), 0.5)
    assert nested.weights == ("inner.weight_hh",)
    assert rnnlab.Recurrent(nested)(x)[0].shape == (5, 2, 8)
    with pytest.raises(ConfigError, match="no single parameter 'weight_xx'"):
        WeightDrop(inner, 0.5, weights=("weight_xx",))


def test_weight_noise_restores_exact_weights_and_perturbs_gradient():
    model = nn.Linear(4, 3)
    clean = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(8, 4)
    clean_grad = torch.autograd.grad(model(x).pow(2).sum(), model.weight)[0]
    with WeightNoise(model.parameters(), sigma=0.1):
        assert not torch.equal(model.weight, clean["weight"])
        model(x).pow(2).sum().backward()
    for k, v in model.state_dict().items():
        assert torch.equal(v, clean[k])
    assert not torch.allclose(model.weight.grad, clean_grad)
    with pytest.raises(ConfigError):
        WeightNoise(model.parameters(), sigma=-1)


def test_spectral_norm_constraint_per_gate_block():
    cell = rnnlab.cells.create("lstm", input_size=3, hidden_size=6)
    with torch.no_grad():
        cell.weight_hh.mul_(3.0)
        cell.weight_hh[:6] *= 0.1
    small_block = cell.weight_hh[:6].clone()
    before = constrain_spectral_norm_(cell, max_norm=1.0)
    assert before["weight_hh"] == pytest.approx(3.0, rel=1e-4)
    for block in cell.weight_hh.detach().split(6):
        assert torch.linalg.matrix_norm(block, ord=2) <= 1.0 + 1e-5
    assert torch.equal(cell.weight_hh[:6], small_block)


def test_activation_penalties_and_recurrent_l2():
    h = torch.tensor([[[1.0, 2.0]], [[3.0, 5.0]]])
    assert activation_regularization(h, 2.0).item() == pytest.approx(2.0 * (1 + 4 + 9 + 25) / 4)
    assert temporal_activation_regularization(h, 1.0).item() == pytest.approx((4 + 9) / 2)
    cell = rnnlab.cells.create("rnn", input_size=2, hidden_size=3)
    with pytest.warns(UserWarning, match="speeds up forgetting"):
        penalty = recurrent_l2(cell, 0.5)
    assert penalty.item() == pytest.approx(0.5 * cell.weight_hh.pow(2).sum().item())


def test_gradient_norm_preservation_matches_elman_jacobian():
    torch.manual_seed(1)
    cell = rnnlab.cells.create("rnn", input_size=2, hidden_size=4).double()
    x = torch.randn(6, 3, 2, dtype=torch.float64)
    loss, omega = gradient_norm_preservation(cell, x, lambda y: y[-1].pow(2).sum())
    y, _ = unroll(cell, x, cell.init_state(3, dtype=torch.float64))
    states = [torch.zeros(3, 4, dtype=torch.float64)]
    for t in range(6):
        states.append(y[t])
    hs = [s.detach().requires_grad_() for s in states]
    expected = torch.zeros((), dtype=torch.float64)
    out = [hs[0]]
    xp = cell.precompute(x)
    for t in range(6):
        out.append(torch.tanh(xp[t] + out[-1] @ cell.weight_hh.T))
    g = torch.autograd.grad(out[-1].pow(2).sum(), out[1:])
    for k in range(6):
        h_next = states[k + 1].detach()
        v = (g[k] * (1 - h_next**2)) @ cell.weight_hh
        expected = expected + ((v.norm(dim=-1) / g[k].norm(dim=-1) - 1) ** 2).mean()
    torch.testing.assert_close(loss, y[-1].pow(2).sum())
    torch.testing.assert_close(omega, expected)
    (grad,) = torch.autograd.grad(omega, cell.weight_hh)
    assert grad.abs().sum() > 0


def test_bad_probabilities_are_config_errors():
    with pytest.raises(ConfigError, match="zoneout_cell must be a probability"):
        Zoneout(rnnlab.cells.create("lstm", input_size=1, hidden_size=2), p_cell=1.0)
    with pytest.raises(ConfigError, match="dropout must be a probability"):
        LockedDropout(-0.1)
