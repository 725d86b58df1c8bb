"""Bookkeeping shared by the fused loops: which rows are valid at each step, and each row's
time step (for cells whose statistics depend on it)."""

from __future__ import annotations

import torch
from torch import Tensor


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
