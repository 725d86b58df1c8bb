"""The pool of reused buffers of the native whole-sequence kernels (native_buffers.cpp): a
training step reuses the memory of the last one, a reused buffer never leaks its old contents
into a result, the limit bounds what is kept, and RNNLAB_BUFFER_POOL_MB is checked."""

from __future__ import annotations

import pytest
import torch

import rnnlab
from rnnlab.errors import ConfigError
from rnnlab.fast import native
from rnnlab.layers.unroll import unroll

pytestmark = pytest.mark.skipif(
    native.kernels() is None, reason="the native kernels cannot be built here"
)

STEPS, BATCH, INPUTS, HIDDEN = 9, 4, 5, 6
LENGTHS = torch.tensor([9, 2, 5, 1])


@pytest.fixture
def ops():
    """The kernels with an empty pool of the default limit; restored afterwards."""
    ops = native.kernels()
    limit = ops.set_buffer_pool_limit(native.DEFAULT_POOL_MB * 2**20)
    native.release_buffers()
    yield ops
    ops.set_buffer_pool_limit(limit)


def layer(name: str, **kwargs) -> rnnlab.Recurrent:
    torch.manual_seed(0)
    cell = rnnlab.cells.create(name, input_size=INPUTS, hidden_size=HIDDEN, **kwargs)
    return rnnlab.Recurrent(cell)


def training_step(rnn: rnnlab.Recurrent, x: torch.Tensor, lengths=None) -> list[torch.Tensor]:
    y, _ = rnn(x, lengths=lengths)
    return [y.detach(), *torch.autograd.grad((y * y).sum(), [x, *rnn.parameters()])]


def test_a_training_step_reuses_the_buffers_of_the_last(ops):
    rnn = layer("lstm", layer_norm=True)
    x = torch.randn(STEPS, BATCH, INPUTS, requires_grad=True)
    first = training_step(rnn, x)
    kept = ops.buffer_pool_bytes()
    assert kept > STEPS * BATCH * 4 * HIDDEN * 4  # at least the saved activations came back
    second = training_step(rnn, x)
    assert ops.buffer_pool_bytes() == kept  # the second step took them and gave them back
    for a, b in zip(first, second):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def fused_node(y: torch.Tensor):
    """The FusedLSTM / FusedGRU node of ``y``'s graph (its ``saved`` holds the kernels' buffers)."""
    pending = [y.grad_fn]
    while pending:
        node = pending.pop()
        if node is not None and type(node).__name__ in ("FusedLSTMBackward", "FusedGRUBackward"):
            return node
        pending += [] if node is None else [n for n, _ in node.next_functions]
    raise AssertionError("no fused node in the graph")


def poison_pool(rnn: rnnlab.Recurrent, x: torch.Tensor) -> None:
    """Leave the pool holding NaN-filled buffers of the sizes the calls take."""
    y, _ = rnn(x, lengths=LENGTHS)
    for saved in fused_node(y).saved.values():
        if isinstance(saved, torch.Tensor) and saved.is_floating_point():
            saved.fill_(float("nan"))


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("lstm", {"layer_norm": True, "peephole": True}),
        ("lstm", {"batch_norm": True}),
        ("gru", {"layer_norm": True}),
        ("gru", {"batch_norm": True}),
    ],
)
def test_reused_buffers_never_leak_old_contents(ops, name, kwargs):
    """With the pool full of NaN-filled buffers, training and inference with lengths give the
    reference loop's results."""
    rnn = layer(name, **kwargs)
    reference = layer(name, **kwargs)
    x = torch.randn(STEPS, BATCH, INPUTS, requires_grad=True)
    poison_pool(rnn, x)
    assert ops.buffer_pool_bytes() > 0
    reference.load_state_dict(rnn.state_dict())
    got = training_step(rnn, x, LENGTHS)
    y = reference_loop(reference, x)
    expected = [y.detach(), *torch.autograd.grad((y * y).sum(), [x, *reference.parameters()])]
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    rnn.eval()
    reference.eval()
    with torch.no_grad():
        rnn(x, lengths=LENGTHS)[0].fill_(float("nan"))  # back into the pool, poisoned
        torch.testing.assert_close(
            rnn(x, lengths=LENGTHS)[0], reference_loop(reference, x), rtol=1e-4, atol=1e-5
        )


def reference_loop(rnn: rnnlab.Recurrent, x: torch.Tensor) -> torch.Tensor:
    state = rnn.cell.init_state(BATCH, dtype=x.dtype)
    return unroll(rnn.cell, x, state, lengths=LENGTHS)[0]


def test_the_limit_bounds_the_idle_buffers_and_zero_frees_them(ops):
    rnn = layer("gru", layer_norm=True)
    x = torch.randn(STEPS, BATCH, INPUTS, requires_grad=True)
    training_step(rnn, x)
    kept = ops.buffer_pool_bytes()
    assert kept > 0
    ops.set_buffer_pool_limit(kept // 2)
    assert 0 < ops.buffer_pool_bytes() <= kept // 2  # the oldest went
    still_kept = ops.buffer_pool_bytes()
    assert native.release_buffers() == still_kept
    assert ops.buffer_pool_bytes() == 0
    ops.set_buffer_pool_limit(0)
    training_step(rnn, x)
    assert ops.buffer_pool_bytes() == 0  # no pool: every buffer went back to the system


def test_the_pool_size_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(native.POOL_ENV, "2.5")
    assert native._pool_limit_bytes() == int(2.5 * 2**20)
    monkeypatch.delenv(native.POOL_ENV)
    assert native._pool_limit_bytes() == native.DEFAULT_POOL_MB * 2**20
    monkeypatch.setenv(native.POOL_ENV, "lots")
    with pytest.raises(ConfigError, match=f"{native.POOL_ENV}='lots' is not a number"):
        native._pool_limit_bytes()
