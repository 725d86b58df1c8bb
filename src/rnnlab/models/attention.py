"""Attention over a memory of vectors: dot-product (Luong et al. 2015) or additive (Bahdanau
et al. 2015), with padded memory positions masked out.

Shapes (S = memory steps, B = batch, Q = query size, M = memory size):

=========  ==============================================================
query      ``[B, Q]`` (or ``[T, B, Q]`` for T queries at once)
memory     ``[S, B, M]``
mask       ``[S, B]`` bool, true at valid memory steps (or ``None``)
context    ``[B, M]`` (or ``[T, B, M]``): the weighted sum of memory
weights    ``[B, S]`` (or ``[T, B, S]``): softmax over valid memory steps
=========  ==============================================================

Scores: ``dot``: ``q . (W_k m)`` (``W_k`` is the identity when ``Q == M``, i.e. plain dot
product; otherwise Luong's "general" score); ``additive``: ``v . tanh(W_q q + W_k m)``.
"""

from __future__ import annotations

from torch import Tensor, nn

from rnnlab.errors import ConfigError

ATTENTION_KINDS = ("dot", "additive")


class Attention(nn.Module):
    """Dot-product or additive attention with masking (see the module docstring)."""

    def __init__(self, query_size: int, memory_size: int, kind: str = "dot", hidden: int = 0):
        super().__init__()
        if kind not in ATTENTION_KINDS:
            raise ConfigError(
                f"attention must be one of {', '.join(ATTENTION_KINDS)}, got {kind!r}"
            )
        self.kind = kind
        if kind == "dot":
            self.key = (
                nn.Identity()
                if query_size == memory_size
                else nn.Linear(memory_size, query_size, bias=False)
            )
        else:
            hidden = hidden or query_size
            self.query = nn.Linear(query_size, hidden, bias=False)
            self.key = nn.Linear(memory_size, hidden)
            self.v = nn.Linear(hidden, 1, bias=False)

    def forward(self, query: Tensor, memory: Tensor, mask: Tensor | None = None):
        """Return ``(context, weights)``; see the module docstring for shapes."""
        single = query.dim() == 2
        q = query.unsqueeze(0) if single else query  # [T, B, Q]
        keys = self.key(memory)  # [S, B, Q or A]
        if self.kind == "dot":
            scores = (q.transpose(0, 1) @ keys.permute(1, 2, 0)).transpose(0, 1)  # [T, B, S]
        else:
            mixed = self.query(q).unsqueeze(2) + keys.transpose(0, 1).unsqueeze(0)  # [T,B,S,A]
            scores = self.v(mixed.tanh()).squeeze(-1)
        if mask is not None:
            scores = scores.masked_fill(~mask.t().unsqueeze(0), float("-inf"))
        weights = scores.softmax(-1)
        context = (weights.transpose(0, 1) @ memory.transpose(0, 1)).transpose(0, 1)  # [T,B,M]
        return (context[0], weights[0]) if single else (context, weights)
