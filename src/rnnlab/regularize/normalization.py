"""Normalisation inside recurrent cells: layer norm (Ba et al. 2016) and recurrent batch norm
(Cooijmans et al. 2017), each with a differentiable form for the reference step and a step form
with a hand-written backward for the fused paths of ``rnnlab.fast``.

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

from rnnlab.fast.native import native_for
from rnnlab.fast.onednn import _tracing


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

    def normalize_steps(self, x: Tensor, steps: Tensor, shift: Tensor | None = None) -> Tensor:
        """Many steps at once, as ``forward`` at each step in order: ``x [T, B, F]``,
        ``steps [T, B]``; plus ``shift [F]`` when given (a bias added in the same pass).
        Differentiable (in training through the native kernels, where they run, once only); the
        running statistics move step by step."""
        if shift is not None:
            shift = shift if self.bias is None else self.bias + shift
        else:
            shift = self.bias
        if not self.training:
            mean, rstd = self.population(steps)
            y = (x - mean) * rstd * self.weight
            return y if shift is None else y + shift
        slots = steps.max(1).values.tolist()
        ops = None if _tracing() or x.shape[1] < 2 else native_for(x)
        if ops is not None and self.running_mean.dtype == x.dtype:
            self.grow(max(slots) + 1)
            return _BatchNormSteps.apply(x, self.weight, shift, self, slots, ops)
        if x.shape[1] > 1 and slots == list(range(slots[0], slots[0] + x.shape[0])):
            return self._normalize_consecutive(x, slots[0], shift)
        mean = x.mean(1, keepdim=True)
        var = x.var(1, unbiased=False, keepdim=True)
        y = (x - mean) * torch.rsqrt(var + self.eps) * self.weight
        if shift is not None:
            y = y + shift
        with torch.no_grad():
            self.grow(max(slots) + 1)
            rows = x.shape[1]
            unbiased = var.squeeze(1) * (rows / max(rows - 1, 1))
            for t, slot in enumerate(slots):
                self.running_mean[slot].lerp_(mean[t, 0], self.momentum)
                self.running_var[slot].lerp_(unbiased[t], self.momentum)
        return y

    def _normalize_consecutive(self, x: Tensor, first: int, shift: Tensor | None) -> Tensor:
        """``normalize_steps`` when the steps are ``first, first + 1, ...``: one batch norm over
        ``[B, T * F]`` (a channel per step and feature), updating the running statistics of the
        T slots in place (measured 4x faster than the formula above, forward and backward)."""
        steps, rows, features = x.shape
        self.grow(first + steps)
        y = F.batch_norm(
            x.transpose(0, 1).reshape(rows, steps * features),
            self.running_mean[first : first + steps].view(-1),
            self.running_var[first : first + steps].view(-1),
            self.weight.repeat(steps),
            None if shift is None else shift.repeat(steps),
            True,
            self.momentum,
            self.eps,
        )
        return y.view(rows, steps, features).transpose(0, 1)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        saved = state_dict.get(prefix + "running_mean")
        if saved is not None:
            self.running_mean = self.running_mean.new_zeros(saved.shape)
            self.running_var = self.running_var.new_ones(saved.shape)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return f"{self.features}, steps_seen={self.steps_seen}, momentum={self.momentum}"


class _BatchNormSteps(torch.autograd.Function):
    """:meth:`RecurrentBatchNorm.normalize_steps` in training in one native call each way
    (``batch_norm_steps`` in ``rnnlab/fast/native_kernels.cpp``): ``x [T, B, F]`` stays in its
    layout, where one batch norm over ``[B, T * F]`` copies it (and its gradient) twice."""

    @staticmethod
    def forward(ctx, x, weight, bias, norm: RecurrentBatchNorm, slots: list[int], ops):
        shift = x.new_empty(0) if bias is None else bias.detach()
        y, hat, invstd = ops.batch_norm_steps(
            x.detach(),
            weight.detach(),
            shift,
            norm.eps,
            norm.momentum,
            norm.running_mean,
            norm.running_var,
            torch.tensor(slots, dtype=torch.long),
        )
        ctx.save_for_backward(hat, invstd, weight)
        ctx.ops, ctx.has_bias = ops, bias is not None
        return y

    @staticmethod
    def backward(ctx, dy):
        hat, invstd, weight = ctx.saved_tensors
        dx, dw, db = ctx.ops.batch_norm_steps_backward(dy, hat, invstd, weight.detach())
        return dx, dw, db if ctx.has_bias else None, None, None, None


class StepNorm:
    """A normalisation inside a fused loop: ``forward(x, t) -> (y, saved)`` without autograd and
    ``backward(dy, saved) -> dx``, summing the parameter gradients into ``grads``."""

    params: tuple[Tensor | None, ...]
    grads: list[Tensor | None]

    def forward(self, x: Tensor, t: int) -> tuple[Tensor, tuple]:
        raise NotImplementedError

    def backward(self, dy: Tensor, saved: tuple) -> Tensor:
        raise NotImplementedError

    def zero_grads(self) -> None:
        self.grads = [None] * len(self.params)

    def _accumulate(self, *grads: Tensor | None) -> None:
        for k, g in enumerate(grads):
            if g is not None:
                self.grads[k] = g if self.grads[k] is None else self.grads[k] + g


class LayerNormStep(StepNorm):
    """Layer norm over the last dimension, with optional gain and shift (torch's kernels)."""

    def __init__(self, weight: Tensor | None, bias: Tensor | None, eps: float) -> None:
        self.params, self.grads, self.eps = (weight, bias), [None, None], eps

    def forward(self, x, t):
        weight, bias = self.params
        y, mean, rstd = torch.native_layer_norm(x, x.shape[-1:], weight, bias, self.eps)
        return y, (x, mean, rstd)

    def backward(self, dy, saved):
        x, mean, rstd = saved
        weight, bias = self.params
        ops = native_for(dy, x)
        if ops is not None and x.dim() == 2:  # dx, and the parameter gradients added in place
            for k, param in enumerate(self.params):
                if param is not None and self.grads[k] is None:
                    self.grads[k] = torch.zeros_like(param, memory_format=torch.contiguous_format)
            empty = dy.new_empty(0)
            dw, db = (empty if g is None else g for g in self.grads)
            w = empty if weight is None else weight.detach()
            return ops.layer_norm_backward(dy.contiguous(), x.contiguous(), mean, rstd, w, dw, db)
        mask = [True, weight is not None, bias is not None]
        dx, dw, db = torch.ops.aten.native_layer_norm_backward(
            dy, x, x.shape[-1:], mean, rstd, weight, bias, mask
        )
        self._accumulate(dw, db)
        return dx


class BatchNormStep(StepNorm):
    """A :class:`RecurrentBatchNorm` at the steps ``steps [T, B]`` of a fused loop."""

    def __init__(self, norm: RecurrentBatchNorm, steps: Tensor) -> None:
        self.norm, self.training = norm, norm.training
        self.params, self.grads = (norm.weight, norm.bias), [None, None]
        if self.training:
            self.slots = steps.max(1).values.tolist()
            norm.grow(max(self.slots) + 1)
        else:
            self.mean, self.rstd = norm.population(steps)
            self.scale = self.rstd * norm.weight.detach()
            self.shift = -self.mean * self.scale  # y = x * scale + shift (+ beta): one operation
            if norm.bias is not None:
                self.shift = self.shift + norm.bias.detach()

    def forward(self, x, t):
        norm = self.norm
        weight = norm.weight.detach()
        bias = None if norm.bias is None else norm.bias.detach()
        if self.training:
            slot = self.slots[t]
            y, mean, invstd = torch.native_batch_norm(
                x,
                weight,
                bias,
                norm.running_mean[slot],
                norm.running_var[slot],
                True,
                norm.momentum,
                norm.eps,
            )
            return y, (x, mean, invstd)
        return torch.addcmul(self.shift[t], x, self.scale[t]), (x, t)

    def backward(self, dy, saved):
        norm = self.norm
        if self.training:
            x, mean, invstd = saved
            mask = [True, True, norm.bias is not None]
            dx, dw, db = torch.ops.aten.native_batch_norm_backward(
                dy, x, norm.weight.detach(), None, None, mean, invstd, True, norm.eps, mask
            )
            self._accumulate(dw, db)
            return dx
        x, t = saved
        xhat = (x - self.mean[t]) * self.rstd[t]
        self._accumulate((dy * xhat).sum(0), dy.sum(0) if norm.bias is not None else None)
        return dy * self.scale[t]
