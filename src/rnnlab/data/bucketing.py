"""Variable-length batches: a bucketing batch sampler and padding into ``[T, B]`` tensors.

Padding a batch costs the length of its longest sequence for every sequence in it, so batches
of similar lengths waste less. :class:`BucketBatchSampler` shuffles the examples, cuts them into
pools of ``pool_batches`` batches, sorts each pool by length, cuts it into batches and shuffles
the batches: every example appears exactly once per epoch, batches hold sequences of similar
length, and the order still changes from epoch to epoch (and is reproducible from the seed).

Example::

    sampler = BucketBatchSampler([len(s) for s in sequences], batch_size=32, seed=0)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        for indices in sampler:
            tokens, lengths = pad_batch([sequences[i] for i in indices])  # [T, B], [B]
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

from rnnlab.errors import DataError
from rnnlab.validation import check_positive


class BucketBatchSampler:
    """Batches of indices of similar length; every index exactly once per epoch."""

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        shuffle: bool = True,
        pool_batches: int = 50,
        seed: int = 0,
    ) -> None:
        check_positive(batch_size=batch_size, pool_batches=pool_batches)
        self.lengths = list(lengths)
        self.batch_size, self.shuffle, self.pool_batches = batch_size, shuffle, pool_batches
        self.seed, self.current_epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Use a different (but reproducible) order in each epoch."""
        self.current_epoch = epoch

    def epoch(self, epoch: int, start: int = 0) -> Iterator[list[int]]:
        """The batches of ``epoch``, skipping the first ``start`` (to resume mid-epoch)."""
        self.set_epoch(epoch)
        return itertools.islice(iter(self), start, None)

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        indices = list(range(len(self.lengths)))
        if not self.shuffle:
            indices.sort(key=lambda i: self.lengths[i])
            yield from _chunks(indices, self.batch_size)
            return
        rng = random.Random(self.seed * 1_000_003 + self.current_epoch)
        rng.shuffle(indices)
        pool = self.batch_size * self.pool_batches
        batches = []
        for start in range(0, len(indices), pool):
            chunk = sorted(indices[start : start + pool], key=lambda i: self.lengths[i])
            batches.extend(_chunks(chunk, self.batch_size))
        rng.shuffle(batches)
        yield from batches


def _chunks(items: list[int], size: int) -> list[list[int]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int = 0) -> tuple[Tensor, Tensor]:
    """Token id lists -> ``(tokens [T, B] long, lengths [B] long)``, padded with ``pad_id``."""
    if not sequences or any(len(s) == 0 for s in sequences):
        raise DataError("cannot batch an empty sequence; drop empty examples before batching")
    lengths = torch.tensor([len(s) for s in sequences])
    tokens = torch.full((int(lengths.max()), len(sequences)), pad_id, dtype=torch.long)
    for b, seq in enumerate(sequences):
        tokens[: len(seq), b] = torch.as_tensor(seq, dtype=torch.long)
    return tokens, lengths
