"""Many-to-many, aligned: one label per input step (tagging), over any registered cell.

Tokens ``[T, B]`` -> embedding -> :class:`~rnnlab.models.encoder.RecurrentEncoder` (a
bidirectional encoder lets each tag see the whole sequence) -> linear -> tag logits
``[T, B, C]``. The loss is the cross-entropy averaged over the valid steps only.

Example::

    model = SequenceTagger("gru", vocab_size=100, num_tags=12, bidirectional=True)
    loss, metrics = model.loss(tokens, lengths, tags)  # tags [T, B]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.models.decoder import PAD
from rnnlab.models.encoder import RecurrentEncoder, length_mask


class SequenceTagger(nn.Module):
    """An output per input step: ``[T, B]`` tokens -> ``[T, B, C]`` tag logits."""

    def __init__(
        self,
        cell: str,
        vocab_size: int,
        num_tags: int,
        embed_size: int = 64,
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        pad_id: int = PAD,
        **cell_kwargs,
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_size, padding_idx=pad_id)
        self.encoder = RecurrentEncoder(
            cell, embed_size, hidden_size, num_layers, bidirectional, dropout, **cell_kwargs
        )
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(self.encoder.output_size, num_tags)

    def forward(self, tokens: Tensor, lengths: Tensor | None = None) -> Tensor:
        y, _ = self.encoder(self.dropout(self.embedding(tokens)), lengths)
        return self.output(self.dropout(y))

    def loss(
        self, tokens: Tensor, lengths: Tensor | None, tags: Tensor
    ) -> tuple[Tensor, dict[str, float]]:
        """Cross-entropy and accuracy over the valid steps."""
        logits = self(tokens, lengths)
        valid = length_mask(lengths, tokens.shape[0], tokens.shape[1], tokens.device)
        loss = F.cross_entropy(logits[valid], tags[valid])
        accuracy = (logits[valid].argmax(-1) == tags[valid]).to(torch.float32).mean()
        return loss, {"accuracy": float(accuracy)}

    @torch.no_grad()
    def predict(self, tokens: Tensor, lengths: Tensor | None = None) -> Tensor:
        """The most likely tag at each step ``[T, B]``."""
        return self(tokens, lengths).argmax(-1)
