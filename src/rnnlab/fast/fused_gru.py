"""Fused unrolling of GRU variants (layer norm, batch norm, weight norm) with backward through
time written by hand (inference: the whole loop in one native call where it can run,
:mod:`rnnlab.fast.native_sequence`); same design as :mod:`rnnlab.fast.fused_lstm` and the same
maths as ``GRUCell.step`` (tested against ``rnnlab.layers.unroll``).

Recurrent dropout, DropConnect and zoneout of ``h`` run inside the loop when their masks are
given (:class:`~rnnlab.fast.regularizer_masks.RegularizerMasks`, all but ``zone_c``). As with the
``RecurrentDropout`` wrapper, the dropped ``h_{t-1}`` is the whole state entering the step (it
feeds ``W_hh`` and the ``z * h_{t-1}`` term); zoneout mixes the new ``h`` with the undropped one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from rnnlab.fast.loop import fast_tanh, linear_steps, step_indices, valid_masks
from rnnlab.fast.native import native_for
from rnnlab.fast.native_sequence import gru_inference, needs_grad
from rnnlab.fast.native_training import gru_train_backward, gru_train_forward, native_training
from rnnlab.fast.norm_steps import BatchNormStep, LayerNormStep, StepNorm, normalize_steps
from rnnlab.fast.onednn import StepWeight, matmul_t
from rnnlab.fast.regularizer_masks import RegularizerMasks, mask_parts, recurrent_weight


@dataclass
class GRUSpec:
    """The fixed (non-tensor) configuration of one fused GRU call."""

    hidden: int
    order: list[int]
    valid: list[Tensor] | None
    norm_hh: StepNorm | None
    masks: RegularizerMasks | None = None


def gru_unroll(
    cell,
    x: Tensor,
    h0: Tensor,
    step: Tensor | None,
    lengths: Tensor | None,
    reverse: bool,
    masks: RegularizerMasks | None = None,
) -> tuple[Tensor, Tensor]:
    """Run ``cell`` (a ``GRUCell``) over ``x [T, B, I]`` from ``h0`` (and each row's time
    ``step`` with batch norm): ``y [T, B, H]`` and the final ``h``, as ``unroll``; with recurrent
    dropout, DropConnect and zoneout when ``masks`` are given."""
    if masks is None and not needs_grad(cell, x, h0):  # the whole loop in one native call
        with torch.no_grad():
            out = gru_inference(cell, x, h0, step, lengths, reverse)
        if out is not None:
            return out
    steps = x.shape[0]
    norm_hh = None
    if cell.batch_norm:
        t_index = step_indices(step, steps, lengths, reverse)
        bias = cell.bias_ih if cell.bias else None  # added in batch norm's pass
        xp = normalize_steps(cell.bn_ih, linear_steps(x, cell.weight_ih, None), t_index, bias)
        norm_hh = BatchNormStep(cell.bn_hh, t_index)
    else:
        xp = cell.precompute(x)
        if cell.layer_norm:
            norm_hh = LayerNormStep(cell.ln_hh.weight, None, cell.ln_hh.eps)
    order = list(range(steps - 1, -1, -1) if reverse else range(steps))
    spec = GRUSpec(cell.hidden_size, order, valid_masks(lengths, steps), norm_hh, masks)
    norm_params = [] if norm_hh is None else list(norm_hh.params)
    tensors = (xp, h0, recurrent_weight(masks, cell.weight_hh), cell.bias_hh, *norm_params)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors):
        return FusedGRU.apply(spec, *tensors)
    with torch.no_grad():
        return gru_forward(spec, *tensors[:4], saved=None)


def gru_forward(spec: GRUSpec, xp, h, w_hh, b_hh, saved: dict | None):
    """The forward loop; fills ``saved`` (when given) with what the backward needs."""
    hidden = spec.hidden
    xs = xp.unbind(0)
    w_hh_t = StepWeight(w_hh, h.shape[0], len(spec.order))
    b_rows = None if b_hh is None else b_hh.expand(h.shape[0], -1).contiguous()
    outputs = []
    keep = saved is not None
    if keep:
        for name in ("h", "rz", "n", "hn", "norm_hh"):
            saved[name] = {}
    drop, zone_h, _ = mask_parts(spec.masks)
    ops = native_for(xp)
    if keep:
        saved["ops"] = ops
    h = h.contiguous()
    for t in spec.order:
        x_t = xs[t]
        h_in = h if drop is None else h * drop
        if spec.norm_hh is None:
            hp = w_hh_t(h_in, b_rows)
        else:
            hp, norm_saved = spec.norm_hh.forward(w_hh_t(h_in), t)
            if b_hh is not None:
                hp = hp + b_hh
            if keep:
                saved["norm_hh"][t] = norm_saved
        if ops is None:
            rz = (x_t[:, : 2 * hidden] + hp[:, : 2 * hidden]).sigmoid()
            hn = hp[:, 2 * hidden :]
            n = fast_tanh(torch.addcmul(x_t[:, 2 * hidden :], rz[:, :hidden], hn))
            h_new = torch.lerp(n, h_in, rz[:, hidden:])
        else:  # the gate maths in one native call; the backward's kernel reads hp whole
            rz, n, h_new = ops.gru_gates(x_t.contiguous(), hp, h_in)
            hn = hp
        if keep:
            saved["h"][t], saved["rz"][t], saved["n"][t], saved["hn"][t] = h_in, rz, n, hn
        if zone_h is not None:
            h_new = torch.lerp(h_new, h, zone_h[t])
        if spec.valid is None:
            h = h_new
        else:
            v = spec.valid[t]
            h = torch.where(v, h_new, h)
            h_new = h_new * v
        outputs.append(h_new)
    y = torch.stack(outputs[::-1] if spec.order[0] > spec.order[-1] else outputs)
    return y, h


class FusedGRU(torch.autograd.Function):
    """Forward loop without autograd; backward through time by hand (each in one native call
    where :func:`~rnnlab.fast.native_training.native_training` covers the call)."""

    @staticmethod
    def forward(ctx, spec, xp, h0, w_hh, b_hh, *norm_params):
        ctx.spec, ctx.has_bias = spec, b_hh is not None
        ctx.native = native_training(spec, (spec.norm_hh,), xp, h0, w_hh, b_hh)
        ctx.save_for_backward(w_hh)
        if ctx.native is not None:  # the whole loop in one native call each way
            y, h, ctx.saved = gru_train_forward(ctx.native, spec, xp, h0, w_hh, b_hh)
            return y, h
        saved: dict = {}
        y, h = gru_forward(spec, xp, h0, w_hh, b_hh, saved)
        ctx.saved = saved
        ctx.shapes = (xp.shape, xp.dtype, xp.device)
        return y, h.clone()  # not a tensor kept in ``saved``: see FusedLSTM.forward

    @staticmethod
    def backward(ctx, dy, dh):
        spec, saved = ctx.spec, ctx.saved
        (w_hh,) = ctx.saved_tensors
        if ctx.native is not None:
            grads = gru_train_backward(ctx.native, spec, saved, dy, dh, w_hh, ctx.has_bias)
            return (None, *grads)
        hidden = spec.hidden
        shape, dtype, device = ctx.shapes
        dxp = torch.empty(shape, dtype=dtype, device=device)
        dhp_all = torch.empty(shape, dtype=dtype, device=device)
        dhw_all = torch.empty(shape, dtype=dtype, device=device) if spec.norm_hh else dhp_all
        dh = torch.zeros_like(saved["h"][spec.order[0]]) if dh is None else dh
        dys = dy.unbind(0)
        back_hh = StepWeight(w_hh.t(), shape[1], shape[0])
        if spec.norm_hh is not None:
            spec.norm_hh.zero_grads()
        drop, zone_h, _ = mask_parts(spec.masks)
        ops = saved["ops"]
        for t in reversed(spec.order):
            h_prev, rz, n, hn = saved["h"][t], saved["rz"][t], saved["n"][t], saved["hn"][t]
            r, z = rz[:, :hidden], rz[:, hidden:]
            dh_new = dh + dys[t]
            if spec.valid is not None:
                v = spec.valid[t]
                keep_h = dh * ~v
                dh_new = dh_new * v
            if zone_h is not None:  # h_t = lerp(h~_t, h_{t-1}, m): split the gradient
                zoned_h = dh_new * zone_h[t]
                dh_new = dh_new - zoned_h
            dx_t, dhp = dxp[t], dhp_all[t]
            if ops is None:
                dan = dh_new * (1 - z) * (1 - n * n)
                dx_t[:, 2 * hidden :] = dan
                torch.mul(dan, r, out=dhp[:, 2 * hidden :])
                torch.mul(dan * hn, r * (1 - r), out=dx_t[:, :hidden])
                torch.mul(dh_new * (h_prev - n), z * (1 - z), out=dx_t[:, hidden : 2 * hidden])
                dhp[:, : 2 * hidden] = dx_t[:, : 2 * hidden]
                direct = dh_new * z
            else:
                direct = ops.gru_gates_backward(dh_new.contiguous(), h_prev, rz, n, hn, dx_t, dhp)
            if spec.norm_hh is not None:
                dhw = spec.norm_hh.backward(dhp, saved["norm_hh"][t])
                dhw_all[t] = dhw
            else:
                dhw = dhp
            dh = back_hh(dhw, direct)
            if drop is not None:
                dh = dh * drop
            if zone_h is not None:
                dh = dh + zoned_h
            if spec.valid is not None:
                dh = dh + keep_h
        h_prev = torch.stack([saved["h"][t] for t in spec.order]).flatten(0, 1)
        dhw_flat = torch.stack([dhw_all[t] for t in spec.order]).flatten(0, 1)
        dw_hh = matmul_t(dhw_flat, h_prev)
        db_hh = dhp_all.sum((0, 1)) if ctx.has_bias else None
        norm_grads = [] if spec.norm_hh is None else spec.norm_hh.grads
        return (None, dxp, dh, dw_hh, db_hh, *norm_grads)
