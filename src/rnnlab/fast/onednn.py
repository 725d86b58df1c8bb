"""Matrix products of the fused loops through oneDNN on CPU.

torch's dense ``addmm``/``mm`` call MKL's sgemm, which on some CPUs (measured here: an AMD EPYC
with AVX-512) runs at about half the speed of oneDNN's matmul for the shapes of a recurrent step
(``[32, 256] @ [256, 1024]``: 200 us against 95 us with a weight reordered once); torch.nn.LSTM
itself runs on oneDNN. So for float32 tensors on CPU the fused paths multiply through oneDNN:

- :class:`StepWeight`: a weight ``W [N, K]`` reordered once per call for the many products
  ``x @ W.T`` of the steps (optionally ``+ other``), from 8 steps on;
- :func:`matmul_t`: ``a.T @ b`` for the weight gradients over all steps (from 64 rows on);
- :func:`linear`: ``x @ W.T + b`` with autograd (the input projections of all steps; 64 rows).

Everything else (float64, other devices, a torch built without oneDNN, or ``RNNLAB_ONEDNN=0``)
uses torch's ordinary products; results agree to float32 rounding.
"""

from __future__ import annotations

import os

import torch
from torch import Tensor

_LINEAR = (
    getattr(torch.ops.mkldnn, "_linear_pointwise", None)
    if torch.backends.mkldnn.is_available()
    else None
)


REORDER_STEPS = 8  # fewer steps: torch's products (see StepWeight)
MIN_ROWS = 64  # fewer rows in a whole-sequence product: torch's (oneDNN reorders the weight)


def _tracing() -> bool:
    return torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export()


def uses_onednn(*tensors: Tensor) -> bool:
    """True when the products of these tensors go through oneDNN (never while a graph is being
    traced or exported: there the plain product keeps the batch size symbolic)."""
    if _LINEAR is None or os.environ.get("RNNLAB_ONEDNN", "1") == "0" or _tracing():
        return False
    return all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors)


class StepWeight:
    """``W [N, K]`` prepared for ``steps`` products ``x [B, K] @ W.T`` (one per step): reordered
    once for oneDNN when there are enough steps to pay for it (the reorder of a [2048, 512] matrix
    costs about five products; oneDNN with a weight not reordered reorders it in every call)."""

    def __init__(self, weight: Tensor, batch: int, steps: int) -> None:
        self.onednn = uses_onednn(weight) and steps >= REORDER_STEPS
        weight = weight.detach()
        if self.onednn:
            self.packed = torch.ops.mkldnn._reorder_linear_weight(weight.contiguous(), batch)
        else:
            self.weight_t = weight.t()

    def __call__(self, x: Tensor, other: Tensor | None = None) -> Tensor:
        """``x @ W.T`` (``+ other [B, N]`` when given)."""
        if self.onednn:  # (oneDNN's fused "add" measured 35 us slower per step than add_)
            y = _LINEAR(x.contiguous(), self.packed, None, "none", [], "")
            return y if other is None else y.add_(other)
        if other is None:
            return x @ self.weight_t
        return torch.addmm(other, x, self.weight_t)


def packed_weight(weight: Tensor, batch: int, steps: int) -> Tensor | None:
    """``weight`` reordered once for oneDNN's per-step products when :class:`StepWeight` would,
    else ``None`` (the native loops then use plain products)."""
    step = StepWeight(weight, batch, steps)
    return step.packed if step.onednn else None


def matmul_t(a: Tensor, b: Tensor) -> Tensor:
    """``a.T @ b`` for ``a [M, N]``, ``b [M, K]``: ``[N, K]`` (a weight gradient over all steps)."""
    if (
        uses_onednn(a, b) and a.shape[0] >= MIN_ROWS
    ):  # as (b.T @ a).T: measured twice as fast as a.T @ b through oneDNN
        return _LINEAR(b.t(), a.t(), None, "none", [], "").t().contiguous()
    return a.t() @ b


class _Linear(torch.autograd.Function):
    """``x @ W.T + b`` with forward and backward through oneDNN."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _LINEAR(x, weight.contiguous(), bias, "none", [], "")

    @staticmethod
    def backward(ctx, dy):
        x, weight = ctx.saved_tensors
        dx = dw = db = None
        if torch.is_grad_enabled():  # create_graph: products autograd can differentiate again
            dx = dy @ weight if ctx.needs_input_grad[0] else None
            dw = dy.t() @ x if ctx.needs_input_grad[1] else None
            db = dy.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
            return dx, dw, db
        dy = dy.contiguous()
        if ctx.needs_input_grad[0]:
            dx = _LINEAR(dy, weight.t().contiguous(), None, "none", [], "")
        if ctx.needs_input_grad[1]:
            dw = matmul_t(dy, x)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            db = dy.sum(0)
        return dx, dw, db


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x [..., K] @ weight.T [K, N] + bias [N]`` as one product over all leading dimensions."""
    flat = x.reshape(-1, x.shape[-1])
    if uses_onednn(flat, weight, *([] if bias is None else [bias])) and len(flat) >= MIN_ROWS:
        y = _Linear.apply(flat.contiguous(), weight, bias)
    elif bias is None:
        y = flat @ weight.T
    else:
        y = torch.addmm(bias, flat, weight.T)
    return y.view(*x.shape[:-1], -1)
