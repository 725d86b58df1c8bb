"""Normalisation inside recurrent cells: recurrent batch norm (Cooijmans et al. 2017), the
differentiable form the cells' steps use; layer norm (Ba et al. 2016) is torch's ``nn.LayerNorm``.
The hand-written forms of the fused paths are in :mod:`rnnlab.fast.norm_steps`.

Recurrent batch norm keeps separate statistics for every time step. A cell that uses it carries
its time step in its state (``step [B]``, the number of steps each sequence has taken), so the
statistics follow each sequence even across calls (truncated BPTT, generation one step at a time).

=========  ===============================================================================
x          ``[B, F]`` one step's pre-activations (F features)
step       ``[B]`` long, the time step of each row
running_*  ``[S, F]`` population mean and variance of each of the S steps seen in training
=========  ===============================================================================
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def state_steps(state, h: Tensor) -> Tensor:
    """Each row's time step: ``state.step``, or zeros for a state that carries none (torch's
    ``(h, c)`` layout, as the drop-in layers hand over: the statistics restart at step 0)."""
    step = getattr(state, "step", None)
    return torch.zeros(h.shape[0], dtype=torch.long, device=h.device) if step is None else step


class RecurrentBatchNorm(nn.Module):
    """Batch normalisation with per-time-step statistics (Cooijmans et al. 2017).

    Training: ``y = gamma * (x - mean_B(x)) / sqrt(var_B(x) + eps) + beta`` with the statistics of
    the batch at this step, and the population statistics of step ``t = max(step)`` move towards
    them by ``momentum``. Evaluation: each row uses the population statistics of its own step;
    steps beyond the longest seen in training reuse the last step's statistics.

    Args:
        features: F.
        bias: learn ``beta`` (Cooijmans et al. use it only for the cell; the gates have one bias).
        gamma: initial gain (0.1, Cooijmans et al.: keeps tanh and sigmoid out of saturation).
        momentum: running statistics update rate.
        eps: added to the variance.
    """

    def __init__(
        self,
        features: int,
        bias: bool = False,
        gamma: float = 0.1,
        momentum: float = 0.1,
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.features, self.momentum, self.eps = features, momentum, eps
        self.weight = nn.Parameter(torch.full((features,), float(gamma)))
        self.bias = nn.Parameter(torch.zeros(features)) if bias else None
        self.register_buffer("running_mean", torch.zeros(0, features))
        self.register_buffer("running_var", torch.zeros(0, features))

    @property
    def steps_seen(self) -> int:
        return self.running_mean.shape[0]

    def grow(self, steps: int) -> None:
        """Make room for the statistics of ``steps`` time steps (new steps: mean 0, variance 1)."""
        extra = steps - self.steps_seen
        if extra > 0:
            mean, var = self.running_mean, self.running_var
            self.running_mean = torch.cat([mean, mean.new_zeros(extra, self.features)])
            self.running_var = torch.cat([var, var.new_ones(extra, self.features)])

    def population(self, step: Tensor) -> tuple[Tensor, Tensor]:
        """Population mean and ``1 / sqrt(var + eps)`` of each row's step: two ``[..., F]``."""
        if self.steps_seen == 0:
            self.grow(1)
        index = step.clamp(max=self.steps_seen - 1)
        if index.dim() == 2 and index.shape[1] > 1 and bool((index == index[:, :1]).all()):
            index = index[:, :1]  # all rows at the same step: one row per step, broadcast
        return self.running_mean[index], torch.rsqrt(self.running_var[index] + self.eps)

    def forward(self, x: Tensor, step: Tensor) -> Tensor:
        if self.training:
            slot = int(step.max())
            self.grow(slot + 1)
            return F.batch_norm(
                x,
                self.running_mean[slot],
                self.running_var[slot],
                self.weight,
                self.bias,
                True,
                self.momentum,
                self.eps,
            )
        mean, rstd = self.population(step)
        y = (x - mean) * rstd * self.weight
        return y if self.bias is None else y + self.bias

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        saved = state_dict.get(prefix + "running_mean")
        if saved is not None:
            self.running_mean = self.running_mean.new_zeros(saved.shape)
            self.running_var = self.running_var.new_ones(saved.shape)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return f"{self.features}, steps_seen={self.steps_seen}, momentum={self.momentum}"
