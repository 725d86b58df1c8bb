"""Bookkeeping shared by the fused loops: which rows are valid at each step, and each row's
time step (for cells whose statistics depend on it)."""

from __future__ import annotations

import torch
from torch import Tensor

from rnnlab.fast.onednn import linear


def valid_masks(lengths: Tensor | None, steps: int) -> list[Tensor] | None:
    """``[B, 1]`` bool masks, one per step: is the step within the sequence's length."""
    if lengths is None:
        return None
    t = torch.arange(steps, device=lengths.device).unsqueeze(1)
    return list((t < lengths).unsqueeze(-1).unbind(0))


def step_indices(start: Tensor, steps: int, lengths: Tensor | None, reverse: bool) -> Tensor:
    """``[T, B]``: the time step of each row when the loop reaches position ``t`` — ``start``
    plus the valid steps the row has already taken (the reference loop's step counter)."""
    t = torch.arange(steps, device=start.device).unsqueeze(1)
    length = torch.full_like(start, steps) if lengths is None else lengths
    taken = (length - 1 - t).clamp(min=0) if reverse else torch.minimum(t, length)
    return start + taken


def fast_tanh(x: Tensor) -> Tensor:
    """``tanh(x)`` computed as ``2 * sigmoid(2 x) - 1``: torch's CPU sigmoid kernel is vectorised
    but its tanh is not always (measured here: about 40x slower on a [32, 256] float tensor)."""
    return torch.sigmoid(x * 2).mul_(2).sub_(1)


def linear_steps(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``x @ weight.T (+ bias)`` for all steps of ``x [T, B, I]`` as one matrix product (through
    oneDNN on CPU: :mod:`rnnlab.fast.onednn`)."""
    return linear(x, weight, bias)
