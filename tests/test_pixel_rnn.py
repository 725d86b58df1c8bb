"""PixelRNN Row LSTM: no pixel sees itself or a later pixel; gradients; the masks."""

from __future__ import annotations

import torch

from rnnlab.models.pixel_rnn import MaskedConv2d, PixelRNN, RowLSTMCell
from rnnlab.tasks.pixelrnn import binarise


@torch.no_grad()
def test_a_pixel_never_sees_itself_or_later_pixels():
    model = PixelRNN(channels=6, layers=2, width=9).double()
    for p in model.parameters():
        p.normal_(0, 0.5)  # larger weights: any leak shows up clearly
    x = (torch.rand(2, 1, 8, 9) > 0.5).double()
    logits = model(x).flatten(1)
    for row, col in [(0, 0), (0, 8), (3, 4), (5, 0), (7, 8)]:
        changed = x.clone()
        changed[:, 0, row, col] = 1 - changed[:, 0, row, col]
        diff = (model(changed).flatten(1) - logits).abs()
        position = row * 9 + col
        assert float(diff[:, : position + 1].max()) == 0.0
        if position + 1 < diff.shape[1]:
            assert float(diff[:, position + 1 :].max()) > 0.0  # the pixel is used later on


def test_mask_a_excludes_the_centre_and_mask_b_includes_it():
    a, b = MaskedConv2d(1, 1, 3, "A").mask, MaskedConv2d(1, 1, 3, "B").mask
    assert a.tolist() == [[1, 1, 1], [1, 0, 0], [0, 0, 0]]
    assert b.tolist() == [[1, 1, 1], [1, 1, 0], [0, 0, 0]]


def test_row_lstm_gradcheck():
    cell = RowLSTMCell(2, 3, width=4).double()
    names = [name for name, _ in cell.named_parameters()]
    rows = torch.randn(3, 2, 2, 4, dtype=torch.float64, requires_grad=True)

    def run(rows, *weights):
        params = dict(zip(names, weights))
        state = cell.init_state(2, dtype=torch.float64)
        out = []
        for t in range(rows.shape[0]):
            y, state = torch.func.functional_call(cell, params, (rows[t], state))
            out.append(y)
        return torch.stack(out), state.c

    weights = [p.detach().clone().requires_grad_(True) for p in cell.parameters()]
    assert torch.autograd.gradcheck(run, (rows, *weights), fast_mode=True)


def test_binarise_and_sample_shapes():
    images = torch.tensor([[[0, 127, 128, 255]]], dtype=torch.uint8)
    assert binarise(images).tolist() == [[[[0.0, 0.0, 1.0, 1.0]]]]
    model = PixelRNN(channels=4, layers=1, width=5)
    samples = model.sample(3, (4, 5), generator=torch.Generator().manual_seed(0))
    assert samples.shape == (3, 1, 4, 5)
    assert set(samples.unique().tolist()) <= {0.0, 1.0}
