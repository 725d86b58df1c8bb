"""ConvLSTM: reduces to the LSTM with 1x1 kernels on 1x1 maps; gradients; loop vs one step;
the moving-digits videos and the next-frame predictor."""

from __future__ import annotations

import pytest
import torch

from rnnlab.cells import create
from rnnlab.cells.conv_lstm import ConvLSTMCell
from rnnlab.cells.lstm import LSTMCell
from rnnlab.data.moving_digits import moving_digits
from rnnlab.errors import ConfigError
from rnnlab.layers.unroll import unroll
from rnnlab.models.frame_predictor import ConvLSTMFramePredictor


def test_one_by_one_kernels_on_one_by_one_maps_equal_the_lstm():
    conv = ConvLSTMCell(3, 5, kernel_size=1).double()
    lstm = LSTMCell(3, 5).double()
    with torch.no_grad():
        for p in conv.parameters():
            p.normal_()
        lstm.weight_ih.copy_(conv.weight_ih[:, :, 0, 0])
        lstm.weight_hh.copy_(conv.weight_hh[:, :, 0, 0])
        lstm.bias_ih.copy_(conv.bias_ih)
        lstm.bias_hh.copy_(conv.bias_hh)
    x = torch.randn(7, 4, 3, dtype=torch.float64)
    h0, c0 = torch.randn(2, 4, 5, dtype=torch.float64)
    y_lstm, (h_lstm, c_lstm) = unroll(lstm, x, (h0, c0))
    state = (h0[..., None, None], c0[..., None, None])
    y_conv, (h_conv, c_conv) = unroll(conv, x[..., None, None], type(lstm.init_state(1))(*state))
    torch.testing.assert_close(y_conv[..., 0, 0], y_lstm)
    torch.testing.assert_close(c_conv[..., 0, 0], c_lstm)


def test_gradcheck():
    cell = ConvLSTMCell(1, 2, kernel_size=3).double()
    names = [name for name, _ in cell.named_parameters()]
    x = torch.randn(2, 2, 1, 3, 4, dtype=torch.float64, requires_grad=True)

    def run(x, *weights):
        params = dict(zip(names, weights))
        state = cell.init_state(2, dtype=torch.float64, frame_size=(3, 4))
        y = []
        for t in range(x.shape[0]):
            out, state = torch.func.functional_call(cell, params, (x[t], state))
            y.append(out)
        return torch.stack(y), state.c

    weights = [p.detach().clone().requires_grad_(True) for p in cell.parameters()]
    assert torch.autograd.gradcheck(run, (x, *weights), fast_mode=True)


def test_precomputed_loop_equals_raw_steps_and_keeps_the_frame():
    cell = create("conv-lstm", input_size=2, hidden_size=4, kernel_size=5)
    x = torch.randn(6, 3, 2, 8, 9)
    y, state = unroll(cell, x, cell.init_state(3, frame_size=(8, 9)))
    assert y.shape == (6, 3, 4, 8, 9) and state.c.shape == (3, 4, 8, 9)
    raw_state = None
    for t in range(6):
        out, raw_state = cell(x[t], raw_state)
        torch.testing.assert_close(out, y[t])


def test_configuration_errors():
    with pytest.raises(ConfigError, match="odd"):
        ConvLSTMCell(1, 2, kernel_size=4)
    with pytest.raises(ConfigError, match="frame_size"):
        ConvLSTMCell(1, 2).init_state(3)
    with pytest.raises(ConfigError, match="feature maps"):
        ConvLSTMCell(1, 2).precompute(torch.randn(5, 3, 1))


def test_moving_digits_are_seeded_and_stay_in_the_frame():
    digits = torch.zeros(3, 28, 28, dtype=torch.uint8)
    digits[:, 10:18, 10:18] = 255  # an 8x8 square in each "digit"
    videos = moving_digits(digits, num_videos=4, steps=30, num_digits=1, seed=5)
    assert videos.shape == (4, 30, 1, 64, 64)
    assert torch.equal(videos, moving_digits(digits, 4, 30, num_digits=1, seed=5))
    assert not torch.equal(videos, moving_digits(digits, 4, 30, num_digits=1, seed=6))
    # the whole square is visible in every frame (no clipping at the edges), and it moves
    assert torch.all(videos.sum((2, 3, 4)) == 64)
    assert not torch.equal(videos[:, 0], videos[:, 1])


def test_frame_predictor_predicts_from_the_past_only():
    model = ConvLSTMFramePredictor(1, 4, layers=2, kernel_size=3, patch=4).double()
    frames = torch.rand(2, 5, 1, 16, 16, dtype=torch.float64)
    logits = model(frames)
    assert logits.shape == frames.shape
    changed = frames.clone()
    changed[:, 3] = torch.rand(2, 1, 16, 16, dtype=torch.float64)
    diff = (model(changed) - logits).abs().amax((0, 2, 3, 4))
    assert diff[:3].max() == 0 and diff[3:].min() > 0
    assert model.rollout(frames[:, :2], 3).shape == (2, 3, 1, 16, 16)
