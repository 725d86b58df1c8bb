"""The whole-sequence native inference loops (rnnlab.fast.native_sequence) against the reference
loop: outputs and final state of every LSTM/GRU variant they cover, with and without lengths,
forward and reverse, in float64 and float32; that the native loop is the path taken without
autograd, and that RNNLAB_NATIVE=0, masks and batch norm in training leave it (gradients: the
native training loops, tests/test_native_training.py)."""

from __future__ import annotations

import pytest
import torch

import rnnlab
from rnnlab.fast import fused_gru, fused_lstm, native
from rnnlab.layers.unroll import unroll
from rnnlab.sequences import map_state

pytestmark = pytest.mark.skipif(
    native.kernels() is None, reason="the native kernels cannot be built here"
)

VARIANTS = [
    ("lstm", {"peephole": True}),
    ("lstm", {"coupled": True}),
    ("lstm", {"layer_norm": True}),
    ("lstm", {"batch_norm": True}),
    ("lstm", {"layer_norm": True, "peephole": True}),
    ("lstm", {"layer_norm": True, "coupled": True, "bias": False}),
    ("lstm", {"peephole": True, "coupled": True, "proj_size": 3}),
    ("lstm", {"batch_norm": True, "peephole": True, "proj_size": 4}),
    ("lstm", {"weight_norm": True}),  # below 8 steps: the fused path
    ("gru", {"layer_norm": True}),
    ("gru", {"layer_norm": True, "bias": False}),
    ("gru", {"batch_norm": True}),
    ("gru", {"weight_norm": True}),
]
STEPS, BATCH, INPUTS, HIDDEN = 7, 4, 5, 6
LENGTHS = torch.tensor([7, 3, 1, 5])


def make_cell(name: str, kwargs: dict, dtype: torch.dtype):
    cell = rnnlab.cells.create(name, input_size=INPUTS, hidden_size=HIDDEN, **kwargs).to(dtype)
    if kwargs.get("batch_norm"):  # population statistics of 4 steps (later steps reuse the last)
        with torch.no_grad():
            rnnlab.Recurrent(cell)(torch.randn(4, BATCH, INPUTS, dtype=dtype))
        cell.eval()
    return cell


def random_state(cell, dtype: torch.dtype):
    state = cell.init_state(BATCH, dtype=dtype)
    return map_state(lambda s: torch.randn_like(s) if s.is_floating_point() else s, state)


def tensors(state) -> tuple:
    return (state,) if isinstance(state, torch.Tensor) else tuple(state)


class Spy:
    """Counts the calls of the Python forward loops of the fused paths."""

    def __init__(self, monkeypatch) -> None:
        self.calls = 0
        for module, name in ((fused_lstm, "lstm_forward"), (fused_gru, "gru_forward")):
            monkeypatch.setattr(module, name, self.wrap(getattr(module, name)))

    def wrap(self, function):
        def counted(*args, **kwargs):
            self.calls += 1
            return function(*args, **kwargs)

        return counted


def check_against_reference(cell, dtype, lengths, reverse, tolerance):
    x = torch.randn(STEPS, BATCH, INPUTS, dtype=dtype)
    state = random_state(cell, dtype)
    initial = [s.clone() for s in tensors(state)]
    with torch.no_grad():
        y, final = cell.fused_unroll(x, state, lengths, reverse)
        y_ref, final_ref = unroll(cell, x, state, lengths, reverse)
    torch.testing.assert_close(y, y_ref, atol=tolerance, rtol=tolerance)
    for s, s_ref in zip(tensors(final), tensors(final_ref), strict=True):
        torch.testing.assert_close(s, s_ref, atol=tolerance, rtol=tolerance)
    for s, s0 in zip(tensors(state), initial, strict=True):
        assert torch.equal(s, s0)  # the initial state is not modified
    if lengths is not None:
        padded = torch.arange(STEPS).unsqueeze(1) >= lengths
        assert bool((y[padded] == 0).all())


@pytest.mark.parametrize("name,kwargs", VARIANTS, ids=lambda v: str(v))
def test_native_loop_matches_reference_float64(monkeypatch, name, kwargs):
    cell = make_cell(name, kwargs, torch.float64)
    spy = Spy(monkeypatch)
    for lengths in (None, LENGTHS):
        for reverse in (False, True):
            check_against_reference(cell, torch.float64, lengths, reverse, 1e-12)
    assert spy.calls == 0  # every call ran in the native loop


@pytest.mark.parametrize("name,kwargs", VARIANTS, ids=lambda v: str(v))
def test_native_loop_matches_reference_float32(monkeypatch, name, kwargs):
    cell = make_cell(name, kwargs, torch.float32)
    spy = Spy(monkeypatch)
    check_against_reference(cell, torch.float32, LENGTHS, False, 2e-6)
    check_against_reference(cell, torch.float32, None, True, 2e-6)
    assert spy.calls == 0


def test_native_loop_over_many_steps_uses_onednn_products(monkeypatch):
    """From 8 steps on the recurrent matrix is packed for oneDNN (float32); a long sequence and
    generation at batch size 1 both match the reference loop."""
    spy = Spy(monkeypatch)
    cell = make_cell("lstm", {"layer_norm": True, "peephole": True}, torch.float32)
    for steps, batch in ((40, 3), (1, 1)):
        x = torch.randn(steps, batch, INPUTS)
        state = cell.init_state(batch)
        with torch.no_grad():
            y, (h, c) = cell.fused_unroll(x, state)
            y_ref, (h_ref, c_ref) = unroll(cell, x, state)
        torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(c, c_ref, atol=1e-5, rtol=1e-5)
    assert spy.calls == 0


def test_recurrent_layer_takes_the_native_loop_in_inference(monkeypatch):
    spy = Spy(monkeypatch)
    cell = make_cell("gru", {"layer_norm": True}, torch.float64)
    layer = rnnlab.Recurrent(cell, batch_first=True, reverse=True)
    x = torch.randn(BATCH, STEPS, INPUTS, dtype=torch.float64)
    with torch.no_grad():
        y, h = layer(x, lengths=LENGTHS)
    assert spy.calls == 0
    y_ref, h_ref = rnnlab.Recurrent(cell, batch_first=True, reverse=True, fast=False)(
        x, lengths=LENGTHS
    )
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(h, h_ref)


def test_python_loop_without_native_kernels_with_gradients_or_batch_statistics(monkeypatch):
    bn = make_cell("gru", {"batch_norm": True}, torch.float64).train()
    spy = Spy(monkeypatch)
    x = torch.randn(STEPS, BATCH, INPUTS, dtype=torch.float64)
    cell = make_cell("lstm", {"layer_norm": True}, torch.float64)
    state = cell.init_state(BATCH, dtype=torch.float64)
    with torch.no_grad():
        y_native, _ = cell.fused_unroll(x, state)
    assert spy.calls == 0
    monkeypatch.setenv("RNNLAB_NATIVE", "0")
    with torch.no_grad():
        y_python, _ = cell.fused_unroll(x, state)
    assert spy.calls == 1
    torch.testing.assert_close(y_native, y_python)
    monkeypatch.delenv("RNNLAB_NATIVE")
    cell.fused_unroll(x, state)[0].sum().backward()  # training: the native training loops
    assert spy.calls == 1  # (tests/test_native_training.py)
    with torch.no_grad():  # batch statistics move the running ones at every step
        bn.fused_unroll(x, bn.init_state(BATCH, dtype=torch.float64))
    assert spy.calls == 2
