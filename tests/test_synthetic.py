"""Each synthetic generator's targets are correct by construction, and streams are seeded."""

from __future__ import annotations

import functools
import math

import pytest
import torch

from rnnlab.data.synthetic import (
    SyntheticStream,
    adding_problem,
    copy_memory,
    copy_memory_baseline,
    parity,
    selective_copy,
    temporal_order,
)
from rnnlab.errors import ConfigError


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_adding_target_is_the_sum_of_the_two_marked_values():
    x, y = adding_problem(64, _generator(), length=50)
    assert x.shape == (50, 64, 2) and y.shape == (64,)
    values, mask = x[..., 0], x[..., 1]
    assert torch.equal(mask.sum(0), torch.full((64,), 2.0))
    for b in range(64):
        marked = mask[:, b].nonzero().flatten()
        assert len(marked) == 2
        assert y[b].item() == pytest.approx(values[marked, b].sum().item())
    assert 0.0 <= values.min() and values.max() < 1.0


def test_copy_memory_layout_and_targets():
    blanks, copy_length, symbols = 30, 10, 8
    x, y = copy_memory(16, _generator(), blanks=blanks, symbols=symbols, copy_length=copy_length)
    steps = blanks + 2 * copy_length
    assert x.shape == (steps, 16) and y.shape == (steps, 16)
    data = x[:copy_length]
    assert data.min() >= 1 and data.max() <= symbols
    assert (x[copy_length : copy_length + blanks - 1] == 0).all()
    assert (x[copy_length + blanks - 1 :] == symbols + 1).all()
    assert (y[: blanks + copy_length] == 0).all()
    assert torch.equal(y[blanks + copy_length :], data)
    assert copy_memory_baseline(1000) == pytest.approx(10 * math.log(8) / 1020)


def test_parity_is_the_xor_of_all_bits():
    x, y = parity(128, _generator(), length=9)
    assert x.shape == (9, 128) and set(x.unique().tolist()) <= {0, 1}
    for b in range(128):
        xor = 0
        for bit in x[:, b].tolist():
            xor ^= bit
        assert y[b].item() == xor


def test_temporal_order_class_follows_the_order_of_x_and_y():
    x, y = temporal_order(256, _generator(), length=100)
    assert (x[0] == 6).all() and (x[-1] == 7).all()
    names = {4: "X", 5: "Y"}
    for b in range(256):
        positions = [t for t in range(100) if x[t, b].item() in names]
        assert len(positions) == 2
        t1, t2 = positions
        assert 10 <= t1 <= 20 and 50 <= t2 <= 60
        order = names[x[t1, b].item()] + names[x[t2, b].item()]
        assert y[b].item() == ["XX", "XY", "YX", "YY"].index(order)
    assert set(y.tolist()) == {0, 1, 2, 3}


def test_selective_copy_targets_are_the_data_tokens_in_order():
    length, count, symbols = 40, 5, 6
    x, y = selective_copy(32, _generator(), length=length, count=count, symbols=symbols)
    assert x.shape == (length + count, 32) and y.shape == (count, 32)
    assert (x[length:] == symbols + 1).all()
    for b in range(32):
        tokens = x[:length, b]
        assert tokens[tokens != 0].tolist() == y[:, b].tolist()


def test_stream_is_seeded_and_eval_sets_are_fixed_and_distinct():
    make = functools.partial(parity, length=12)
    a, b = SyntheticStream(make, 8, seed=3), SyntheticStream(make, 8, seed=3)
    assert torch.equal(a.train_batch(2, 5)[0], b.train_batch(2, 5)[0])
    assert not torch.equal(a.train_batch(2, 5)[0], a.train_batch(2, 6)[0])
    valid, test = a.eval_batches("valid"), a.eval_batches("test")
    assert sum(len(t) for _, t in valid) == 1000
    assert torch.equal(valid[0][0], b.eval_batches("valid")[0][0])
    assert not torch.equal(valid[0][0], test[0][0])
    with pytest.raises(ConfigError):
        a.eval_batches("train")


def test_generators_reject_bad_lengths():
    with pytest.raises(ConfigError):
        adding_problem(2, _generator(), length=1)
    with pytest.raises(ConfigError):
        selective_copy(2, _generator(), length=3, count=5)
