"""The speed-ups of the fused variant paths: oneDNN products (float32 on CPU) agree with torch's
products; the native step kernels build, or warn once and leave the Python form; the fused paths
in float32 (oneDNN and native kernels) match the reference loop with the speed-ups on and off.
(The float64 tests of test_variants.py run the native kernels too, when they are built.)"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch

import rnnlab
from rnnlab.fast import native, onednn

needs_onednn = pytest.mark.skipif(
    not onednn.uses_onednn(torch.zeros(1)), reason="torch built without oneDNN"
)


@needs_onednn
def test_step_weight_and_weight_gradient_products_agree_with_torch():
    w, x, other = torch.randn(12, 5), torch.randn(3, 5), torch.randn(3, 12)
    for steps in (1, onednn.REORDER_STEPS):  # torch's products, and oneDNN for many steps
        step = onednn.StepWeight(w, 3, steps)
        assert step.onednn == (steps >= onednn.REORDER_STEPS)
        torch.testing.assert_close(step(x), x @ w.T)
        torch.testing.assert_close(step(x, other), other + x @ w.T)
    a, b = torch.randn(onednn.MIN_ROWS, 12), torch.randn(onednn.MIN_ROWS, 5)
    torch.testing.assert_close(onednn.matmul_t(a, b), a.T @ b)


@needs_onednn
def test_linear_forward_and_backward_agree_with_torch():
    x = torch.randn(onednn.MIN_ROWS, 3, 5, requires_grad=True)
    w = torch.randn(7, 5, requires_grad=True)
    b = torch.randn(7, requires_grad=True)
    y = onednn.linear(x, w, b)
    assert type(y.grad_fn).__name__ == "ViewBackward0"  # of the oneDNN product, not addmm's
    assert type(y.grad_fn.next_functions[0][0]).__name__ == "_LinearBackward"
    dy = torch.randn(onednn.MIN_ROWS, 3, 7)
    grads = torch.autograd.grad(y, (x, w, b), dy)
    y_ref = torch.nn.functional.linear(x, w, b)
    torch.testing.assert_close(y, y_ref)
    for g, g_ref in zip(grads, torch.autograd.grad(y_ref, (x, w, b), dy)):
        torch.testing.assert_close(g, g_ref)


@needs_onednn
def test_linear_supports_double_backward():
    x = torch.randn(onednn.MIN_ROWS, 5, requires_grad=True)
    w = torch.randn(7, 5, requires_grad=True)
    results = []
    for y in (onednn.linear(x, w), torch.nn.functional.linear(x, w)):
        (dx,) = torch.autograd.grad(y.pow(2).sum(), x, create_graph=True)
        results.append(torch.autograd.grad(dx.pow(2).sum(), w))
    torch.testing.assert_close(results[0], results[1])


def test_float64_and_disabled_use_torch_products(monkeypatch):
    assert not onednn.uses_onednn(torch.zeros(1, dtype=torch.float64))
    monkeypatch.setenv("RNNLAB_ONEDNN", "0")
    assert not onednn.uses_onednn(torch.zeros(1))
    w, x = torch.randn(12, 5), torch.randn(3, 5)
    torch.testing.assert_close(onednn.StepWeight(w, 3, 9)(x), x @ w.T)


VARIANTS = [
    ("lstm", {"peephole": True, "proj_size": 3}),
    ("lstm", {"layer_norm": True}),
    ("lstm", {"batch_norm": True, "coupled": True}),
    ("lstm", {"weight_norm": True}),
    ("gru", {"layer_norm": True}),
    ("gru", {"batch_norm": True}),
    ("gru", {"weight_norm": True, "bias": False}),
]


def fused_and_reference(cell, x, lengths, reverse):
    """Outputs, final state and gradients of the fused path and of the reference loop."""
    results = []
    for fast in (True, False):
        copy_ = copy.deepcopy(cell)
        y, final = rnnlab.Recurrent(copy_, reverse=reverse, fast=fast)(x, None, lengths)
        parts = [final] if torch.is_tensor(final) else [p for p in final if p.is_floating_point()]
        loss = (y * torch.linspace(-1, 1, y.shape[-1])).sum() + sum(p.sum() for p in parts)
        results.append((y, parts, torch.autograd.grad(loss, [x, *copy_.parameters()])))
    return results


@pytest.mark.parametrize("speedups", ["on", "off"])
@pytest.mark.parametrize("lengths,reverse", [(None, False), ([9, 3, 1, 9], True)])
@pytest.mark.parametrize("name,kwargs", VARIANTS)
def test_float32_fused_path_matches_reference(
    name, kwargs, lengths, reverse, speedups, monkeypatch
):
    monkeypatch.setenv("RNNLAB_ONEDNN", "1" if speedups == "on" else "0")
    monkeypatch.setenv("RNNLAB_NATIVE", "1" if speedups == "on" else "0")
    torch.manual_seed(0)
    cell = rnnlab.cells.create(name, input_size=5, hidden_size=8, **kwargs)
    x = torch.randn(9, 4, 5, requires_grad=True)
    lens = None if lengths is None else torch.tensor(lengths)
    (y1, s1, g1), (y2, s2, g2) = fused_and_reference(cell, x, lens, reverse)
    tol = {"rtol": 1e-3, "atol": 1e-4}  # float32 rounding over 9 steps
    torch.testing.assert_close(y1, y2, **tol)
    for a, b in zip(s1, s2):
        torch.testing.assert_close(a, b, **tol)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, **tol)


def test_weight_norm_lstm_runs_torch_kernel_over_many_steps_and_matches_reference():
    from rnnlab.cells.lstm import KERNEL_STEPS

    torch.manual_seed(0)
    cell = rnnlab.cells.create("lstm", input_size=5, hidden_size=8, weight_norm=True).double()
    assert cell.torch_kernel() is None  # the fused path decides, by the number of steps
    for steps in (KERNEL_STEPS - 1, KERNEL_STEPS):
        x = torch.randn(steps, 4, 5, dtype=torch.float64, requires_grad=True)
        lengths = torch.tensor([steps, 3, 1, steps])
        results = []
        for fast in (True, False):
            y, (h, c) = rnnlab.Recurrent(cell, reverse=True, fast=fast)(x, None, lengths)
            if fast:
                on_kernel = "FusedLSTM" not in type(h.grad_fn).__name__
                assert on_kernel == (steps >= KERNEL_STEPS)
            loss = (y * torch.linspace(-1, 1, 8, dtype=y.dtype)).sum() + h.sum() + c.pow(2).sum()
            results.append((y, h, c, *torch.autograd.grad(loss, [x, *cell.parameters()])))
        for a, b in zip(*results):
            torch.testing.assert_close(a, b)


def test_native_kernels_are_used_where_they_can_run(monkeypatch):
    if native.kernels() is None:
        pytest.skip("no C++ compiler here: the fallback is tested below")
    assert native.native_for(torch.zeros(1), torch.zeros(1, dtype=torch.float64)) is not None
    assert native.native_for(torch.zeros(1, dtype=torch.bfloat16)) is None
    monkeypatch.setenv("RNNLAB_NATIVE", "0")
    assert native.native_for(torch.zeros(1)) is None


def test_a_failed_build_warns_once_and_the_python_form_runs(monkeypatch):
    import torch.utils.cpp_extension

    def no_compiler(*args, **kwargs):
        raise RuntimeError("Error building extension 'rnnlab_native': c++: not found")

    monkeypatch.setattr(torch.utils.cpp_extension, "load_inline", no_compiler)
    monkeypatch.setattr(native, "_state", {})
    with pytest.warns(RuntimeWarning, match="could not be built.*RNNLAB_NATIVE=0"):
        assert native.kernels() is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # remembered: no second attempt, no second warning
        assert native.kernels() is None
    cell = rnnlab.cells.create("lstm", input_size=3, hidden_size=4, peephole=True).double()
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    y_fast, _ = rnnlab.Recurrent(cell)(x)
    y_ref, _ = rnnlab.Recurrent(cell, fast=False)(x)
    torch.testing.assert_close(y_fast, y_ref)


def test_native_command_reports_ready_or_disabled(monkeypatch, capsys):
    from rnnlab.cli.main import main

    monkeypatch.setenv("RNNLAB_NATIVE", "0")
    assert main(["native"]) == 1
    assert "disabled by RNNLAB_NATIVE=0" in capsys.readouterr().err
    monkeypatch.setenv("RNNLAB_NATIVE", "1")
    if native.kernels() is not None:
        assert main(["native"]) == 0
        assert "native step kernels: ready" in capsys.readouterr().out
