"""Initialisation schemes for recurrent weight matrices.

Recurrent matrices are stacked per gate (torch's layout: ``[gates * H, H]``). Every scheme is
applied to each ``H x H`` gate block separately:

- ``"orthogonal"`` (default): each block is a random orthogonal matrix, so at initialisation the
  linear part of the recurrence neither shrinks nor grows the state (Saxe et al. 2014).
- ``"uniform"``: U(-1/sqrt(H), 1/sqrt(H)), torch.nn's default.
- ``"identity"``: each block is the identity (Le et al. 2015, IRNN); for non-square blocks
  (projection) the rectangular identity.

Gate biases: :func:`chrono_bias` draws the chrono initialisation of a forget (LSTM) or update
(GRU) gate bias (Tallec and Ollivier 2018), which spreads the units' initial memory time scales
over ``1 .. T_max`` steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils import parametrize

from rnnlab.errors import ConfigError

RECURRENT_INITS = ("orthogonal", "uniform", "identity")


def init_recurrent_(weight: torch.Tensor, gates: int, scheme: str = "orthogonal") -> None:
    """Initialise a stacked recurrent matrix ``[gates * H, K]`` in place, block by block."""
    if scheme not in RECURRENT_INITS:
        raise ConfigError(
            f"unknown recurrent init {scheme!r}; choose one of {', '.join(RECURRENT_INITS)}"
        )
    rows = weight.shape[0] // gates
    with torch.no_grad():
        for block in weight.split(rows, dim=0):
            if scheme == "orthogonal":
                nn.init.orthogonal_(block)
            elif scheme == "identity":
                nn.init.eye_(block)
            else:
                bound = 1.0 / math.sqrt(rows)
                nn.init.uniform_(block, -bound, bound)


def check_chrono(chrono: int) -> int:
    """Validate a ``chrono`` keyword: 0 (off) or the longest dependency ``T_max >= 3``."""
    if isinstance(chrono, bool) or not isinstance(chrono, int) or chrono < 0 or 0 < chrono < 3:
        raise ConfigError(
            f"chrono must be 0 (off) or the longest dependency in steps, at least 3; got {chrono!r}"
        )
    return chrono


def chrono_bias(hidden_size: int, max_steps: int) -> torch.Tensor:
    """Chrono initialisation of a gate bias ``[H]``: ``log(u)``, ``u ~ U(1, max_steps - 1)``.

    A unit whose keep gate is ``sigmoid(log(u)) = u / (1 + u)`` forgets with a time constant of
    about ``u`` steps, so the units start with memory spans spread over ``1 .. max_steps``
    (Tallec and Ollivier 2018, "Can recurrent neural networks warp time?").
    """
    return torch.empty(hidden_size).uniform_(1.0, max_steps - 1.0).log_()


def init_uniform_(tensor: torch.Tensor, hidden_size: int) -> None:
    """torch.nn's default for RNN weights and biases: U(-1/sqrt(H), 1/sqrt(H))."""
    bound = 1.0 / math.sqrt(hidden_size)
    with torch.no_grad():
        nn.init.uniform_(tensor, -bound, bound)


def reset_weight_(module: nn.Module, name: str, fill: Callable[[torch.Tensor], None]) -> None:
    """Re-initialise ``module.<name>`` with ``fill`` (in place), also when the weight is
    parametrised (weight normalisation): then the filled weight is assigned through the
    parametrisation, which recomputes its factors."""
    if parametrize.is_parametrized(module, name):
        weight = torch.empty_like(getattr(module, name))
        fill(weight)
        with torch.no_grad():
            setattr(module, name, weight)
    else:
        fill(getattr(module, name))
