"""Music: the NLL protocol on a hand-computed example, batching, and the real .mat files."""

from __future__ import annotations

import math

import pytest
import torch

from rnnlab.data.music import KEYS, frame_nll, load_music, next_frame_batch


def test_frame_nll_equals_hand_computed_value_on_two_frames():
    # two frames, two sounding keys: p = sigmoid(logit); the other 86 keys have logit 0 (p = 1/2)
    logits = torch.zeros(2, 1, KEYS)
    targets = torch.zeros(2, 1, KEYS)
    logits[0, 0, 0], targets[0, 0, 0] = math.log(3.0), 1.0  # p = 0.75, note on: -log 0.75
    logits[1, 0, 5], targets[1, 0, 5] = math.log(1 / 4), 0.0  # p = 0.2, note off: -log 0.8
    total, frames = frame_nll(logits, targets)
    expected_total = -math.log(0.75) - math.log(0.8) + 2 * 87 * math.log(2)
    assert frames == 2
    assert total.item() == pytest.approx(expected_total, rel=1e-6)
    assert (total / frames).item() == pytest.approx(expected_total / 2, rel=1e-6)


def test_frame_nll_ignores_frames_past_each_length():
    logits = torch.randn(4, 2, KEYS)
    targets = (torch.rand(4, 2, KEYS) > 0.8).float()
    total, frames = frame_nll(logits, targets, torch.tensor([4, 2]))
    full, _ = frame_nll(logits[:, :1], targets[:, :1])
    part, _ = frame_nll(logits[:2, 1:], targets[:2, 1:])
    assert frames == 6
    assert total.item() == pytest.approx((full + part).item(), rel=1e-6)


def test_next_frame_batch_shifts_by_one_frame():
    rolls = [torch.eye(KEYS)[:5], torch.eye(KEYS)[10:13]]
    x, y, lengths = next_frame_batch(rolls)
    assert x.shape == (4, 2, KEYS) and lengths.tolist() == [4, 2]
    assert torch.equal(x[:, 0], rolls[0][:-1]) and torch.equal(y[:, 0], rolls[0][1:])
    assert torch.equal(y[:2, 1], rolls[1][1:]) and (y[2:, 1] == 0).all()


def test_real_jsb_chorales(data_dir):
    train = load_music("jsb", "train", data_dir, download=False)
    test = load_music("jsb", "test", data_dir, download=False)
    assert len(train) == 229 and len(test) == 77
    assert sum(len(r) for r in train) == 13807
    assert all(r.shape[1] == KEYS and set(r.unique().tolist()) <= {0.0, 1.0} for r in train)
