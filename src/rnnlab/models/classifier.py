"""Many-to-one: a sequence classifier over any registered cell.

Embed the tokens, run a :class:`~rnnlab.models.encoder.RecurrentEncoder` (stacked, optionally
bidirectional), pool the outputs of the valid steps into one vector, and classify it.

Pooling (``pooling``):

* ``"last"``: the output at each sequence's last valid step (with ``bidirectional``, the
  backward direction's output at step 0 is concatenated);
* ``"mean"`` / ``"max"``: the mean / maximum of the outputs over the valid steps;
* ``"attention"``: ``sum_t a_t y_t`` with ``a = softmax_t(v . tanh(W y_t + b))`` over valid
  steps (a learned query; additive attention).

Shapes: tokens ``[T, B]`` (time first), lengths ``[B]``, labels ``[B]`` -> logits ``[B, C]``.

Example::

    model = SequenceClassifier("lstm", vocab_size=60, num_classes=18, hidden_size=128)
    logits = model(tokens, lengths)
    loss, metrics = model.loss(tokens, lengths, labels)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.errors import ConfigError
from rnnlab.models.decoder import PAD
from rnnlab.models.encoder import RecurrentEncoder, length_mask

POOLINGS = ("last", "mean", "max", "attention")


class SequenceClassifier(nn.Module):
    """Tokens -> embedding -> recurrent encoder -> pooling -> dropout -> linear -> class logits."""

    def __init__(
        self,
        cell: str,
        vocab_size: int,
        num_classes: int,
        embed_size: int = 64,
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = False,
        pooling: str = "last",
        dropout: float = 0.0,
        pad_id: int = PAD,
        **cell_kwargs,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ConfigError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
        self.pooling = pooling
        self.embedding = nn.Embedding(vocab_size, embed_size, padding_idx=pad_id)
        self.encoder = RecurrentEncoder(
            cell, embed_size, hidden_size, num_layers, bidirectional, dropout, **cell_kwargs
        )
        size = self.encoder.output_size
        if pooling == "attention":
            self.score = nn.Sequential(nn.Linear(size, size), nn.Tanh(), nn.Linear(size, 1))
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(size, num_classes)

    def forward(self, tokens: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Class logits ``[B, C]``."""
        y, summary = self.encoder(self.dropout(self.embedding(tokens)), lengths)
        valid = length_mask(lengths, y.shape[0], y.shape[1], y.device).unsqueeze(-1)
        if self.pooling == "last":
            pooled = summary
        elif self.pooling == "mean":
            pooled = (y * valid).sum(0) / valid.sum(0).to(y.dtype)
        elif self.pooling == "max":
            pooled = y.masked_fill(~valid, float("-inf")).amax(0)
        else:
            weights = self.score(y).masked_fill(~valid, float("-inf")).softmax(0)
            pooled = (weights * y).sum(0)
        return self.output(self.dropout(pooled))

    def loss(
        self, tokens: Tensor, lengths: Tensor | None, labels: Tensor
    ) -> tuple[Tensor, dict[str, float]]:
        """Mean cross-entropy and the batch accuracy."""
        logits = self(tokens, lengths)
        loss = F.cross_entropy(logits, labels)
        accuracy = (logits.argmax(-1) == labels).to(torch.float32).mean()
        return loss, {"accuracy": float(accuracy)}

    @torch.no_grad()
    def predict(self, tokens: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Class probabilities ``[B, C]``."""
        return self(tokens, lengths).softmax(-1)
