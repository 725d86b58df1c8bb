"""The log-space parallel scan: equal to the sequential loop (values and gradients) up to
T = 4096, stable where a naive cumulative product underflows."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import rnnlab
from rnnlab.fast.scan import linear_scan, sequential_scan


@pytest.mark.parametrize("steps", [1, 7, 16, 100, 1024, 4096])
def test_scan_equals_sequential_float64(steps):
    log_a = F.logsigmoid(torch.randn(steps, 2, 8, dtype=torch.float64) * 3)
    b = torch.randn(steps, 2, 8, dtype=torch.float64)
    h0 = torch.randn(2, 8, dtype=torch.float64)
    expected = sequential_scan(log_a.exp(), b, h0)
    torch.testing.assert_close(linear_scan(log_a, b, h0), expected, atol=1e-5, rtol=0)
    log_b = b.abs().log()
    expected = sequential_scan(log_a.exp(), log_b.exp(), h0)
    torch.testing.assert_close(
        linear_scan(log_a, None, h0, log_b=log_b), expected, atol=1e-5, rtol=0
    )


def test_scan_float32_long_sequence_close_to_float64_truth():
    steps = 4096
    log_a = F.logsigmoid(torch.randn(steps, 4, 32, dtype=torch.float64) + 2)
    b = torch.randn(steps, 4, 32, dtype=torch.float64)
    truth = sequential_scan(log_a.exp(), b)
    scanned = linear_scan(log_a.float(), b.float()).double()
    assert (scanned - truth).abs().max() < 1e-5 * truth.abs().max() * 10


def test_scan_survives_products_that_underflow():
    """A cumulative product of 4096 gates of 0.5 is 2^-4096 = 0 in float64; the chunked log-space
    scan still gives the right answer."""
    steps = 4096
    log_a = torch.full((steps, 1), -0.6931471805599453, dtype=torch.float64)
    b = torch.ones(steps, 1, dtype=torch.float64)
    assert log_a.exp().cumprod(0)[-1] == 0
    h = linear_scan(log_a, b, chunk=steps)
    torch.testing.assert_close(h[-1], torch.tensor([2.0], dtype=torch.float64))
    assert torch.isfinite(h).all()


def test_scan_gradients_match_sequential():
    log_a = F.logsigmoid(torch.randn(300, 3, dtype=torch.float64)).requires_grad_()
    b = torch.randn(300, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(3, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(300, 3, dtype=torch.float64)
    g1 = torch.autograd.grad((linear_scan(log_a, b, h0) * weights).sum(), [log_a, b, h0])
    g2 = torch.autograd.grad((sequential_scan(log_a.exp(), b, h0) * weights).sum(), [log_a, b, h0])
    for x, y in zip(g1, g2):
        torch.testing.assert_close(x, y)


@pytest.mark.parametrize("chunk", [1, 3, 16])
def test_scan_gradcheck(chunk):
    log_a = F.logsigmoid(torch.randn(7, 2, dtype=torch.float64)).requires_grad_()
    b = torch.randn(7, 2, dtype=torch.float64, requires_grad=True)
    log_b = torch.randn(7, 2, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda *t: linear_scan(t[0], t[1], t[2], chunk=chunk), (log_a, b, h0)
    )
    assert torch.autograd.gradcheck(
        lambda *t: linear_scan(t[0], None, t[2], log_b=t[1], chunk=chunk),
        (log_a, log_b, h0),
        fast_mode=True,
    )


@pytest.mark.parametrize("name", ["mingru", "minlstm"])
def test_min_rnn_parallel_equals_stepwise_at_4096_steps(name):
    cell = rnnlab.cells.create(name, input_size=4, hidden_size=16)
    x = torch.randn(4096, 2, 4)
    with torch.no_grad():
        parallel, final = rnnlab.Recurrent(cell)(x)
        sequential, final_loop = rnnlab.Recurrent(cell, fast=False)(x)
    torch.testing.assert_close(parallel, sequential, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(final, final_loop, atol=1e-5, rtol=1e-5)


def test_scan_needs_exactly_one_input_form():
    with pytest.raises(ValueError, match="exactly one"):
        linear_scan(torch.zeros(3, 1))
