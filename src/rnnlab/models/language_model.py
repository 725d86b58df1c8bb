"""A token-level (e.g. character-level) recurrent language model.

    embedding -> dropout -> [recurrent layer -> dropout] x layers -> linear decoder

Every layer is a :class:`rnnlab.layers.Recurrent` around any registered cell (``--cell``), so
plain LSTM/GRU/RNN layers run on torch's fused kernels and every other cell on the reference
loop. Dropout (Zaremba et al., 2014) acts on the non-recurrent connections only: the embedding
output, between layers and before the decoder.

=========  ==============================================
tokens     ``[T, B]`` long, time first
logits     ``[T, B, V]``
state      list with one cell state per layer (``None``: zeros)
=========  ==============================================
"""

from __future__ import annotations

import math
import os
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnlab import cells
from rnnlab.errors import ConfigError
from rnnlab.layers import Recurrent


class LanguageModel(nn.Module):
    """Predict the next token at every step.

    Args:
        vocab_size: number of distinct tokens V.
        embed: embedding size.
        hidden: hidden units per layer.
        layers: number of stacked recurrent layers.
        cell: registered cell name (``rnnlab.cells.available()``).
        dropout: dropout probability on non-recurrent connections.
        **cell_kwargs: passed to every cell (``forget_bias=...``).
    """

    def __init__(
        self,
        vocab_size: int,
        embed: int = 64,
        hidden: int = 256,
        layers: int = 1,
        cell: str = "lstm",
        dropout: float = 0.0,
        **cell_kwargs: Any,
    ):
        super().__init__()
        for name, value in (
            ("vocab_size", vocab_size),
            ("embed", embed),
            ("hidden", hidden),
            ("layers", layers),
        ):
            if value <= 0:
                raise ConfigError(f"{name} must be positive, got {value}")
        self.vocab_size = vocab_size
        self.embedding = nn.Embedding(vocab_size, embed)
        self.layers = nn.ModuleList()
        size = embed
        for _ in range(layers):
            layer = Recurrent(
                cells.create(cell, input_size=size, hidden_size=hidden, **cell_kwargs)
            )
            self.layers.append(layer)
            size = layer.output_size
        self.dropout = nn.Dropout(dropout)
        self.decoder = nn.Linear(size, vocab_size)

    def forward(self, tokens: Tensor, state: list | None = None) -> tuple[Tensor, list]:
        """``tokens [T, B]`` -> ``(logits [T, B, V], state per layer)``."""
        x = self.dropout(self.embedding(tokens))
        states = []
        for i, layer in enumerate(self.layers):
            layer_state = None if state is None else self._as_cell_state(layer, state[i], x)
            x, layer_state = layer(x, layer_state)
            x = self.dropout(x)
            states.append(layer_state)
        return self.decoder(x), states

    @staticmethod
    def _as_cell_state(layer: Recurrent, saved: Any, x: Tensor) -> Any:
        """A state read back from a checkpoint (plain lists) as the cell's own state type."""
        if isinstance(saved, Tensor):
            return saved
        template = layer.cell.init_state(1, x.device, x.dtype)
        if isinstance(template, tuple) and not isinstance(saved, type(template)):
            return type(template)(*saved)
        return saved

    def loss(self, tokens: Tensor, targets: Tensor, state: list | None = None):
        """Mean cross-entropy in nats over all ``[T, B]`` targets; returns ``(loss, state)``."""
        logits, state = self(tokens, state)
        return F.cross_entropy(logits.reshape(-1, self.vocab_size), targets.reshape(-1)), state

    @torch.no_grad()
    def generate(
        self,
        prime: Tensor,
        length: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        seed: int | None = None,
    ) -> Tensor:
        """Sample ``length`` tokens after ``prime [P]`` (P >= 1); returns them as ``[length]``.

        Logits are divided by ``temperature`` (lower: more conservative); ``top_k`` keeps only the
        k most likely tokens. ``seed`` makes the result reproducible without touching the global
        random state.
        """
        if temperature <= 0:
            raise ConfigError(f"temperature must be positive, got {temperature}")
        if top_k is not None and top_k <= 0:
            raise ConfigError(f"top-k must be positive, got {top_k}")
        if prime.numel() == 0:
            raise ConfigError("the prime must have at least one token")
        was_training = self.training
        self.eval()
        device = self.decoder.weight.device
        generator = torch.Generator(device=device)
        generator.manual_seed(seed if seed is not None else int.from_bytes(os.urandom(7), "big"))
        logits, state = self(prime.to(device).view(-1, 1))
        out = torch.empty(length, dtype=torch.long, device=device)
        for t in range(length):
            scores = logits[-1, 0] / temperature
            if top_k is not None and top_k < scores.numel():
                kth = torch.topk(scores, top_k).values[-1]
                scores = scores.masked_fill(scores < kth, -math.inf)
            token = torch.multinomial(F.softmax(scores, dim=-1), 1, generator=generator)
            out[t] = token[0]
            logits, state = self(token.view(1, 1), state)
        self.train(was_training)
        return out.cpu()
