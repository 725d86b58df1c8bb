"""Variable-length batches on the CPU run torch's padded kernel in segments (one call per
distinct length) instead of its packed per-step loop: same outputs, states and gradients."""

from __future__ import annotations

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnlab.fast.torch_kernels as torch_kernels
from rnnlab.fast.torch_kernels import run_kernel, run_kernel_packed

GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1}


def _weights(mode: str, layers: int, inputs: int, hidden: int) -> list[torch.Tensor]:
    weights = []
    for layer in range(layers):
        size = inputs if layer == 0 else hidden
        g = GATES[mode] * hidden
        weights += [torch.randn(g, size), torch.randn(g, hidden), torch.randn(g), torch.randn(g)]
    return [(w * 0.3).double().requires_grad_() for w in weights]


def _state(mode: str, layers: int, batch: int, hidden: int):
    h = torch.randn(layers, batch, hidden, dtype=torch.float64, requires_grad=True)
    if mode != "LSTM":
        return h
    return h, torch.randn(layers, batch, hidden, dtype=torch.float64, requires_grad=True)


def _leaves(hx) -> list[torch.Tensor]:
    return [hx] if isinstance(hx, torch.Tensor) else list(hx)


@pytest.mark.parametrize("mode", list(GATES))
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize(
    "lengths",
    [[9, 4, 9, 1, 4, 6], [3, 3, 3, 3, 3, 3], [9, 9, 9, 9, 9, 9]],
    ids=["mixed", "short", "full"],
)
def test_segments_equal_the_packed_kernel(mode, layers, lengths):
    steps, batch, inputs, hidden = 9, len(lengths), 5, 7
    weights = _weights(mode, layers, inputs, hidden)
    x = torch.randn(steps, batch, inputs, dtype=torch.float64, requires_grad=True)
    hx = _state(mode, layers, batch, hidden)
    lengths = torch.tensor(lengths)
    y, hn = run_kernel(mode, weights, x, hx, lengths, num_layers=layers)
    packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
    out, expected_hn = run_kernel_packed(mode, weights, packed, hx, num_layers=layers)
    expected_y, _ = pad_packed_sequence(out, total_length=steps)
    torch.testing.assert_close(y, expected_y, rtol=1e-12, atol=1e-12)
    for a, b in zip(_leaves(hn), _leaves(expected_hn)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    # the same gradients for every input, state and weight
    inputs_ = [x, *_leaves(hx), *weights]
    probe_y, probe_h = torch.randn_like(y), [torch.randn_like(h) for h in _leaves(hn)]

    def objective(y_, hn_):
        return (y_ * probe_y).sum() + sum((h * p).sum() for h, p in zip(_leaves(hn_), probe_h))

    grads = torch.autograd.grad(objective(y, hn), inputs_)
    expected = torch.autograd.grad(objective(expected_y, expected_hn), inputs_)
    for a, b in zip(grads, expected):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_cpu_lengths_never_take_the_packed_loop(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the packed per-step kernel was called")

    monkeypatch.setattr(torch_kernels, "pack_padded_sequence", refuse)
    weights = [w.float() for w in _weights("LSTM", 1, 5, 7)]
    hx = tuple(h.float() for h in _state("LSTM", 1, 3, 7))
    y, _ = run_kernel("LSTM", weights, torch.randn(6, 3, 5), hx, torch.tensor([6, 2, 4]))
    assert y.shape == (6, 3, 7) and bool((y[2:, 1] == 0).all()) and bool((y[4:, 2] == 0).all())


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_drop_in_layer_on_a_packed_sequence_matches_torch(mode, monkeypatch):
    import rnnlab

    torch.manual_seed(0)
    reference = getattr(torch.nn, mode)(5, 7, num_layers=2).double()
    ours = getattr(rnnlab, mode)(5, 7, num_layers=2).double()
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(9, 4, 5, dtype=torch.float64)
    packed = pack_padded_sequence(x, torch.tensor([4, 9, 1, 6]), enforce_sorted=False)
    expected, expected_hn = reference(packed)
    monkeypatch.setitem(torch_kernels._KERNELS, mode, _padded_only(torch_kernels._KERNELS[mode]))
    out, hn = ours(packed)
    assert torch.equal(out.batch_sizes, expected.batch_sizes)
    assert torch.equal(out.sorted_indices, expected.sorted_indices)
    torch.testing.assert_close(out.data, expected.data, rtol=1e-12, atol=1e-12)
    for a, b in zip(_leaves(hn), _leaves(expected_hn)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    (out.data.sum() + sum(h.sum() for h in _leaves(hn))).backward()
    (expected.data.sum() + sum(h.sum() for h in _leaves(expected_hn))).backward()
    for (name, p), q in zip(ours.named_parameters(), reference.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-10, atol=1e-12, msg=name)


def _padded_only(kernel):
    """``kernel`` refusing the packed signature (its second argument is then batch_sizes)."""

    def call(x, second, *rest):
        assert not (isinstance(second, torch.Tensor) and second.dim() == 1), "packed kernel"
        return kernel(x, second, *rest)

    return call
