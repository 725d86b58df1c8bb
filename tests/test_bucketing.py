"""The bucketing batcher covers every example once per epoch and groups similar lengths."""

import random

import pytest
import torch

from rnnlab.data.bucketing import BucketBatchSampler, pad_batch
from rnnlab.errors import DataError


def test_every_example_exactly_once_and_batches_are_homogeneous():
    rng = random.Random(0)
    lengths = [rng.randint(1, 60) for _ in range(1003)]
    sampler = BucketBatchSampler(lengths, batch_size=16, pool_batches=20, seed=3)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    assert sorted(i for b in batches for i in b) == list(range(1003))
    assert all(len(b) <= 16 for b in batches)
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches)
    shuffled = list(range(1003))
    rng.shuffle(shuffled)
    random_spread = sum(
        max(lengths[i] for i in shuffled[s : s + 16])
        - min(lengths[i] for i in shuffled[s : s + 16])
        for s in range(0, 1003, 16)
    )
    assert spread < 0.2 * random_spread


def test_epochs_differ_and_are_reproducible():
    lengths = list(range(1, 201))
    sampler = BucketBatchSampler(lengths, batch_size=8, seed=1)
    first = list(sampler)
    sampler.set_epoch(1)
    second = list(sampler)
    assert first != second
    sampler.set_epoch(0)
    assert list(sampler) == first


def test_unshuffled_is_sorted_by_length():
    lengths = [5, 1, 3, 2, 4]
    batches = list(BucketBatchSampler(lengths, batch_size=2, shuffle=False))
    assert batches == [[1, 3], [2, 4], [0]]


def test_pad_batch():
    tokens, lengths = pad_batch([[4, 5, 6], [7]], pad_id=0)
    assert torch.equal(tokens, torch.tensor([[4, 7], [5, 0], [6, 0]]))
    assert lengths.tolist() == [3, 1]
    with pytest.raises(DataError):
        pad_batch([[1], []])


def test_epoch_resumes_mid_epoch():
    sampler = BucketBatchSampler(list(range(1, 101)), batch_size=8, seed=2)
    full = list(sampler.epoch(3))
    assert list(sampler.epoch(3, start=5)) == full[5:]
