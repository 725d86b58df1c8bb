"""The core cells: gradcheck in float64, fast path == reference loop, registry and errors."""

from __future__ import annotations

import pytest
import torch

import rnnlab
from rnnlab.cells.lstm import LSTMState
from rnnlab.layers.unroll import unroll
from rnnlab.sequences import map_state, reverse_padded

CORE = [
    ("lstm", {}),
    ("lstm", {"proj_size": 3}),
    ("gru", {}),
    ("rnn", {"nonlinearity": "tanh"}),
    ("rnn", {"nonlinearity": "relu"}),
]


def flat(state):
    return torch.cat([state] if torch.is_tensor(state) else list(state), dim=-1)


@pytest.mark.parametrize("name,kwargs", CORE)
def test_gradcheck_step(name, kwargs):
    cell = rnnlab.cells.create(name, input_size=3, hidden_size=4, **kwargs).double()
    x = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)

    def run(x, *params):
        y, state = unroll(cell, x, cell.init_state(2, dtype=torch.float64))
        return y, flat(state)

    assert torch.autograd.gradcheck(run, (x, *cell.parameters()))


@pytest.mark.parametrize("name,kwargs", CORE)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_fast_path_matches_reference(name, kwargs, reverse, with_lengths):
    cell = rnnlab.cells.create(name, input_size=5, hidden_size=6, **kwargs).double()
    assert cell.torch_kernel() is not None
    x = torch.randn(8, 3, 5, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([8, 3, 1]) if with_lengths else None
    state0 = map_state(
        lambda s: s.normal_().requires_grad_(), cell.init_state(3, dtype=torch.float64)
    )
    results = []
    for fast in (True, False):
        y, state = rnnlab.Recurrent(cell, reverse=reverse, fast=fast)(x, state0, lengths)
        loss = (y * torch.linspace(-1, 1, y.shape[-1], dtype=y.dtype)).sum() + flat(state).pow(
            2
        ).sum()
        grads = torch.autograd.grad(loss, [x, *cell.parameters()])
        results.append((y, flat(state), grads))
    (y1, s1, g1), (y2, s2, g2) = results
    torch.testing.assert_close(y1, y2)
    torch.testing.assert_close(s1, s2)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b)


def test_lengths_freeze_state_and_zero_outputs():
    cell = rnnlab.cells.create("lstm", input_size=2, hidden_size=3)
    x = torch.randn(6, 2, 2)
    y, state = rnnlab.Recurrent(cell, fast=False)(x, lengths=[6, 2])
    assert torch.all(y[2:, 1] == 0)
    y_short, state_short = rnnlab.Recurrent(cell, fast=False)(x[:2, 1:])
    torch.testing.assert_close(state.h[1], state_short.h[0])
    torch.testing.assert_close(state.c[1], state_short.c[0])
    assert isinstance(state, LSTMState)


def test_reverse_padded_reverses_within_length():
    x = torch.arange(4.0).view(4, 1, 1).repeat(1, 2, 1)
    out = reverse_padded(x, torch.tensor([4, 2]))
    assert out[:, 0, 0].tolist() == [3, 2, 1, 0]
    assert out[:, 1, 0].tolist() == [1, 0, 2, 3]


def test_lstm_init_forget_bias_and_orthogonal():
    cell = rnnlab.cells.create("lstm", input_size=4, hidden_size=8, forget_bias=2.5)
    assert torch.all(cell.bias_ih[8:16] == 2.5) and torch.all(cell.bias_hh == 0)
    block = cell.weight_hh[:8]
    torch.testing.assert_close(block @ block.T, torch.eye(8), atol=1e-5, rtol=0)
    irnn = rnnlab.cells.create("rnn", input_size=4, hidden_size=8, init="identity")
    torch.testing.assert_close(irnn.weight_hh, torch.eye(8))


def test_registry_errors():
    with pytest.raises(rnnlab.ConfigError, match="unknown cell 'lstmm'"):
        rnnlab.cells.create("lstmm", input_size=1, hidden_size=1)
    with pytest.raises(rnnlab.ConfigError, match="hidden_size must be a positive integer"):
        rnnlab.cells.create("gru", input_size=1, hidden_size=0)
    with pytest.raises(rnnlab.ConfigError, match="unknown recurrent init"):
        rnnlab.cells.create("rnn", input_size=1, hidden_size=2, init="zeros")
    with pytest.raises(rnnlab.ConfigError, match="between 1 and"):
        rnnlab.Recurrent(rnnlab.cells.create("gru", input_size=1, hidden_size=2))(
            torch.zeros(3, 2, 1), lengths=[4, 1]
        )
