"""Dynamic evaluation (Krause et al. 2018; Graves 2013 on the Hutter Prize): a language model
keeps learning while it reads the test text.

The test stream is read in order as one sequence, in chunks of ``seq_len`` characters. Each chunk
is first *predicted* (its loss is what is reported), then the model takes one plain SGD step on
that same chunk's loss, so the next chunk is predicted by weights adapted to everything before
it. The hidden state is carried across chunks as in training. Nothing is predicted after
training on it, so the dynamic loss is a fair number.

The static loss is the same single-stream pass without updates, for comparison; the run's
weights are never modified (a copy adapts).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import Tensor, nn

LN2 = math.log(2.0)


def _chunks(ids: Tensor, seq_len: int):
    for start in range(0, ids.numel() - 1, seq_len):
        stop = min(start + seq_len, ids.numel() - 1)
        yield ids[start:stop].view(-1, 1), ids[start + 1 : stop + 1].view(-1, 1)  # [T, 1]


def stream_loss(model: nn.Module, ids: Tensor, seq_len: int, lr: float = 0.0) -> float:
    """Mean loss (nats per token) of ``model`` reading ``ids`` (1-d) as one stream, chunk by
    chunk; with ``lr > 0`` it takes an SGD step on each chunk after predicting it.

    ``model`` needs ``loss(tokens [T, B], targets [T, B], state) -> (mean loss, state)`` (as
    :class:`rnnlab.models.language_model.LanguageModel`); it is modified when ``lr > 0``.
    """
    device = next(model.parameters()).device
    optimizer = torch.optim.SGD(model.parameters(), lr=lr) if lr > 0 else None
    total, count, state = 0.0, 0, None
    for x, y in _chunks(ids, seq_len):
        x, y = x.to(device), y.to(device)
        with torch.set_grad_enabled(optimizer is not None):
            loss, state = model.loss(x, y, state)
        total += float(loss.detach()) * y.numel()
        count += y.numel()
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        state = _detach(state)
    return total / count


def _detach(state):
    if state is None or isinstance(state, Tensor):
        return None if state is None else state.detach()
    if isinstance(state, tuple) and hasattr(state, "_fields"):
        return type(state)(*(_detach(s) for s in state))
    return type(state)(_detach(s) for s in state)


def dynamic_evaluation(model: nn.Module, ids: Tensor, seq_len: int, lr: float) -> dict[str, float]:
    """``{"static_loss", "static_bpc", "dynamic_loss", "dynamic_bpc"}`` of ``model`` on ``ids``;
    ``model`` itself is left unchanged (in eval mode: no dropout while adapting)."""
    model.eval()
    static = stream_loss(model, ids, seq_len)
    adapted = copy.deepcopy(model)
    dynamic = stream_loss(adapted, ids, seq_len, lr=lr)
    return {
        "static_loss": static,
        "static_bpc": static / LN2,
        "dynamic_loss": dynamic,
        "dynamic_bpc": dynamic / LN2,
    }
