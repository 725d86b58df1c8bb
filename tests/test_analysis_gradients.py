"""Gradient flow through time against plain autograd, the trainer logger, and the cliff."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import rnnlab
from rnnlab.analysis import cliff
from rnnlab.analysis.gradients import (
    GradFlowLogger,
    gradient_flow,
    model_gradient_flow,
    random_direction,
    read_log,
)
from rnnlab.layers.unroll import Recurrent
from rnnlab.sequences import map_state


def lstm_output_gate(cell, x_t, h_prev):
    gates = x_t @ cell.weight_ih.T + cell.bias_ih + h_prev @ cell.weight_hh.T + cell.bias_hh
    return torch.sigmoid(gates.chunk(4, dim=1)[3])


def autograd_norms(cell, x, direction):
    """dL_T/dh_t and dL_T/dc_t independently: make state t a leaf and re-run steps t+1..T.

    For an LSTM the gradient of c_t is the total one of BPTT, which includes the path through
    h_t = o_t tanh(c_t): dL/dc_t = partial_c + partial_h o_t (1 - tanh(c_t)^2) (t > 0)."""
    state = cell.init_state(x.shape[1], dtype=x.dtype)
    states = [state]
    with torch.no_grad():
        for t in range(x.shape[0]):
            _, state = cell(x[t], state)
            states.append(state)
    h_norms, c_norms = [], []
    for t, s in enumerate(states):
        leaf = map_state(lambda v: v.clone().requires_grad_(), s)
        state = leaf
        parts = [leaf] if torch.is_tensor(leaf) else list(leaf)
        y = parts[0]  # at t = T, y_T is h_T itself
        for u in range(t, x.shape[0]):
            y, state = cell(x[u], state)
        grads = torch.autograd.grad((y * direction).sum(), parts, allow_unused=True)
        grads = [g if g is not None else torch.zeros_like(p) for g, p in zip(grads, parts)]
        h_norms.append(grads[0].norm(dim=1).mean().item())
        if len(parts) > 1:
            d_c = grads[1]
            if t > 0:
                with torch.no_grad():
                    o = lstm_output_gate(cell, x[t - 1], states[t - 1][0])
                d_c = d_c + grads[0] * o * (1 - torch.tanh(s[1]) ** 2)
            c_norms.append(d_c.norm(dim=1).mean().item())
    return np.array(h_norms), (np.array(c_norms) if c_norms else None)


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru"])
def test_gradient_flow_matches_autograd(name):
    cell = rnnlab.cells.create(name, input_size=3, hidden_size=4).double()
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    direction = random_direction(2, 4, x)
    flow = gradient_flow(cell, x, direction=direction)
    h, c = autograd_norms(cell, x, direction)
    assert flow.h.shape == (7,)
    np.testing.assert_allclose(flow.h, h, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(flow.h[-1], 1.0)  # unit direction at the last step
    if name == "lstm":
        np.testing.assert_allclose(flow.c, c, rtol=1e-10, atol=1e-14)
    else:
        assert flow.c is None


def test_vanilla_rnn_gradient_vanishes_with_small_weights():
    cell = rnnlab.cells.create("rnn", input_size=2, hidden_size=8)
    with torch.no_grad():
        cell.weight_hh.mul_(0.5)  # sigma_max = 0.5: each step at least halves the gradient
    flow = gradient_flow(cell, torch.randn(20, 3, 2))
    assert np.all(np.diff(flow.h) > 0)
    assert flow.h[0] < 0.5**20


class TinyLM(nn.Module):
    def __init__(self, cell_name):
        super().__init__()
        self.rnn = Recurrent(rnnlab.cells.create(cell_name, input_size=3, hidden_size=5))
        self.head = nn.Linear(5, 3)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.head(y)


@pytest.mark.parametrize("name", ["rnn", "lstm"])
def test_model_gradient_flow_and_logger(tmp_path, name):
    model = TinyLM(name).double()
    x = torch.randn(8, 2, 3, dtype=torch.float64)
    target = torch.randint(3, (8, 2))

    def loss_fn():
        return nn.functional.cross_entropy(model(x).reshape(-1, 3), target.reshape(-1))

    flow = model_gradient_flow(model, loss_fn)
    assert model.rnn.fast  # restored
    assert "step" not in vars(model.rnn.cell)  # the recording wrapper is gone
    # the same as gradient_flow with the direction dLoss/dy_T
    y, _ = model.rnn(x.clone())
    logits = model.head(y)
    loss = nn.functional.cross_entropy(logits.reshape(-1, 3), target.reshape(-1))
    (g_last,) = torch.autograd.grad(loss, y)
    expected = gradient_flow(model.rnn.cell, x, direction=g_last[-1])
    np.testing.assert_allclose(flow.h, expected.h, rtol=1e-10)
    assert all(p.grad is None for p in model.parameters())

    logger = GradFlowLogger(2, tmp_path)
    for step in range(5):
        logger(step, model, loss_fn)
    steps, h, c = read_log(tmp_path)
    assert steps.tolist() == [0, 2, 4]
    assert h.shape == (3, 9)
    assert (c is not None) == (name == "lstm")


def test_cliff_clipping_bounds_the_step():
    plain = cliff.descend((6.0, -3.0), lr=2.0, steps=40)
    clipped = cliff.descend((6.0, -3.0), lr=2.0, steps=40, clip=0.5)
    plain_jump = np.linalg.norm(np.diff(plain.points, axis=0), axis=1).max()
    clipped_jump = np.linalg.norm(np.diff(clipped.points, axis=0), axis=1).max()
    assert plain.grad_norms.max() > 5  # the descent meets the cliff
    assert plain_jump > 10 and clipped_jump <= 2.0 * 0.5 + 1e-9
    assert clipped.losses[-1] < plain.losses[-1]
    h = cliff.H0
    for _ in range(50):
        h = 1 / (1 + np.exp(-(6.0 * h - 3.0)))
    assert abs(plain.losses[0] - (h - 0.7) ** 2) < 1e-12
