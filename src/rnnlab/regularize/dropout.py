"""Dropout on the non-recurrent connections of a recurrent network.

- ``LockedDropout`` (variational dropout, Gal and Ghahramani 2016): one mask per sequence, reused
  at every time step, on inputs or outputs ``[T, B, F]``. With a fresh mask at every step this
  would be the standard dropout of Zaremba et al. 2014 (``torch.nn.Dropout``).
- ``embedding_dropout`` (Gal and Ghahramani; Merity et al. 2018): drops whole words, i.e. rows of
  the embedding matrix, so every occurrence of a dropped word in the batch is zero.

Both are the identity at evaluation and scale kept units by ``1 / (1 - p)`` in training.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.validation import check_probability


class LockedDropout(nn.Module):
    """Dropout with one mask per sequence shared by all steps: ``[T, B, F] -> [T, B, F]``
    (``batch_first=True`` for ``[B, T, F]``)."""

    def __init__(self, p: float = 0.5, batch_first: bool = False) -> None:
        super().__init__()
        self.p, self.batch_first = check_probability("dropout", p), batch_first

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        shape = (x.shape[0], 1, x.shape[2]) if self.batch_first else (1, *x.shape[1:])
        mask = x.new_empty(shape).bernoulli_(1.0 - self.p) / (1.0 - self.p)
        return x * mask


def embedding_dropout(
    embedding: nn.Embedding, tokens: Tensor, p: float, training: bool = True
) -> Tensor:
    """Look up ``tokens`` (any shape of ids) in ``embedding`` with whole words dropped.

    Returns ``[*tokens.shape, embedding_dim]``.
    """
    check_probability("embedding_dropout", p)
    weight = embedding.weight
    if training and p > 0.0:
        keep = weight.new_empty(weight.shape[0], 1).bernoulli_(1.0 - p) / (1.0 - p)
        weight = weight * keep
    return F.embedding(
        tokens,
        weight,
        embedding.padding_idx,
        embedding.max_norm,
        embedding.norm_type,
        embedding.scale_grad_by_freq,
        embedding.sparse,
    )


def dropout_mask(like: Tensor, p: float) -> Tensor:
    """A scaled Bernoulli keep-mask of ``like``'s shape: 0 or ``1 / (1 - p)``."""
    return torch.empty_like(like).bernoulli_(1.0 - p) / (1.0 - p)
