"""RecurrentEncoder: the layers' reference loop, stacked and bidirectional, with lengths."""

import torch

from rnnlab.layers import unroll
from rnnlab.models import RecurrentEncoder


def test_bidirectional_stack_equals_reference_unrolls():
    torch.manual_seed(0)
    enc = RecurrentEncoder("gru", 5, 7, num_layers=2, bidirectional=True).double()
    x = torch.randn(6, 3, 5, dtype=torch.float64)
    lengths = torch.tensor([6, 4, 1])
    y, summary = enc(x, lengths)
    h = x
    for layer in enc.layers.layers:
        fwd, bwd = layer.forward_rnn.cell, layer.backward_rnn.cell
        yf, _ = unroll(fwd, h, fwd.init_state(3, dtype=h.dtype), lengths)
        yb, _ = unroll(bwd, h, bwd.init_state(3, dtype=h.dtype), lengths, reverse=True)
        h = torch.cat([yf, yb], -1)
    torch.testing.assert_close(y, h)
    last = torch.stack([yf[n - 1, b] for b, n in enumerate(lengths.tolist())])
    torch.testing.assert_close(summary, torch.cat([last, yb[0]], -1))
