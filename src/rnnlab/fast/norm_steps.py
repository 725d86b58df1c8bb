"""Normalisation inside the fused loops of :mod:`rnnlab.fast`: the hand-written forms of the
cells' layer norm and recurrent batch norm (:mod:`rnnlab.cells.norm`). A step form runs one
step without autograd and its backward by hand; :func:`normalize_steps` normalises the input
terms of all steps at once (through the native kernels in training, where they run).

=========  ===============================================================================
x          ``[T, B, F]`` (all steps) or ``[B, F]`` (one step's pre-activations)
steps      ``[T, B]`` long, the time step of each row at each position of the loop
=========  ===============================================================================
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnlab.cells.norm import RecurrentBatchNorm
from rnnlab.fast.native import native_for
from rnnlab.fast.onednn import _tracing


def normalize_steps(
    norm: RecurrentBatchNorm, x: Tensor, steps: Tensor, shift: Tensor | None = None
) -> Tensor:
    """``norm`` at many steps at once, as its ``forward`` at each step in order: ``x [T, B, F]``,
    ``steps [T, B]``; plus ``shift [F]`` when given (a bias added in the same pass).
    Differentiable (in training through the native kernels, where they run, once only); the
    running statistics move step by step."""
    if shift is not None:
        shift = shift if norm.bias is None else norm.bias + shift
    else:
        shift = norm.bias
    if not norm.training:
        mean, rstd = norm.population(steps)
        y = (x - mean) * rstd * norm.weight
        return y if shift is None else y + shift
    slots = steps.max(1).values.tolist()
    ops = None if _tracing() or x.shape[1] < 2 else native_for(x)
    if ops is not None and norm.running_mean.dtype == x.dtype:
        norm.grow(max(slots) + 1)
        return _BatchNormSteps.apply(x, norm.weight, shift, norm, slots, ops)
    if x.shape[1] > 1 and slots == list(range(slots[0], slots[0] + x.shape[0])):
        return _normalize_consecutive(norm, x, slots[0], shift)
    mean = x.mean(1, keepdim=True)
    var = x.var(1, unbiased=False, keepdim=True)
    y = (x - mean) * torch.rsqrt(var + norm.eps) * norm.weight
    if shift is not None:
        y = y + shift
    with torch.no_grad():
        norm.grow(max(slots) + 1)
        rows = x.shape[1]
        unbiased = var.squeeze(1) * (rows / max(rows - 1, 1))
        for t, slot in enumerate(slots):
            norm.running_mean[slot].lerp_(mean[t, 0], norm.momentum)
            norm.running_var[slot].lerp_(unbiased[t], norm.momentum)
    return y


def _normalize_consecutive(
    norm: RecurrentBatchNorm, x: Tensor, first: int, shift: Tensor | None
) -> Tensor:
    """``normalize_steps`` when the steps are ``first, first + 1, ...``: one batch norm over
    ``[B, T * F]`` (a channel per step and feature), updating the running statistics of the
    T slots in place (measured 4x faster than the formula above, forward and backward)."""
    steps, rows, features = x.shape
    norm.grow(first + steps)
    y = F.batch_norm(
        x.transpose(0, 1).reshape(rows, steps * features),
        norm.running_mean[first : first + steps].view(-1),
        norm.running_var[first : first + steps].view(-1),
        norm.weight.repeat(steps),
        None if shift is None else shift.repeat(steps),
        True,
        norm.momentum,
        norm.eps,
    )
    return y.view(rows, steps, features).transpose(0, 1)


class _BatchNormSteps(torch.autograd.Function):
    """:func:`normalize_steps` in training in one native call each way
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
