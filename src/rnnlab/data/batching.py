"""Truncated-BPTT batches: B contiguous streams cut into chunks of ``seq_len`` steps.

The token sequence ``data [N]`` is cut into ``B`` equal streams of ``L = N // B`` tokens (the
last ``N mod B`` are dropped); stream ``b`` is ``data[b*L : (b+1)*L]``. Chunk ``i`` covers steps
``i*seq_len .. i*seq_len + T - 1`` of every stream, with targets shifted by one::

    inputs  x[t, b] = stream_b[i*seq_len + t]
    targets y[t, b] = stream_b[i*seq_len + t + 1]        t < T = min(seq_len, L - 1 - i*seq_len)

so chunk ``i + 1`` continues exactly where chunk ``i`` stopped, in every stream: the hidden
state at the end of a chunk is the right initial state for the next one (the trainer carries
it, detached, and resets it at each epoch). The last chunk may be shorter. Batches are
``(x [T, B], y [T, B])`` long tensors, time first.

With a curriculum the chunk length changes during an epoch: :meth:`StreamBatches.follow` cuts
each chunk at the position where the previous one ended, whatever its length, and keeps that
position in time steps (not chunk indices), so the chunks cover every stream contiguously.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from torch import Tensor

from rnnlab.errors import DataError


class Cursor(Protocol):
    """Where variable-length chunks have reached (``position``, in time steps of every stream)
    and how long the next one is (``length``); e.g. a
    :class:`~rnnlab.training.curriculum.Curriculum`."""

    position: int

    @property
    def length(self) -> int: ...


class StreamBatches:
    """The chunks of ``data`` for ``batch_size`` streams of ``seq_len`` steps.

    Example::

        batches = StreamBatches(ids, batch_size=32, seq_len=100)
        for x, y in batches.iterate(start=0):   # x, y: [T, 32]
            ...
    """

    def __init__(self, data: Tensor, batch_size: int, seq_len: int, what: str = "training text"):
        if data.dim() != 1:
            raise ValueError(f"data must be 1-d token ids, got shape {list(data.shape)}")
        needed = batch_size * (seq_len + 1)
        if data.numel() < needed:
            raise DataError(
                f"the {what} has {data.numel():,} characters, fewer than one batch "
                f"(--batch-size {batch_size} x (--seq-len {seq_len} + 1) = {needed:,}); use a "
                "smaller --batch-size or --seq-len, or more text"
            )
        self.batch_size, self.seq_len = batch_size, seq_len
        self.stream_length = data.numel() // batch_size
        self.streams = data[: batch_size * self.stream_length].view(batch_size, self.stream_length)

    def __len__(self) -> int:
        return -(-(self.stream_length - 1) // self.seq_len)

    def chunk(self, index: int) -> tuple[Tensor, Tensor]:
        """Chunk ``index``: ``(x [T, B], y [T, B])``."""
        return self.span(index * self.seq_len, self.seq_len)

    def span(self, begin: int, length: int) -> tuple[Tensor, Tensor]:
        """Steps ``begin .. begin + T - 1`` of every stream, ``T = min(length, L - 1 - begin)``:
        ``(x [T, B], y [T, B])``."""
        end = min(begin + length, self.stream_length - 1)
        x = self.streams[:, begin:end].t().contiguous()
        y = self.streams[:, begin + 1 : end + 1].t().contiguous()
        return x, y

    def iterate(self, start: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
        """The chunks in order from chunk ``start``."""
        for index in range(start, len(self)):
            yield self.chunk(index)

    def follow(self, cursor: Cursor) -> Iterator[tuple[Tensor, Tensor]]:
        """The chunks from ``cursor.position`` to the end of the streams, each ``cursor.length``
        steps long as read when it is drawn; ``cursor.position`` moves past a chunk before it is
        yielded (a chunk handed out counts as trained on)."""
        while cursor.position < self.stream_length - 1:
            x, y = self.span(cursor.position, cursor.length)
            cursor.position += x.shape[0]
            yield x, y
