"""Penalties and constraints on recurrent weights and activations.

- ``recurrent_l2``: L2 on the recurrent matrices. Kept because people ask for it, with the notes'
  warning: shrinking W_hh shrinks its eigenvalues and makes the network forget faster.
- ``constrain_spectral_norm_``: after an optimiser step, rescale each gate block of W_hh so that
  ``||W||_2 <= max_norm`` (1 by default: the linear part of the recurrence cannot explode).
- ``activation_regularization`` (AR) and ``temporal_activation_regularization`` (TAR), Merity et
  al. 2017: ``alpha * mean(h_t^2)`` and ``beta * mean((h_t - h_{t-1})^2)`` on outputs ``[T, B, H]``.
- ``gradient_norm_preservation``: Pascanu et al. 2013's regulariser

      Omega = sum_k ( ||dL/dh_{k+1} . dh_{k+1}/dh_k|| / ||dL/dh_{k+1}|| - 1 )^2

  with ``dL/dh_{k+1}`` held constant, which pushes the Jacobian to preserve the norm of the
  back-propagated error in the relevant direction (against vanishing gradients).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

from rnnlab.cells.base import Cell
from rnnlab.regularize.recurrent_dropout import recurrent_part
from rnnlab.sequences import State

RECURRENT_WEIGHT_PREFIX = "weight_hh"


def _recurrent_weights(module: nn.Module) -> list[tuple[str, nn.Parameter]]:
    return [
        (name, p)
        for name, p in module.named_parameters()
        if name.rsplit(".", 1)[-1].startswith(RECURRENT_WEIGHT_PREFIX)
    ]


def recurrent_l2(module: nn.Module, weight: float) -> Tensor:
    """``weight * sum ||W_hh||_F^2`` over every recurrent matrix of ``module``."""
    warnings.warn(
        "L2 on recurrent weights shrinks the eigenvalues of W_hh and speeds up forgetting; "
        "prefer dropout, zoneout or weight noise",
        stacklevel=2,
    )
    params = _recurrent_weights(module)
    if not params:
        return torch.zeros(())
    return weight * sum(p.pow(2).sum() for _, p in params)


@torch.no_grad()
def constrain_spectral_norm_(module: nn.Module, max_norm: float = 1.0) -> dict[str, float]:
    """Rescale every ``H x K`` gate block of every ``weight_hh*`` so its spectral norm is at most
    ``max_norm``; returns each matrix's largest block norm before the constraint."""
    before = {}
    for name, weight in _recurrent_weights(module):
        cols = weight.shape[1]
        blocks = weight.split(cols, dim=0) if weight.shape[0] % cols == 0 else (weight,)
        norms = []
        for block in blocks:
            norm = torch.linalg.matrix_norm(block.float(), ord=2).item()
            norms.append(norm)
            if norm > max_norm:
                block.mul_(max_norm / norm)
        before[name] = max(norms)
    return before


def activation_regularization(h: Tensor, alpha: float) -> Tensor:
    """AR: ``alpha * mean(h^2)`` over outputs ``[T, B, H]``."""
    return alpha * h.pow(2).mean()


def temporal_activation_regularization(h: Tensor, beta: float) -> Tensor:
    """TAR: ``beta * mean((h_t - h_{t-1})^2)`` over outputs ``[T, B, H]``."""
    return beta * (h[1:] - h[:-1]).pow(2).mean()


class Trajectory(NamedTuple):
    """One pass of a cell kept step by step (what :func:`gradient_norm_penalty` needs)."""

    outputs: Tensor
    """``[T, B, H]``, as ``rnnlab.layers.unroll`` returns them."""
    states: list[State]
    """``T + 1`` states: the initial one, then the state after every step (graph nodes)."""
    inputs: tuple[Tensor, ...]
    """``T`` precomputed inputs ``cell.precompute(x)[t]``."""


def unroll_keeping_states(cell: Cell, x: Tensor, state: State | None = None) -> Trajectory:
    """The reference loop over ``x [T, B, I]`` (from zeros when ``state`` is None), keeping
    every step's state."""
    steps = cell.precompute(x).unbind(0)
    cell.begin_sequence(x.shape[1], x.device, x.dtype)
    if state is None:
        state = cell.init_state(x.shape[1], x.device, x.dtype)
    states, outputs = [state], []
    for xp_t in steps:
        y, state = cell.step(xp_t, state)
        outputs.append(y)
        states.append(state)
    return Trajectory(torch.stack(outputs), states, steps)


def gradient_norm_penalty(loss: Tensor, runs: Sequence[tuple[Cell, Trajectory]]) -> Tensor:
    """Pascanu et al.'s ``Omega`` of ``loss`` summed over the steps of every ``(cell, run)``
    (e.g. one per layer) and averaged over the batch; differentiable with respect to each cell's
    parameters (``dL/dh_{k+1}`` and the inputs are held constant). ``loss`` must depend on the
    runs' states through the graph; the graph is kept for its own backward pass."""
    hidden = [recurrent_part(s) for _, run in runs for s in run.states[1:]]
    grads = iter(torch.autograd.grad(loss, hidden, retain_graph=True, allow_unused=True))
    omega = loss.new_zeros(())
    for cell, run in runs:
        for k, xp_t in enumerate(run.inputs):
            g = next(grads)
            if g is None:
                continue
            prev = _detached_state(run.states[k])
            _, new = cell.step(xp_t.detach(), prev)
            (v,) = torch.autograd.grad(
                recurrent_part(new), recurrent_part(prev), g.detach(), create_graph=True
            )
            g_norm = g.detach().norm(dim=-1).clamp_min(1e-12)
            omega = omega + ((v.norm(dim=-1) / g_norm - 1.0) ** 2).mean()
    return omega


def gradient_norm_preservation(
    cell: Cell, x: Tensor, loss_fn: Callable[[Tensor], Tensor], state: State | None = None
) -> tuple[Tensor, Tensor]:
    """Run ``cell`` over ``x [T, B, I]`` and return ``(loss_fn(y), Omega)``.

    ``Omega`` is averaged over the batch and summed over steps; it is differentiable with respect
    to the cell's parameters (add ``lambda * Omega`` to the loss).
    """
    run = unroll_keeping_states(cell, x, state)
    loss = loss_fn(run.outputs)
    return loss, gradient_norm_penalty(loss, [(cell, run)])


def _detached_state(state: State) -> State:
    if isinstance(state, Tensor):
        return state.detach().requires_grad_()
    return type(state)(*(s.detach().requires_grad_() for s in state))
