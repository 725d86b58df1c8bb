"""The whole-sequence native training paths of the fused LSTM and GRU
(rnnlab.fast.native_training) against the reference loop: outputs, final state, gradients of
the input, the initial state and every parameter, and batch norm's running statistics, with and
without lengths, forward and reverse; a float64 gradcheck; and that the native path is the one
taken (and left for masks, projections, batch norm at evaluation and RNNLAB_NATIVE=0)."""

from __future__ import annotations

import copy
from functools import partial

import pytest
import torch

import rnnlab
from rnnlab.fast import fused_gru, fused_lstm, native
from rnnlab.fast.fused_gru import gru_unroll
from rnnlab.fast.fused_lstm import lstm_unroll
from rnnlab.fast.regularizer_masks import RegularizerMasks
from rnnlab.layers.unroll import unroll
from rnnlab.sequences import map_state

pytestmark = pytest.mark.skipif(
    native.kernels() is None, reason="the native kernels cannot be built here"
)

VARIANTS = [
    ("lstm", {"layer_norm": True}),
    ("lstm", {"batch_norm": True}),
    ("lstm", {"layer_norm": True, "peephole": True}),
    ("lstm", {"batch_norm": True, "peephole": True, "coupled": True}),
    ("lstm", {"layer_norm": True, "coupled": True, "bias": False}),
    ("lstm", {"peephole": True}),
    ("lstm", {"coupled": True}),
    ("gru", {"layer_norm": True}),
    ("gru", {"batch_norm": True}),
    ("gru", {"layer_norm": True, "bias": False}),
    ("gru", {"weight_norm": True}),
]
STEPS, BATCH, INPUTS, HIDDEN = 7, 4, 5, 6
LENGTHS = torch.tensor([7, 3, 1, 5])


class Paths:
    """Counts the calls of the native training forwards and of the Python forward loops."""

    def __init__(self, monkeypatch) -> None:
        self.native = self.python = 0
        for module, native_name, loop_name in (
            (fused_lstm, "train_forward", "lstm_forward"),
            (fused_gru, "gru_train_forward", "gru_forward"),
        ):
            monkeypatch.setattr(module, native_name, self.count(getattr(module, native_name), True))
            monkeypatch.setattr(module, loop_name, self.count(getattr(module, loop_name), False))

    def count(self, function, native_path: bool):
        def counted(*args, **kwargs):
            if native_path:
                self.native += 1
            else:
                self.python += 1
            return function(*args, **kwargs)

        return counted


def make_cell(name: str, kwargs: dict, dtype: torch.dtype):
    torch.manual_seed(0)
    cell = rnnlab.cells.create(name, input_size=INPUTS, hidden_size=HIDDEN, **kwargs).to(dtype)
    with torch.no_grad():  # move every parameter off its initial value (gains of 1, zero shifts)
        for p in cell.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return cell.train()


def tensors(state) -> tuple:
    return (state,) if isinstance(state, torch.Tensor) else tuple(state)


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
    run_loop = cell.fused_unroll if fused else partial(unroll, cell)
    y, final = run_loop(x, state, lengths, reverse)
    final = [f for f in tensors(final) if f.is_floating_point()]
    weights = torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y)
    loss = (y * weights).sum() + sum((f * f.detach().sin()).sum() for f in final)
    inputs = [x, *(s for s in tensors(state) if s.is_floating_point()), *cell.parameters()]
    grads = torch.autograd.grad(loss, inputs)
    return y, final, grads


def check(name, kwargs, dtype, lengths, reverse, monkeypatch, tolerance):
    cell = make_cell(name, kwargs, dtype)
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


def variant_id(variant) -> str:
    name, kwargs = variant if isinstance(variant, tuple) else (variant, {})
    return "-".join([name, *kwargs])


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "lengths"])
@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_native_training_matches_the_reference_loop(variant, lengths, reverse, monkeypatch):
    check(*variant, torch.float64, lengths, reverse, monkeypatch, 1e-10)


@pytest.mark.parametrize("variant", [VARIANTS[k] for k in (0, 1, 2, 7, 8)], ids=variant_id)
def test_native_training_in_float32(variant, monkeypatch):
    check(*variant, torch.float32, LENGTHS, False, monkeypatch, 2e-4)


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_batch_norm_running_statistics_of_later_calls(name):
    """A state that carries its step: the statistics of steps 7 to 13 move, in both paths."""
    cell = make_cell(name, {"batch_norm": True}, torch.float64)
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


@pytest.mark.parametrize("variant", [VARIANTS[k] for k in (0, 1, 3, 7, 8)], ids=variant_id)
@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "lengths"])
def test_gradcheck_native_training(variant, lengths, monkeypatch):
    cell = make_cell(*variant, torch.float64)
    paths = Paths(monkeypatch)
    x = torch.randn(4, BATCH, INPUTS, dtype=torch.float64, requires_grad=True)
    state = tensors(random_state(cell, torch.float64))
    state = [s.requires_grad_(True) for s in state if s.is_floating_point()]
    step = torch.zeros(BATCH, dtype=torch.long) if cell.batch_norm else None
    lens = None if lengths is None else lengths.clamp(max=4)

    def function(x, *states_and_params):  # gradcheck perturbs the parameters in place
        if variant[0] == "lstm":
            return lstm_unroll(cell, x, *states_and_params[:2], step, lens, True)
        return gru_unroll(cell, x, states_and_params[0], step, lens, True)

    assert torch.autograd.gradcheck(function, (x, *state, *cell.parameters()))
    assert paths.native > 0 and paths.python == 0


def test_python_loop_for_masks_projection_evaluation_and_without_native(monkeypatch):
    paths = Paths(monkeypatch)
    x = torch.randn(STEPS, BATCH, INPUTS, dtype=torch.float64)

    def train(cell, masks=None):
        h, c = random_state(cell, torch.float64)[:2]
        step = torch.zeros(BATCH, dtype=torch.long) if cell.batch_norm else None
        y, *_ = lstm_unroll(cell, x, h, c, step, None, False, masks)
        y.sum().backward()

    layer_norm = make_cell("lstm", {"layer_norm": True}, torch.float64)
    drop = torch.bernoulli(torch.full((BATCH, HIDDEN), 0.7, dtype=torch.float64)) / 0.7
    train(layer_norm, RegularizerMasks(drop=drop))
    train(make_cell("lstm", {"layer_norm": True, "proj_size": 3}, torch.float64))
    train(make_cell("lstm", {"batch_norm": True}, torch.float64).eval())  # population statistics
    gru = make_cell("gru", {"layer_norm": True}, torch.float64)
    y, _ = gru_unroll(
        gru,
        x,
        torch.zeros(BATCH, HIDDEN, dtype=torch.float64),
        None,
        None,
        False,
        RegularizerMasks(drop=drop),
    )
    y.sum().backward()
    assert (paths.native, paths.python) == (0, 4)
    monkeypatch.setenv("RNNLAB_NATIVE", "0")
    train(layer_norm)
    assert (paths.native, paths.python) == (0, 5)
    monkeypatch.delenv("RNNLAB_NATIVE")
    train(layer_norm)
    assert (paths.native, paths.python) == (1, 5)
