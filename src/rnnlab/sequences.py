"""Utilities over time-major batches and recurrent states, shared by every layer.

Shapes (T = time steps, B = batch):

=========  ====================================================================
x          ``[T, B, ...]``
lengths    ``[B]`` integers in ``1..T``; steps at or past a length are padding
state      one tensor ``[B, ...]`` or a NamedTuple of such tensors
=========  ====================================================================
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from rnnlab.errors import ConfigError

State = Tensor | tuple[Tensor, ...]
"""A cell's recurrent state: one tensor ``[B, H]`` or a NamedTuple of such tensors."""


def check_lengths(
    lengths: Tensor | list[int] | None, steps: int, batch: int, device
) -> Tensor | None:
    """Validate ``lengths``; return it as a long tensor on ``device`` (or ``None``)."""
    if lengths is None:
        return None
    lengths = torch.as_tensor(lengths, dtype=torch.long, device=device)
    if lengths.shape != (batch,):
        raise ConfigError(
            f"lengths must have shape [{batch}] (one per sequence), got {list(lengths.shape)}"
        )
    if bool((lengths < 1).any()) or bool((lengths > steps).any()):
        raise ConfigError(f"every length must be between 1 and the number of steps {steps}")
    return lengths


def reverse_padded(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each sequence of ``x [T, B, ...]`` within its own length; padding stays in place."""
    if lengths is None:
        return x.flip(0)
    steps = x.shape[0]
    t = torch.arange(steps, device=x.device).unsqueeze(1)
    index = torch.where(t < lengths, lengths - 1 - t, t)
    return x.gather(0, index.view(steps, -1, *([1] * (x.dim() - 2))).expand_as(x))


def map_state(fn: Callable[..., Tensor], *states: State) -> State:
    """Apply ``fn`` to matching tensors of one or more states of the same structure."""
    first = states[0]
    if isinstance(first, Tensor):
        return fn(*states)
    return type(first)(*(fn(*parts) for parts in zip(*states)))


def state_batch_select(mask: Tensor, new: State, old: State) -> State:
    """Per batch row: ``new`` where ``mask`` ([B] bool) is true, else ``old``.

    An ``old`` state missing ``new``'s trailing fields (torch's ``h`` or ``(h, c)`` handed to a cell
    whose state also counts time steps) counts as zeros there."""
    if not isinstance(new, Tensor):
        parts = [old] if isinstance(old, Tensor) else list(old)
        if len(parts) < len(new):
            old = type(new)(*parts, *(torch.zeros_like(part) for part in new[len(parts) :]))
    return map_state(
        lambda n, o: torch.where(mask.view(-1, *([1] * (n.dim() - 1))), n, o), new, old
    )
