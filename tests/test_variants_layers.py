"""The variants through the drop-in layers rnnlab.LSTM / rnnlab.GRU: keyword arguments reach
every layer's cell and each layer runs on the fused path, with the reference loop's results."""

from __future__ import annotations

import pytest
import torch

import rnnlab
from rnnlab.fast import fused_gru, fused_lstm


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one thread avoids waking a thread pool for every kernel."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def fused_calls(monkeypatch):
    calls = []
    for function in (fused_lstm.FusedLSTM, fused_gru.FusedGRU):
        apply = function.apply

        def counted(*args, apply=apply):
            calls.append(1)
            return apply(*args)

        monkeypatch.setattr(function, "apply", counted)
    return calls


CASES = [
    (rnnlab.LSTM, {"layer_norm": True}),
    (rnnlab.LSTM, {"peephole": True, "coupled": True, "bidirectional": True}),
    (rnnlab.LSTM, {"weight_norm": True, "proj_size": 3}),
    (rnnlab.LSTM, {"batch_norm": True}),
    (rnnlab.GRU, {"layer_norm": True, "bidirectional": True}),
    (rnnlab.GRU, {"batch_norm": True, "weight_norm": True}),
]


@pytest.mark.parametrize("layer,kwargs", CASES)
def test_drop_in_layers_run_variants_on_the_fused_path(layer, kwargs, fused_calls):
    model = layer(5, 6, num_layers=2, **kwargs).double()
    x = torch.randn(7, 3, 5, dtype=torch.float64)
    lengths = torch.tensor([7, 4, 2])
    y, state = model(x, lengths=lengths)
    directions = 2 if kwargs.get("bidirectional") else 1
    assert len(fused_calls) == 2 * directions  # every layer and direction, fused
    assert y.shape[:2] == (7, 3)
    parts = state if isinstance(state, tuple) else (state,)
    assert len(parts) == (2 if layer is rnnlab.LSTM else 1)
    assert all(p.shape[:2] == (2 * directions, 3) for p in parts)
    model.fast = False
    y_ref, state_ref = model(x, lengths=lengths)
    torch.testing.assert_close(y, y_ref)
    for a, b in zip(parts, state_ref if isinstance(state_ref, tuple) else (state_ref,)):
        torch.testing.assert_close(a, b)


def test_variant_keywords_reach_every_cell():
    model = rnnlab.LSTM(5, 6, num_layers=2, layer_norm=True, init="orthogonal", forget_bias=2.0)
    assert all(cell.layer_norm and cell.torch_kernel() is None for cell in model.cells())
    assert all(torch.all(cell.bias_ih[6:12] == 2.0) for cell in model.cells())
    with pytest.raises(rnnlab.ConfigError):
        rnnlab.GRU(5, 6, layer_norm=True, batch_norm=True)
