"""Parallel prefix scan of the first-order linear recurrence ``h_t = a_t * h_{t-1} + b_t``.

Unrolled, the recurrence is a sum of products::

    h_t = A_t h_0 + sum_{k <= t} (A_t / A_k) b_k,      A_t = a_1 a_2 ... a_t

In log space (Heinsen 2023; Feng et al. 2024, "Were RNNs all we needed?") the products become
cumulative sums and the sum becomes a cumulative log-sum-exp, both of which run over all steps at
once::

    a*_t  = cumsum_k log a_k
    h_t   = exp(a*_t) h_0 + exp(a*_t + logcumsumexp_k(log b_k - a*_k))

Signed ``b`` is split into its positive and negative parts, each scanned in log space. Two things
keep it accurate in float32 for any length: the time axis is cut into chunks of ``chunk`` steps,
so ``|a*|`` (whose rounding error is what the subtraction ``a*_t - a*_k`` exposes) stays small,
and the chunks are joined by the same recurrence over the chunk carries (``T / chunk`` steps of
elementwise work). Gradients flow through torch's autograd of ``cumsum`` and ``logcumsumexp``.

Shapes: ``log_a``, ``b`` / ``log_b``: ``[T, *]``; ``h0``: ``[*]``; result ``[T, *]``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

DEFAULT_CHUNK = 16


def linear_scan(
    log_a: Tensor,
    b: Tensor | None = None,
    h0: Tensor | None = None,
    log_b: Tensor | None = None,
    chunk: int = DEFAULT_CHUNK,
) -> Tensor:
    """All ``h_t`` of ``h_t = exp(log_a_t) * h_{t-1} + b_t`` for ``t = 0..T-1`` at once.

    Give the inputs either as ``b`` (any sign) or as ``log_b`` (``b = exp(log_b) > 0``, one
    log-sum-exp scan instead of two; ``-inf`` means ``b = 0``). ``h0`` (any sign, default zero)
    is the state before step 0.
    """
    if (b is None) == (log_b is None):
        raise ValueError("give exactly one of b and log_b")
    steps = log_a.shape[0]
    chunk = max(1, min(chunk, steps))
    chunks = -(-steps // chunk)
    pad = chunks * chunk - steps
    rest = log_a.shape[1:]

    def blocks(t: Tensor, fill: float) -> Tensor:
        if pad:
            t = torch.cat([t, t.new_full((pad, *rest), fill)])
        return t.view(chunks, chunk, *rest)

    la = blocks(log_a, 0.0)
    a_star = la.cumsum(1)  # within each chunk
    if log_b is not None:
        log_tiny = _log_tiny(log_b.dtype)  # b = 0 as the smallest normal number
        log_b = blocks(log_b.clamp_min(log_tiny), log_tiny)
        local = torch.exp(a_star + torch.logcumsumexp(log_b - a_star, 1))
    else:
        local = _signed_scan(blocks(b, 0.0), a_star)
    decay = torch.exp(a_star)  # product of a over the chunk up to each step
    if chunks == 1 and h0 is None:
        return local.view(chunks * chunk, *rest)[:steps]
    carry = h0 if h0 is not None else local.new_zeros(rest)
    carries = []
    # join chunks: the state entering chunk k (unbind, not indexing: one gradient buffer, not K)
    for chunk_decay, chunk_local in zip(decay[:, -1].unbind(0), local[:, -1].unbind(0)):
        carries.append(carry)
        carry = chunk_decay * carry + chunk_local
    h = local + decay * torch.stack(carries).unsqueeze(1)
    return h.view(chunks * chunk, *rest)[:steps]


def _signed_scan(b: Tensor, a_star: Tensor) -> Tensor:
    """``sum_{k<=t} exp(a*_t - a*_k) b_k`` along dim 1, positive and negative parts in log space."""
    log_tiny = _log_tiny(b.dtype)
    log_abs = torch.log(b.abs().clamp_min(torch.finfo(b.dtype).tiny))
    pos = torch.where(b > 0, log_abs, log_tiny) - a_star
    neg = torch.where(b < 0, log_abs, log_tiny) - a_star
    return torch.exp(a_star + torch.logcumsumexp(pos, 1)) - torch.exp(
        a_star + torch.logcumsumexp(neg, 1)
    )


def _log_tiny(dtype: torch.dtype) -> float:
    """log of the smallest normal number: stands for log 0 without the NaN gradients of -inf."""
    return math.log(torch.finfo(dtype).tiny)


def sequential_scan(a: Tensor, b: Tensor, h0: Tensor | None = None) -> Tensor:
    """The reference loop ``h_t = a_t * h_{t-1} + b_t`` (for tests and step-by-step use)."""
    h = h0 if h0 is not None else b.new_zeros(b.shape[1:])
    out = []
    for a_t, b_t in zip(a.unbind(0), b.unbind(0)):
        h = a_t * h + b_t
        out.append(h)
    return torch.stack(out)
