"""The whole-sequence native training path of the fused LSTM (rnnlab.fast.native_training)
against the reference loop: outputs, final state, gradients of the input, the initial state and
every parameter, and batch norm's running statistics, with and without lengths, forward and
reverse; a float64 gradcheck; and that the native path is the one taken (and left for masks,
projections, batch norm at evaluation and RNNLAB_NATIVE=0)."""

from __future__ import annotations

import copy
from functools import partial

import pytest
import torch

import rnnlab
from rnnlab.cells.base import map_state
from rnnlab.fast import fused_lstm, native
from rnnlab.fast.fused_lstm import lstm_unroll
from rnnlab.fast.regularizer_masks import RegularizerMasks
from rnnlab.layers.unroll import unroll

pytestmark = pytest.mark.skipif(
    native.kernels() is None, reason="the native kernels cannot be built here"
)

VARIANTS = [
    {"layer_norm": True},
    {"batch_norm": True},
    {"layer_norm": True, "peephole": True},
    {"batch_norm": True, "peephole": True, "coupled": True},
    {"layer_norm": True, "coupled": True, "bias": False},
    {"peephole": True},
    {"coupled": True},
]
STEPS, BATCH, INPUTS, HIDDEN = 7, 4, 5, 6
LENGTHS = torch.tensor([7, 3, 1, 5])


class Paths:
    """Counts the calls of the native training forward and of the Python forward loop."""

    def __init__(self, monkeypatch) -> None:
        self.native = self.python = 0
        forward, loop = fused_lstm.train_forward, fused_lstm.lstm_forward

        def native_forward(*args):
            self.native += 1
            return forward(*args)

        def python_loop(*args, **kwargs):
            self.python += 1
            return loop(*args, **kwargs)

        monkeypatch.setattr(fused_lstm, "train_forward", native_forward)
        monkeypatch.setattr(fused_lstm, "lstm_forward", python_loop)


def make_cell(kwargs: dict, dtype: torch.dtype):
    torch.manual_seed(0)
    cell = rnnlab.cells.create("lstm", input_size=INPUTS, hidden_size=HIDDEN, **kwargs).to(dtype)
    with torch.no_grad():  # move every parameter off its initial value (gains of 1, zero shifts)
        for p in cell.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return cell.train()


def random_state(cell, dtype):
    state = cell.init_state(BATCH, dtype=dtype)
    return map_state(lambda s: torch.randn_like(s) if s.is_floating_point() else s, state)


def run(cell, x, state, lengths, reverse, fused: bool):
    """Outputs, final floating state and the gradients of a loss of both with respect to the
    input, the initial state and every parameter."""
    x = x.clone().requires_grad_(True)
    state = map_state(
        lambda s: s.clone().requires_grad_(True) if s.is_floating_point() else s.clone(), state
    )
    run_loop = cell.fused_unroll if fused else lambda *a: unroll(cell, *a)
    y, final = run_loop(x, state, lengths, reverse)
    final = [f for f in final if f.is_floating_point()]
    weights = torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y)
    loss = (y * weights).sum() + sum((f * f.detach().sin()).sum() for f in final)
    inputs = [x, *(s for s in state if s.is_floating_point()), *cell.parameters()]
    grads = torch.autograd.grad(loss, inputs)
    return y, final, grads


def check(kwargs, dtype, lengths, reverse, monkeypatch, tolerance):
    cell = make_cell(kwargs, dtype)
    reference = copy.deepcopy(cell)
    x = torch.randn(STEPS, BATCH, INPUTS, dtype=dtype)
    state = random_state(cell, dtype)
    paths = Paths(monkeypatch)
    y, final, grads = run(cell, x, state, lengths, reverse, fused=True)
    assert (paths.native, paths.python) == (1, 0)  # the native training path ran, alone
    y_ref, final_ref, grads_ref = run(reference, x, state, lengths, reverse, fused=False)
    close = dict(atol=tolerance, rtol=tolerance)
    torch.testing.assert_close(y, y_ref, **close)
    for a, b in zip(final, final_ref, strict=True):
        torch.testing.assert_close(a, b, **close)
    names = ["x", "state"] + [name for name, _ in cell.named_parameters()]
    names[1:2] = [f"state[{k}]" for k in range(len(final))]
    for name, a, b in zip(names, grads, grads_ref, strict=True):
        torch.testing.assert_close(a, b, **close, msg=lambda m, name=name: f"{name}: {m}")
    for name, buffer in cell.named_buffers():  # batch norm's running statistics
        torch.testing.assert_close(buffer, dict(reference.named_buffers())[name], **close)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "lengths"])
@pytest.mark.parametrize("kwargs", VARIANTS, ids=lambda k: "-".join(k))
def test_native_training_matches_the_reference_loop(kwargs, lengths, reverse, monkeypatch):
    check(kwargs, torch.float64, lengths, reverse, monkeypatch, 1e-10)


@pytest.mark.parametrize("kwargs", VARIANTS[:3], ids=lambda k: "-".join(k))
def test_native_training_in_float32(kwargs, monkeypatch):
    check(kwargs, torch.float32, LENGTHS, False, monkeypatch, 2e-4)


def test_batch_norm_running_statistics_of_later_calls(monkeypatch):
    """A state that carries its step: the statistics of steps 7 to 13 move, in both paths."""
    cell = make_cell({"batch_norm": True}, torch.float64)
    reference = copy.deepcopy(cell)
    x = torch.randn(STEPS, BATCH, INPUTS, dtype=torch.float64)
    for model, run_loop in ((cell, cell.fused_unroll), (reference, partial(unroll, reference))):
        state = model.init_state(BATCH, dtype=torch.float64)
        for _ in range(2):  # truncated backpropagation through time
            y, state = run_loop(x, state, None, False)
            y.sum().backward()
            state = map_state(torch.Tensor.detach, state)
    assert cell.bn_hh.steps_seen == 2 * STEPS
    for name, buffer in cell.named_buffers():
        torch.testing.assert_close(buffer, dict(reference.named_buffers())[name])


@pytest.mark.parametrize(
    "kwargs", [VARIANTS[0], VARIANTS[1], VARIANTS[3]], ids=lambda k: "-".join(k)
)
@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "lengths"])
def test_gradcheck_native_training(kwargs, lengths, monkeypatch):
    cell = make_cell(kwargs, torch.float64)
    paths = Paths(monkeypatch)
    x = torch.randn(4, BATCH, INPUTS, dtype=torch.float64, requires_grad=True)
    h, c = (s.requires_grad_(True) for s in random_state(cell, torch.float64)[:2])
    step = torch.zeros(BATCH, dtype=torch.long) if cell.batch_norm else None
    lens = None if lengths is None else lengths.clamp(max=4)

    def function(x, h, c, *params):  # gradcheck perturbs the parameters in place
        return lstm_unroll(cell, x, h, c, step, lens, True)

    assert torch.autograd.gradcheck(function, (x, h, c, *cell.parameters()))
    assert paths.native > 0 and paths.python == 0


def test_python_loop_for_masks_projection_evaluation_and_without_native(monkeypatch):
    paths = Paths(monkeypatch)
    x = torch.randn(STEPS, BATCH, INPUTS, dtype=torch.float64)

    def train(cell, masks=None):
        h, c = random_state(cell, torch.float64)[:2]
        step = torch.zeros(BATCH, dtype=torch.long) if cell.batch_norm else None
        y, *_ = lstm_unroll(cell, x, h, c, step, None, False, masks)
        y.sum().backward()

    layer_norm = make_cell({"layer_norm": True}, torch.float64)
    drop = torch.bernoulli(torch.full((BATCH, HIDDEN), 0.7, dtype=torch.float64)) / 0.7
    train(layer_norm, RegularizerMasks(drop=drop))
    train(make_cell({"layer_norm": True, "proj_size": 3}, torch.float64))
    train(make_cell({"batch_norm": True}, torch.float64).eval())  # population statistics
    assert (paths.native, paths.python) == (0, 3)
    monkeypatch.setenv("RNNLAB_NATIVE", "0")
    train(layer_norm)
    assert (paths.native, paths.python) == (0, 4)
    monkeypatch.delenv("RNNLAB_NATIVE")
    train(layer_norm)
    assert (paths.native, paths.python) == (1, 4)
