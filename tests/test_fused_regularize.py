"""Recurrent dropout, DropConnect and zoneout on the fused LSTM/GRU paths: with the same seed the
fused path
gives the reference loop's outputs, final states and gradients (float64), in training and at
evaluation, with and without lengths, forward and reverse; the hand-written backward with fixed
masks passes gradcheck; the fused path is the one taken; other compositions fall back."""

from __future__ import annotations

import copy
import dataclasses
import importlib

import pytest
import torch

import rnnlab
from rnnlab.fast.fused_gru import gru_unroll
from rnnlab.fast.fused_lstm import lstm_unroll
from rnnlab.regularize import RecurrentDropout, WeightDrop, Zoneout, wrap_cell
from rnnlab.regularize.dropout import dropout_mask
from rnnlab.regularize.fused import draw_masks
from rnnlab.regularize.wrap import innermost

CASES = [
    ("lstm", {}, {"recurrent_dropout": 0.4}),
    ("lstm", {}, {"zoneout_cell": 0.5, "zoneout_hidden": 0.3}),
    ("lstm", {}, {"recurrent_dropout": 0.4, "zoneout_cell": 0.5, "zoneout_hidden": 0.3}),
    (
        "lstm",
        {"peephole": True, "proj_size": 3},
        {"recurrent_dropout": 0.4, "zoneout_cell": 0.5, "zoneout_hidden": 0.3},
    ),
    (
        "lstm",
        {"layer_norm": True, "coupled": True},
        {"recurrent_dropout": 0.4, "zoneout_hidden": 0.3},
    ),
    ("gru", {}, {"recurrent_dropout": 0.4}),
    ("gru", {}, {"zoneout_hidden": 0.3}),
    ("gru", {}, {"recurrent_dropout": 0.4, "zoneout_hidden": 0.3}),
    ("gru", {"layer_norm": True}, {"recurrent_dropout": 0.4, "zoneout_hidden": 0.3}),
    ("lstm", {}, {"weight_drop": 0.4}),
    (
        "lstm",
        {"peephole": True},
        {"weight_drop": 0.4, "recurrent_dropout": 0.4, "zoneout_cell": 0.5, "zoneout_hidden": 0.3},
    ),
    ("gru", {}, {"weight_drop": 0.4, "recurrent_dropout": 0.4, "zoneout_hidden": 0.3}),
    (
        "lstm",
        {"batch_norm": True},
        {"weight_drop": 0.4, "recurrent_dropout": 0.4, "zoneout_cell": 0.5, "zoneout_hidden": 0.3},
    ),
    ("gru", {"batch_norm": True}, {"recurrent_dropout": 0.4, "zoneout_hidden": 0.3}),
]


def case_id(case):
    name, kwargs, regs = case
    return "-".join([name, *kwargs, *regs])


def float_parts(state):
    parts = [state] if torch.is_tensor(state) else list(state)
    return [p for p in parts if p.is_floating_point()]


def make(name, kwargs, regs, training, input_size=5, hidden_size=6):
    cell = rnnlab.cells.create(name, input_size=input_size, hidden_size=hidden_size, **kwargs)
    return wrap_cell(cell, **regs).double().train(training)


def random_state(cell, batch):
    state = cell.init_state(batch, dtype=torch.float64)
    if torch.is_tensor(state):
        return state.normal_().requires_grad_()
    return type(state)(
        *(p.normal_().requires_grad_() if p.is_floating_point() else p for p in state)
    )


def run(cell, x, state, lengths, reverse, fast, seed=7):
    """Outputs, final state, gradients of every input and parameter, and the path's grad_fn."""
    cell = copy.deepcopy(cell)
    torch.manual_seed(seed)
    y, final = rnnlab.Recurrent(cell, reverse=reverse, fast=fast)(x, state, lengths)
    weights = torch.linspace(-1, 1, y.shape[-1], dtype=y.dtype)
    loss = (y * weights).sum() + sum(p.pow(3).sum() for p in float_parts(final))
    grads = torch.autograd.grad(loss, [x, *float_parts(state), *cell.parameters()])
    return y, float_parts(final), grads, type(y.grad_fn).__name__


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("lengths", [None, [6, 3, 1, 6, 5]], ids=["full", "lengths"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_fused_path_matches_reference_loop_with_the_same_seed(case, lengths, reverse, training):
    name, kwargs, regs = case
    cell = make(name, kwargs, regs, training)
    x = torch.randn(6, 5, 5, dtype=torch.float64, requires_grad=True)
    state = random_state(cell, 5)
    lens = None if lengths is None else torch.tensor(lengths)
    y1, s1, g1, path = run(cell, x, state, lens, reverse, fast=True)
    y2, s2, g2, _ = run(cell, x, state, lens, reverse, fast=False)
    identity = not training and not any(k.startswith("zoneout") for k in regs)
    if identity and not kwargs:  # torch's kernel, as without the regulariser
        assert cell.torch_kernel() is not None
    else:
        assert path == ("FusedLSTMBackward" if name == "lstm" else "FusedGRUBackward")
    torch.testing.assert_close(y1, y2, rtol=1e-10, atol=1e-12)
    for a, b in zip(s1, s2, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    if training:  # the regulariser acts: not the plain cell's result
        y_plain, _ = rnnlab.Recurrent(innermost(cell), reverse=reverse)(x, state, lens)
        assert not torch.allclose(y1, y_plain)


@pytest.mark.parametrize("reverse,lengths", [(False, None), (True, [4, 2, 3])])
def test_gradcheck_fused_lstm_with_fixed_masks(reverse, lengths):
    cell = rnnlab.cells.create("lstm", input_size=3, hidden_size=3, peephole=True).double()
    x = torch.randn(4, 3, 3, dtype=torch.float64, requires_grad=True)
    h = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    c = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    lens = None if lengths is None else torch.tensor(lengths)
    for training in (True, False):
        masks = draw_masks(
            (h, c),
            4,
            reverse,
            drop=0.5 if training else 0.0,
            zone_h=0.4,
            zone_c=0.6,
            zoneout_training=training,
        )
        assert training == (masks.drop is not None)
        dropconnect = dropout_mask(cell.weight_hh, 0.5) if training else None

        def fused(x, h, c, *params, masks=masks, dropconnect=dropconnect):
            if dropconnect is not None:  # the masked W_hh is an input: its gradient flows back
                masks = dataclasses.replace(masks, weight_hh=cell.weight_hh * dropconnect)
            y, h_n, c_n = lstm_unroll(cell, x, h, c, None, lens, reverse, masks)
            assert type(y.grad_fn).__name__ == "FusedLSTMBackward"
            return y, h_n, c_n

        assert torch.autograd.gradcheck(fused, (x, h, c, *cell.parameters()))


def test_gradcheck_fused_gru_with_fixed_masks():
    cell = rnnlab.cells.create("gru", input_size=3, hidden_size=3).double()
    x = torch.randn(4, 3, 3, dtype=torch.float64, requires_grad=True)
    h = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    lens = torch.tensor([4, 2, 3])
    masks = draw_masks(h, 4, True, drop=0.5, zone_h=0.4)
    dropconnect = dropout_mask(cell.weight_hh, 0.5)

    def fused(x, h, *params):
        masked = dataclasses.replace(masks, weight_hh=cell.weight_hh * dropconnect)
        y, h_n = gru_unroll(cell, x, h, None, lens, True, masked)
        assert type(y.grad_fn).__name__ == "FusedGRUBackward"
        return y, h_n

    assert torch.autograd.gradcheck(fused, (x, h, *cell.parameters()))


def test_masks_are_drawn_like_the_wrappers():
    h = torch.zeros(4, 50)
    torch.manual_seed(3)
    masks = draw_masks((h, h), 5, False, drop=0.5, zone_h=0.3, zone_c=0.6)
    assert set(masks.drop.unique().tolist()) == {0.0, 2.0}
    assert masks.zone_h.shape == (5, 4, 50) and set(masks.zone_c.unique().tolist()) == {0.0, 1.0}
    assert not torch.equal(masks.zone_h[0], masks.zone_h[1])  # fresh at every step
    evaluation = draw_masks((h, h), 5, False, zone_h=0.3, zone_c=0.6, zoneout_training=False)
    assert evaluation.drop is None and torch.all(evaluation.zone_c == 0.6)


@pytest.fixture
def no_reference_loop(monkeypatch):
    """Make the reference loop and the wrappers' per-step code raise."""

    def refuse(*args, **kwargs):
        raise AssertionError("the reference loop ran")

    monkeypatch.setattr(importlib.import_module("rnnlab.layers.unroll"), "unroll", refuse)
    for cls in (RecurrentDropout, Zoneout, WeightDrop):
        monkeypatch.setattr(cls, "step", refuse)


@pytest.mark.parametrize(
    "cls,kw",
    [
        (rnnlab.LSTM, {"recurrent_dropout": 0.3}),
        (rnnlab.LSTM, {"variational_dropout": 0.3}),
        (rnnlab.LSTM, {"zoneout_cell": 0.3, "zoneout_hidden": 0.1}),
        (rnnlab.LSTM, {"recurrent_dropout": 0.3, "zoneout_cell": 0.3, "layer_norm": True}),
        (rnnlab.LSTM, {"weight_drop": 0.3, "zoneout_cell": 0.3}),
        (rnnlab.GRU, {"recurrent_dropout": 0.3, "zoneout_hidden": 0.1}),
        (rnnlab.GRU, {"weight_drop": 0.3}),
    ],
    ids=lambda v: "+".join(v) if isinstance(v, dict) else v.__name__,
)
def test_drop_in_layers_take_the_fused_path(no_reference_loop, cls, kw):
    layer = cls(4, 6, num_layers=2, bidirectional=True, **kw)
    x = torch.randn(5, 3, 4)
    y, _ = layer(x, lengths=torch.tensor([5, 2, 4]))
    y.sum().backward()
    assert all(p.grad is not None for p in layer.parameters())
    layer.eval()
    zoneout = any(k.startswith("zoneout") for k in kw)
    plain = not zoneout and "layer_norm" not in kw
    assert (layer._fused_kernel() is not None) == plain  # torch's kernel where it is the identity
    layer(x)


@pytest.mark.parametrize(
    "make_cell",
    [
        lambda c: WeightDrop(c, 0.3, weights=("weight_ih",)),  # another matrix
        lambda c: RecurrentDropout(Zoneout(c, 0.3), 0.3),  # not wrap_cell's order
        lambda c: Zoneout(WeightDrop(RecurrentDropout(c, 0.3), 0.3), 0.3),
        lambda c: Zoneout(RecurrentDropout(WeightDrop(c, 0.3, weights=("weight_ih",)), 0.3), 0.3),
    ],
)
def test_other_compositions_fall_back_to_the_reference_loop(make_cell):
    cell = make_cell(rnnlab.cells.create("lstm", input_size=3, hidden_size=4))
    x = torch.randn(5, 2, 3)
    assert cell.fused_unroll(x, cell.init_state(2), None, False) is None
    y, _ = rnnlab.Recurrent(cell)(x)
    assert type(y.grad_fn).__name__ == "StackBackward0"  # the reference loop's output
    elman = RecurrentDropout(rnnlab.cells.create("rnn", input_size=3, hidden_size=4), 0.3)
    assert elman.fused_unroll(x, elman.init_state(2), None, False) is None
