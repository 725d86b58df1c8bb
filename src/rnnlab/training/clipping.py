"""Gradient clipping by global norm or by value, and the global gradient norm itself.

The trainer computes the global norm of every step's gradient (it is how a non-finite gradient is
detected) and counts the steps whose gradients were clipped, reported as a fraction.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def clip_gradients(
    parameters: Iterable[nn.Parameter],
    max_norm: float | None = None,
    max_value: float | None = None,
) -> tuple[float, bool]:
    """Clip gradients in place; return ``(global norm before clipping, whether any was clipped)``.

    With ``max_norm`` every gradient is scaled by ``max_norm / norm`` when ``norm > max_norm``;
    with ``max_value`` every element is clamped to ``[-max_value, max_value]``. The norm is
    ``inf`` or ``nan`` when a gradient is not finite (then nothing is clipped).
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return 0.0, False
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    norm_value = float(norm)
    if not torch.isfinite(norm):
        return norm_value, False
    if max_norm is not None:
        if norm_value > max_norm:
            scale = max_norm / (norm_value + 1e-6)
            for g in grads:
                g.mul_(scale)
            return norm_value, True
        return norm_value, False
    if max_value is not None:
        clipped = any(bool((g.abs() > max_value).any()) for g in grads)
        for g in grads:
            g.clamp_(-max_value, max_value)
        return norm_value, clipped
    return norm_value, False
