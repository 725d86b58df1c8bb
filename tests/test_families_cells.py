"""The other recurrent families as cells: float64 gradcheck, fast path == reference loop (with
lengths and reverse), and one raw step == one step of a sequence."""

from __future__ import annotations

import pytest
import torch

import rnnlab
from rnnlab.layers.unroll import unroll
from rnnlab.sequences import map_state

FAMILIES = [
    ("esn", {"spectral_radius": 0.9, "leak_rate": 0.5, "bias_scaling": 0.2, "seed": 0}),
    ("esn", {"feedback_size": 2, "seed": 1}),
    ("urnn", {}),
    ("qrnn", {"window": 1}),
    ("qrnn", {"window": 2}),
    ("qrnn", {"window": 3}),
    ("isan", {}),
    ("clockwork", {"hidden_size": 6, "num_modules": 3}),
    ("mingru", {}),
    ("minlstm", {}),
]
FUSED = [(name, kw) for name, kw in FAMILIES if name in ("qrnn", "mingru", "minlstm")]


def make(name, kwargs, input_size=3):
    kwargs = {"input_size": input_size, "hidden_size": 4, **kwargs}
    cell = rnnlab.cells.create(name, **kwargs).double()
    width = input_size + getattr(cell, "feedback_size", 0)
    return cell, width


def random_state(cell, batch):
    """A random initial state (clockwork's step counter stays 0)."""
    state = cell.init_state(batch, dtype=torch.float64)
    return map_state(lambda s: s.normal_() if s.dim() == 2 else s, state)


def flat(state):
    parts = [state] if torch.is_tensor(state) else list(state)
    return torch.cat([p if p.dim() == 2 else p.unsqueeze(-1) for p in parts], dim=-1)


@pytest.mark.parametrize("name,kwargs", FAMILIES)
def test_gradcheck(name, kwargs):
    cell, width = make(name, kwargs)
    x = torch.randn(5, 2, width, dtype=torch.float64, requires_grad=True)
    h0 = random_state(cell, 2)
    params = [p for p in cell.parameters()]

    def run(x, *params):
        y, state = unroll(cell, x, h0)
        return y, flat(state)

    assert torch.autograd.gradcheck(run, (x, *params), fast_mode=True)


@pytest.mark.parametrize("name,kwargs", FUSED)
def test_fused_gradcheck_with_lengths(name, kwargs):
    cell, width = make(name, kwargs)
    x = torch.randn(6, 3, width, dtype=torch.float64, requires_grad=True)
    h0 = random_state(cell, 3)
    lengths = torch.tensor([6, 2, 4])

    def run(x, *params):
        y, state = cell.fused_unroll(x, h0, lengths, reverse=False)
        return y, flat(state)

    assert torch.autograd.gradcheck(run, (x, *cell.parameters()), fast_mode=True)


@pytest.mark.parametrize("name,kwargs", FAMILIES)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_recurrent_matches_reference(name, kwargs, reverse, with_lengths):
    cell, width = make(name, kwargs, input_size=5)
    x = torch.randn(9, 3, width, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([9, 4, 1]) if with_lengths else None
    state0 = random_state(cell, 3)
    results = []
    for fast in (True, False):
        y, state = rnnlab.Recurrent(cell, reverse=reverse, fast=fast)(x, state0, lengths)
        weights = torch.linspace(-1, 1, y.shape[-1], dtype=y.dtype)
        loss = (y * weights).sum() + flat(state).pow(2).sum()
        grads = torch.autograd.grad(loss, [x, *cell.parameters()])
        results.append((y, flat(state), grads))
    (y1, s1, g1), (y2, s2, g2) = results
    torch.testing.assert_close(y1, y2)
    torch.testing.assert_close(s1, s2)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b)
    if with_lengths:
        assert torch.all(y1[4:, 1] == 0) and torch.all(y1[1:, 2] == 0)


@pytest.mark.parametrize("name,kwargs", FUSED)
def test_stepwise_generation_continues_a_sequence(name, kwargs):
    """A sequence run in one call == its first part in one call, then raw steps one at a time
    (the state carries everything the next step needs, e.g. the QRNN's convolution window)."""
    cell, width = make(name, kwargs)
    x = torch.randn(7, 2, width, dtype=torch.float64)
    rnn = rnnlab.Recurrent(cell)
    y_all, state_all = rnn(x)
    y, state = rnn(x[:4])
    outputs = [y]
    for x_t in x[4:]:
        y_t, state = cell(x_t, state)
        outputs.append(y_t.unsqueeze(0))
    torch.testing.assert_close(torch.cat(outputs), y_all)
    torch.testing.assert_close(flat(state), flat(state_all))


def test_registered_names():
    for name in ("esn", "reservoir", "urnn", "unitary", "qrnn", "isan", "clockwork", "cwrnn"):
        assert name in rnnlab.cells.available()
    for name in ("mingru", "minlstm"):
        assert name in rnnlab.cells.available()


def test_configuration_errors():
    with pytest.raises(rnnlab.ConfigError, match="multiple of num_modules"):
        rnnlab.cells.create("clockwork", input_size=1, hidden_size=10, num_modules=4)
    with pytest.raises(rnnlab.ConfigError, match="increasing positive"):
        rnnlab.cells.create("clockwork", input_size=1, hidden_size=8, periods=[4, 2, 1, 8])
    with pytest.raises(rnnlab.ConfigError, match="leak_rate"):
        rnnlab.cells.create("esn", input_size=1, hidden_size=8, leak_rate=0.0)
    with pytest.raises(rnnlab.ConfigError, match="window must be a positive"):
        rnnlab.cells.create("qrnn", input_size=1, hidden_size=8, window=0)
