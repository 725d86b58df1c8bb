"""The base of tasks whose training batches group examples of similar length."""

from __future__ import annotations

import functools

from rnnlab.data.bucketing import BucketBatchSampler
from rnnlab.tasks.base import Task


class BucketedTask(Task):
    """A :class:`Task` whose training batches come from a :class:`BucketBatchSampler` over the
    lengths of its training examples (``train_lengths``), seeded by ``config.seed``."""

    def train_lengths(self) -> list[int]:
        """The length of every training example, in the order ``train_batches`` indexes them."""
        raise NotImplementedError

    @functools.cached_property
    def train_sampler(self) -> BucketBatchSampler:
        return BucketBatchSampler(
            self.train_lengths(), self.config.batch_size, seed=self.config.seed
        )

    def steps_per_epoch(self) -> int:
        return len(self.train_sampler)
