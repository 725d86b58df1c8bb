"""rnnlab's own per-step product of the native loops (native_gemm.cpp): the product of packed
panels equals x @ W.T for every row-block tail, and the LSTM/GRU loops that use it (training and
inference) match the reference loop and the oneDNN path (RNNLAB_PANEL_GEMM=0)."""

from __future__ import annotations

import pytest
import torch

import rnnlab
from rnnlab.fast import native, native_sequence, native_training
from rnnlab.layers.unroll import unroll
from rnnlab.sequences import map_state

OPS = native.kernels()
pytestmark = pytest.mark.skipif(
    OPS is None or not OPS.panel_gemm_covers(torch.zeros(64, 4)),
    reason="the panel product needs the native kernels and an AVX-512 CPU",
)

STEPS, BATCH, INPUTS, HIDDEN = 12, 5, 7, 64  # packed from 8 steps; N = H, 3H, 4H: 64s


@pytest.mark.parametrize("rows", [1, 2, 3, 5, 8, 13, 24, 25, 31, 32, 33, 57])
@pytest.mark.parametrize("inner, outer", [(1, 64), (7, 192), (256, 1024), (1024, 256)])
@pytest.mark.parametrize("transposed", [False, True], ids=["W", "W from a transpose"])
def test_panel_product_equals_the_matrix_product(rows, inner, outer, transposed):
    torch.manual_seed(rows)
    x = torch.randn(rows, inner)
    w = torch.randn(inner, outer).t() if transposed else torch.randn(outer, inner)
    y = OPS.panel_product(x, OPS.pack_panels(w))
    expected = (x.double() @ w.double().T).float()
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5 * inner**0.5)


@pytest.mark.parametrize(
    "w, words",
    [(torch.zeros(96, 8), "multiple of 64"), (torch.zeros(64, 8, dtype=torch.float64), "float32")],
)
def test_pack_panels_refuses_what_it_cannot_pack(w, words):
    assert not OPS.panel_gemm_covers(w)
    with pytest.raises(RuntimeError, match=words):
        OPS.pack_panels(w)


class PanelSpy:
    """Counts the weights packed into panels (and those prepared otherwise)."""

    def __init__(self, monkeypatch) -> None:
        self.panels = self.other = 0
        for module in (native_sequence, native_training):
            monkeypatch.setattr(module, "step_weight", self.wrap(module.step_weight))

    def wrap(self, function):
        def counted(*args, **kwargs):
            out = function(*args, **kwargs)
            if out is not None and out.dim() == 3:
                self.panels += 1
            else:
                self.other += 1
            return out

        return counted


VARIANTS = [
    ("lstm", {"layer_norm": True, "peephole": True}),
    ("lstm", {"batch_norm": True, "coupled": True}),
    ("lstm", {"peephole": True}),
    ("gru", {"layer_norm": True}),
    ("gru", {"batch_norm": True}),
]


def make_cell(name: str, kwargs: dict):
    torch.manual_seed(0)
    cell = rnnlab.cells.create(name, input_size=INPUTS, hidden_size=HIDDEN, **kwargs)
    with torch.no_grad():
        for p in cell.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return cell.train()


def floats(state) -> list[torch.Tensor]:
    return [
        s for s in ((state,) if isinstance(state, torch.Tensor) else state) if s.is_floating_point()
    ]


def results(cell, x, state, fused: bool):
    """Outputs and the gradients of a loss of them for the input, initial state and parameters."""
    x = x.clone().requires_grad_(True)
    state = map_state(lambda s: s.clone().requires_grad_(s.is_floating_point()), state)
    y, _ = cell.fused_unroll(x, state) if fused else unroll(cell, x, state)
    weights = torch.linspace(-1, 1, y.numel()).view_as(y)
    grads = torch.autograd.grad((y * weights).sum(), [x, *floats(state), *cell.parameters()])
    return [y.detach(), *grads]


@pytest.mark.parametrize("name, kwargs", VARIANTS, ids=str)
def test_loops_with_panel_products_match_the_reference_and_onednn(monkeypatch, name, kwargs):
    cell = make_cell(name, kwargs)
    x = torch.randn(STEPS, BATCH, INPUTS)
    state = map_state(
        lambda s: torch.randn_like(s) if s.is_floating_point() else s, cell.init_state(BATCH)
    )
    snapshot = {k: v.clone() for k, v in cell.state_dict().items()}
    spy = PanelSpy(monkeypatch)
    with_panels = results(cell, x, state, fused=True)
    assert spy.panels == 2 and spy.other == 0  # forward and backward
    cell.load_state_dict(snapshot)
    monkeypatch.setenv("RNNLAB_PANEL_GEMM", "0")
    with_onednn = results(cell, x, state, fused=True)
    assert spy.panels == 2 and spy.other == 2
    cell.load_state_dict(snapshot)
    reference = results(cell, x, state, fused=False)
    for a, b, c in zip(with_panels, with_onednn, reference):
        torch.testing.assert_close(a, c, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    monkeypatch.delenv("RNNLAB_PANEL_GEMM")
    cell.load_state_dict(snapshot)
    cell.eval()
    with torch.no_grad():
        y = cell.fused_unroll(x, state)[0]
        y_ref = unroll(cell, x, state)[0]
    assert spy.panels == 3
    torch.testing.assert_close(y, y_ref, rtol=1e-4, atol=1e-5)
