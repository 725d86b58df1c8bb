"""The NumPy BPTT oracle against autograd on rnnlab's Elman cell, and check_cell on all cells."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rnnlab
from rnnlab.analysis import numpy_bptt
from rnnlab.cells.base import Cell
from rnnlab.layers.unroll import unroll
from rnnlab.testing import check_cell


def test_numpy_bptt_matches_autograd_on_elman_cell():
    steps, batch, inputs, hidden, classes = 7, 3, 4, 5, 6
    cell = rnnlab.cells.create("rnn", input_size=inputs, hidden_size=hidden).double()
    head = torch.nn.Linear(hidden, classes).double()
    x = torch.randn(steps, batch, inputs, dtype=torch.float64)
    y = torch.randint(classes, (steps, batch))
    h0 = torch.randn(batch, hidden, dtype=torch.float64, requires_grad=True)
    out, _ = unroll(cell, x, h0)
    loss = torch.nn.functional.cross_entropy(
        head(out).reshape(-1, classes), y.reshape(-1), reduction="sum"
    )
    names = ["weight_hh", "weight_ih", "bias_ih", "bias_hh"]
    auto = torch.autograd.grad(loss, [getattr(cell, n) for n in names] + [*head.parameters(), h0])

    params = numpy_bptt.VanillaRNNParams(
        W=cell.weight_hh.detach().numpy(),
        U=cell.weight_ih.detach().numpy(),
        b=(cell.bias_ih + cell.bias_hh).detach().numpy(),
        V=head.weight.detach().numpy(),
        c=head.bias.detach().numpy(),
    )
    np_loss, cache = numpy_bptt.forward(params, x.numpy(), y.numpy(), h0.detach().numpy())
    grads = numpy_bptt.backward(params, x.numpy(), y.numpy(), cache)
    assert abs(np_loss - loss.item()) < 1e-10
    expected = {"W": auto[0], "U": auto[1], "b": auto[2], "V": auto[4], "c": auto[5], "h0": auto[6]}
    np.testing.assert_allclose(auto[2].numpy(), auto[3].numpy())  # b = b_ih + b_hh: same grad
    for name, value in expected.items():
        np.testing.assert_allclose(grads[name], value.numpy(), atol=1e-8, rtol=0)


def test_numpy_bptt_detects_a_wrong_gradient():
    rng = np.random.default_rng(0)
    params = numpy_bptt.VanillaRNNParams(
        rng.normal(size=(3, 3)), rng.normal(size=(3, 2)), rng.normal(size=3),
        rng.normal(size=(4, 3)), rng.normal(size=4),
    )  # fmt: skip
    x, y, h0 = rng.normal(size=(5, 2, 2)), rng.integers(4, size=(5, 2)), np.zeros((2, 3))
    _, cache = numpy_bptt.forward(params, x, y, h0)
    grads = numpy_bptt.backward(params, x, y, cache)
    eps = 1e-6
    params.W[0, 1] += eps
    up, _ = numpy_bptt.forward(params, x, y, h0)
    params.W[0, 1] -= 2 * eps
    down, _ = numpy_bptt.forward(params, x, y, h0)
    assert abs((up - down) / (2 * eps) - grads["W"][0, 1]) < 1e-6
    assert abs((up - down) / (2 * eps) - grads["W"][1, 0]) > 1e-6  # a transposed W would fail


@pytest.mark.parametrize(
    "name,kwargs", [("rnn", {}), ("rnn", {"nonlinearity": "relu"}), ("lstm", {}), ("gru", {})]
)
def test_check_cell_on_builtin_cells(name, kwargs):
    cell = rnnlab.cells.create(name, input_size=3, hidden_size=4, **kwargs)
    ran = check_cell(cell)
    assert ran == ["gradcheck", "fast path == reference loop", "masking"]
    assert next(cell.parameters()).dtype == torch.float32  # the user's cell is left unchanged


class LeakyCell(Cell):
    """A user cell without a fused kernel: h_t = (1-a) h_{t-1} + a tanh(W x_t + U h_{t-1})."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.w = torch.nn.Linear(input_size, hidden_size)
        self.u = torch.nn.Linear(hidden_size, hidden_size, bias=False)

    def init_state(self, batch, device=None, dtype=None):
        return torch.zeros(batch, self.hidden_size, device=device, dtype=dtype)

    def step(self, xp_t, state):
        h = 0.5 * state + 0.5 * torch.tanh(self.w(xp_t) + self.u(state))
        return h, h


def test_check_cell_on_a_user_cell():
    assert check_cell(LeakyCell(3, 4)) == ["gradcheck", "masking"]


def test_check_cell_catches_a_wrong_backward():
    class WrongGrad(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            return torch.tanh(a)

        @staticmethod
        def backward(ctx, grad):
            return grad  # forgets the factor 1 - tanh^2

    class BrokenCell(LeakyCell):
        def step(self, xp_t, state):
            h = WrongGrad.apply(self.w(xp_t) + self.u(state))
            return h, h

    with pytest.raises(AssertionError, match="gradcheck"):
        check_cell(BrokenCell(3, 4))
