"""Truncated-BPTT batching (rnnlab.data.batching) and the state carried across chunks."""

from __future__ import annotations

import pytest
import torch

from rnnlab.data.batching import StreamBatches
from rnnlab.errors import DataError
from rnnlab.models.language_model import LanguageModel


def test_streams_are_contiguous_and_targets_shifted():
    data = torch.arange(103)
    batches = StreamBatches(data, batch_size=4, seq_len=7)  # streams of 25 tokens
    assert batches.stream_length == 25 and len(batches) == 4  # 24 predictions: 7+7+7+3
    xs, ys = zip(*batches.iterate())
    x, y = torch.cat(xs), torch.cat(ys)  # [24, 4]
    assert x.shape == (24, 4)
    for b in range(4):
        assert torch.equal(x[:, b], torch.arange(25 * b, 25 * b + 24))  # contiguous stream
        assert torch.equal(y[:, b], x[:, b] + 1)  # next token
    assert torch.equal(xs[1][0], xs[0][-1] + 1)  # chunk 1 continues chunk 0 in every stream


def test_iterate_from_a_position():
    batches = StreamBatches(torch.arange(200), batch_size=2, seq_len=10)
    resumed = list(batches.iterate(start=3))
    assert len(resumed) == len(batches) - 3
    assert torch.equal(resumed[0][0], batches.chunk(3)[0])


def test_too_short_for_one_batch():
    with pytest.raises(DataError, match="fewer than one batch"):
        StreamBatches(torch.arange(40), batch_size=4, seq_len=10)


def test_carried_state_makes_chunks_equal_to_one_pass():
    torch.manual_seed(0)
    model = LanguageModel(vocab_size=11, embed=5, hidden=7, layers=2).eval()
    data = torch.randint(0, 11, (3 * 31,))
    batches = StreamBatches(data, batch_size=3, seq_len=8)
    whole, _ = model(batches.streams[:, :-1].t())
    state, pieces = None, []
    for x, _ in batches.iterate():
        logits, state = model(x, state)
        pieces.append(logits)
    torch.testing.assert_close(torch.cat(pieces), whole)
