"""Whole-sequence inference of the fused LSTM/GRU variants in one native call.

Without autograd the fused paths need no saved activations, so the whole time loop runs in C++
(``lstm_sequence`` / ``gru_sequence`` in ``native_kernels.cpp``): the input products of all steps
in one matrix product before the call; per step one product with the recurrent matrix (through
oneDNN with the weight packed once, as :class:`StepWeight`, for float32 on CPU), then for each
row one vectorised loop over the hidden units that forms the pre-activations — the input and
recurrent products, each normalised on the fly (layer norm, or batch norm's population
statistics as an affine map), plus the bias — and does the gate maths, and a short loop that
normalises the cell. No Python runs per step, and no ``[T, B, G*H]`` temporary is made beyond
the input products.

The functions here return ``None`` when that path cannot run — native kernels off or not
built (:mod:`rnnlab.fast.native`), tensors not float32/float64 on CPU, a graph being traced or
exported, or batch norm in training mode (its running statistics move at every step) — and
the caller (which also keeps regularizer masks and gradients away from it) then runs its Python
loop.

=========  =================================================================================
x          ``[T, B, I]``
h, c       ``[B, H or P]``, ``[B, H]`` initial state
lengths    ``[B]`` long or ``None``: rows past their length keep their state and output zero
y          ``[T, B, H or P]``
=========  =================================================================================
"""

from __future__ import annotations

import torch
from torch import Tensor

from rnnlab.fast.loop import linear_steps, step_indices
from rnnlab.fast.native import native_for, step_weight
from rnnlab.fast.norm_steps import BatchNormStep, LayerNormStep, StepNorm
from rnnlab.fast.onednn import _tracing

NO_NORM, LAYER_NORM, AFFINE = 0, 1, 2  # the kinds of normalisation the kernels know


def norm_arguments(norm: StepNorm | None, like: Tensor) -> tuple[int, Tensor, Tensor, float]:
    """``(kind, a, b, eps)`` describing ``norm`` to the kernels: layer norm with gain ``a [F]``
    and shift ``b [F]`` (empty when absent); batch norm at evaluation as the affine map
    ``x * a + b`` with ``a``, ``b [T, 1 or B, F]`` (population statistics, gain and shift
    folded)."""
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
    raise ValueError(f"no native form of {type(norm).__name__} in training")


def needs_grad(cell, *tensors: Tensor | None) -> bool:
    """True when autograd must see the loop: gradients are on and an input, state or parameter
    of ``cell`` requires them."""
    if not torch.is_grad_enabled():
        return False
    if any(t is not None and t.requires_grad for t in tensors):
        return True
    return any(p.requires_grad for p in cell.parameters())


def _lengths(lengths: Tensor | None, like: Tensor) -> Tensor:
    empty = torch.empty(0, dtype=torch.long, device=like.device)
    return empty if lengths is None else lengths.to(torch.long)


def _vector(t: Tensor | None, like: Tensor) -> Tensor:
    return like.new_empty(0) if t is None else t.detach()


def _input_products(cell, x: Tensor, normalised: bool, bias: Tensor | None):
    """The input products of all steps and the bias the kernel adds at each step: with a
    normalised input term, ``W_ih x`` (normalised row by row inside the loop, where the row is in
    cache, instead of in passes over the whole ``[T, B, G*H]`` tensor) and ``bias``; else
    ``cell.precompute(x)`` (bias included) and no bias."""
    if not normalised:
        xg = cell.precompute(x)
        return xg, xg.new_empty(0)
    xg = linear_steps(x, cell.weight_ih, None)
    return xg, _vector(bias, xg)


def _batch_norms(cell, names: tuple[str, ...], step, steps, lengths, reverse):
    """The cell's batch norms at evaluation as step norms; ``None`` in training."""
    modules = [getattr(cell, name) for name in names]
    if any(m.training for m in modules):
        return None
    t_index = step_indices(step, steps, lengths, reverse)
    return [BatchNormStep(m, t_index) for m in modules]


def lstm_inference(
    cell,
    x: Tensor,
    h: Tensor,
    c: Tensor,
    step: Tensor | None,
    lengths: Tensor | None,
    reverse: bool,
) -> tuple[Tensor, Tensor, Tensor] | None:
    """``cell`` (an ``LSTMCell``) over ``x [T, B, I]`` from ``h``, ``c`` (and each row's time
    ``step`` with batch norm) in one native call: ``(y, h, c)`` as ``unroll``, or ``None`` when
    that cannot run here. Call without gradients (:func:`needs_grad`)."""
    ops = None if _tracing() else native_for(x, h, c)  # a traced graph keeps torch's operations
    if ops is None:
        return None
    steps, batch = x.shape[:2]
    norm_in = norm_hh = norm_c = None
    if cell.batch_norm:
        norms = _batch_norms(cell, ("bn_ih", "bn_hh", "bn_c"), step, steps, lengths, reverse)
        if norms is None:
            return None
        norm_in, norm_hh, norm_c = norms
    elif cell.layer_norm:
        norm_in = LayerNormStep(cell.ln_ih.weight, None, cell.ln_ih.eps)
        norm_hh = LayerNormStep(cell.ln_hh.weight, None, cell.ln_hh.eps)
        norm_c = LayerNormStep(cell.ln_c.weight, cell.ln_c.bias, cell.ln_c.eps)
    xg, bias = _input_products(cell, x, norm_in is not None, cell.gate_bias())
    kind, *in_norm = norm_arguments(norm_in, xg)
    _, *hh_norm = norm_arguments(norm_hh, xg)
    cell_norm = norm_arguments(norm_c, c)
    if cell_norm[0] == LAYER_NORM and cell_norm[2].numel() == 0:  # the kernel wants a shift
        cell_norm = (LAYER_NORM, cell_norm[1], torch.zeros_like(cell_norm[1]), cell_norm[3])
    w_hh, w_hr, peephole = cell.weight_hh.detach(), cell.weight_hr, cell.weight_peephole
    y, h, c = ops.lstm_sequence(
        xg,
        h,
        c,
        w_hh.t(),
        step_weight(ops, w_hh, batch, steps),
        _vector(peephole, xg),
        xg.new_empty(0) if w_hr is None else w_hr.detach().t(),
        None if w_hr is None else step_weight(ops, w_hr.detach(), batch, steps),
        _lengths(lengths, xg),
        reverse,
        cell.coupled,
        kind,
        *in_norm,
        *hh_norm,
        bias,
        *cell_norm,
    )
    return y, h, c


def gru_inference(
    cell, x: Tensor, h: Tensor, step: Tensor | None, lengths: Tensor | None, reverse: bool
) -> tuple[Tensor, Tensor] | None:
    """``cell`` (a ``GRUCell``) over ``x [T, B, I]`` from ``h`` (and each row's time ``step``
    with batch norm) in one native call: ``(y, h)`` as ``unroll``, or ``None`` when that cannot
    run here. Call without gradients (:func:`needs_grad`)."""
    ops = None if _tracing() else native_for(x, h)
    if ops is None:
        return None
    steps, batch = x.shape[:2]
    norm_in = norm_hh = None
    if cell.batch_norm:
        norms = _batch_norms(cell, ("bn_ih", "bn_hh"), step, steps, lengths, reverse)
        if norms is None:
            return None
        norm_in, norm_hh = norms
    elif cell.layer_norm:
        norm_in = LayerNormStep(cell.ln_ih.weight, None, cell.ln_ih.eps)
        norm_hh = LayerNormStep(cell.ln_hh.weight, None, cell.ln_hh.eps)
    xp, b_ih = _input_products(cell, x, norm_in is not None, cell.bias_ih)
    kind, *in_norm = norm_arguments(norm_in, xp)
    _, *hh_norm = norm_arguments(norm_hh, xp)
    w_hh = cell.weight_hh.detach()
    y, h = ops.gru_sequence(
        xp,
        h,
        w_hh.t(),
        step_weight(ops, w_hh, batch, steps),
        _lengths(lengths, xp),
        reverse,
        kind,
        *in_norm,
        *hh_norm,
        b_ih,
        _vector(cell.bias_hh, xp),
    )
    return y, h
