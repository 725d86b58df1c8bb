"""Whole-sequence inference of the fused LSTM/GRU variants in one native call.

Without autograd the fused paths need no saved activations, so the whole time loop runs in C++
(``lstm_sequence`` / ``gru_sequence`` in ``native_kernels.cpp``): per step one product with the
recurrent matrix (through oneDNN with the weight packed once, as :class:`StepWeight`, for
float32 on CPU), then one vectorised pass over each row for the normalisation of the recurrent
term, the input term (all steps computed before the call) and the gate maths. No Python runs per
step. The functions here return ``None`` when that path cannot run — native kernels off or not
built (:mod:`rnnlab.fast.native`), tensors not float32/float64 on CPU, regularizer masks, or
batch norm in training mode (its running statistics move at every step) — and the caller then
runs its Python loop.

=========  =================================================================================
xg, xp     ``[T, B, G*H]`` input terms of all steps (biases and input normalisation included)
h, c       ``[B, H or P]``, ``[B, H]`` initial state
lengths    ``[B]`` long or ``None``: rows past their length keep their state and output zero
y          ``[T, B, H or P]``
=========  =================================================================================
"""

from __future__ import annotations

import torch
from torch import Tensor

from rnnlab.fast.native import native_for
from rnnlab.fast.onednn import StepWeight
from rnnlab.regularize.normalization import BatchNormStep, LayerNormStep, StepNorm

NO_NORM, LAYER_NORM, AFFINE = 0, 1, 2  # the kinds of normalisation the kernels know


def norm_arguments(norm: StepNorm | None, like: Tensor) -> tuple[int, Tensor, Tensor, float] | None:
    """``(kind, a, b, eps)`` describing ``norm`` to the kernels: layer norm with gain ``a [F]``
    and shift ``b [F]`` (empty when absent); batch norm at evaluation as the affine map
    ``x * a + b`` with ``a``, ``b [T, 1 or B, F]`` (population statistics, gain and shift folded);
    ``None`` for batch norm in training."""
    empty = like.new_empty(0)
    if norm is None:
        return NO_NORM, empty, empty, 0.0
    if isinstance(norm, LayerNormStep):
        weight, bias = norm.params
        features = like.shape[-1] if weight is None else weight.shape[0]
        gain = like.new_ones(features) if weight is None else weight.detach()
        return LAYER_NORM, gain, empty if bias is None else bias.detach(), float(norm.eps)
    if isinstance(norm, BatchNormStep) and not norm.training:
        return AFFINE, norm.scale.detach(), norm.shift.detach(), 0.0
    return None


def _packed(weight: Tensor, batch: int, steps: int) -> Tensor | None:
    """``weight`` reordered for oneDNN's per-step products when :class:`StepWeight` would."""
    step = StepWeight(weight, batch, steps)
    return step.packed if step.onednn else None


def _lengths(lengths: Tensor | None, like: Tensor) -> Tensor:
    empty = torch.empty(0, dtype=torch.long, device=like.device)
    return empty if lengths is None else lengths.to(torch.long)


def lstm_sequence(
    xg: Tensor,
    h: Tensor,
    c: Tensor,
    w_hh: Tensor,
    peephole: Tensor | None,
    w_hr: Tensor | None,
    coupled: bool,
    norm_hh: StepNorm | None,
    norm_c: StepNorm | None,
    lengths: Tensor | None,
    reverse: bool,
) -> tuple[Tensor, Tensor, Tensor] | None:
    """The LSTM forward of :func:`rnnlab.fast.fused_lstm.lstm_forward` in one native call:
    ``(y, h, c)``, or ``None`` when it cannot run here."""
    ops = native_for(xg, h, c, w_hh, peephole, w_hr)
    if ops is None:
        return None
    hh, cell = norm_arguments(norm_hh, xg), norm_arguments(norm_c, c)
    if hh is None or cell is None:
        return None
    if cell[0] == LAYER_NORM and cell[2].numel() == 0:  # the kernel's cell norm has a shift
        cell = (cell[0], cell[1], torch.zeros_like(cell[1]), cell[3])
    steps, batch = xg.shape[:2]
    empty = xg.new_empty(0)
    y, h, c = ops.lstm_sequence(
        xg,
        h,
        c,
        w_hh.t(),
        _packed(w_hh, batch, steps),
        empty if peephole is None else peephole.contiguous(),
        empty if w_hr is None else w_hr.t(),
        None if w_hr is None else _packed(w_hr, batch, steps),
        _lengths(lengths, xg),
        reverse,
        coupled,
        *hh,
        *cell,
    )
    return y, h, c


def gru_sequence(
    xp: Tensor,
    h: Tensor,
    w_hh: Tensor,
    b_hh: Tensor | None,
    norm_hh: StepNorm | None,
    lengths: Tensor | None,
    reverse: bool,
) -> tuple[Tensor, Tensor] | None:
    """The GRU forward of :func:`rnnlab.fast.fused_gru.gru_forward` in one native call:
    ``(y, h)``, or ``None`` when it cannot run here."""
    ops = native_for(xp, h, w_hh, b_hh)
    if ops is None:
        return None
    hh = norm_arguments(norm_hh, xp)
    if hh is None:
        return None
    steps, batch = xp.shape[:2]
    y, h = ops.gru_sequence(
        xp,
        h,
        w_hh.t(),
        _packed(w_hh, batch, steps),
        _lengths(lengths, xp),
        reverse,
        *hh,
        xp.new_empty(0) if b_hh is None else b_hh,
    )
    return y, h
