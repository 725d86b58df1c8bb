"""Fused unrolling of LSTM variants (peephole, coupled, layer norm, batch norm, weight norm,
projection) with backward through time written by hand.

The input term of every step is computed before the loop in one matrix product (and normalised
there, differentiably). The loop runs without autograd and keeps only what the backward needs;
the backward walks the steps in reverse and computes the gradients of the recurrent parameters
in one matrix product each at the end. With no gradient needed (inference, generation) only the
forward loop runs: the whole of it in one native call where that can run
(:mod:`rnnlab.fast.native_sequence`), else in Python. Same maths as ``LSTMCell.step`` (tested
against ``rnnlab.layers.unroll``).

Recurrent dropout, DropConnect and zoneout run inside the loop when their masks are given
(:class:`~rnnlab.fast.regularizer_masks.RegularizerMasks`): the dropped ``h_{t-1}`` feeds the
(masked) ``W_hh``, and the new ``h``, ``c`` are mixed with the previous ones; the backward goes
through them by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from rnnlab.fast.loop import fast_tanh, linear_steps, step_indices, valid_masks
from rnnlab.fast.native import native_for
from rnnlab.fast.native_sequence import lstm_inference, needs_grad
from rnnlab.fast.native_training import native_training, train_backward, train_forward
from rnnlab.fast.norm_steps import BatchNormStep, LayerNormStep, StepNorm, normalize_steps
from rnnlab.fast.onednn import StepWeight, matmul_t
from rnnlab.fast.regularizer_masks import RegularizerMasks, mask_parts, recurrent_weight


@dataclass
class LSTMSpec:
    """The fixed (non-tensor) configuration of one fused LSTM call."""

    hidden: int
    coupled: bool
    order: list[int]
    valid: list[Tensor] | None
    norm_hh: StepNorm | None
    norm_c: StepNorm | None
    masks: RegularizerMasks | None = None


def lstm_unroll(
    cell,
    x: Tensor,
    h: Tensor,
    c: Tensor,
    step: Tensor | None,
    lengths: Tensor | None,
    reverse: bool,
    masks: RegularizerMasks | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Run ``cell`` (an ``LSTMCell``) over ``x [T, B, I]`` from ``h``, ``c`` (and each row's time
    ``step`` with batch norm): ``y [T, B, H or P]`` and the final ``h``, ``c``, as ``unroll``;
    with recurrent dropout, DropConnect and zoneout when ``masks`` are given."""
    if masks is None and not needs_grad(cell, x, h, c):  # the whole loop in one native call
        with torch.no_grad():
            out = lstm_inference(cell, x, h, c, step, lengths, reverse)
        if out is not None:
            return out
    steps = x.shape[0]
    if cell.batch_norm:
        t_index = step_indices(step, steps, lengths, reverse)
        xp = linear_steps(x, cell.weight_ih, None)
        xg = normalize_steps(cell.bn_ih, xp, t_index, cell.gate_bias())  # the bias in BN's pass
        norm_hh = BatchNormStep(cell.bn_hh, t_index)
        norm_c = BatchNormStep(cell.bn_c, t_index)
    else:
        xg = cell.precompute(x)
        norm_hh = norm_c = None
        if cell.layer_norm:
            norm_hh = LayerNormStep(cell.ln_hh.weight, None, cell.ln_hh.eps)
            norm_c = LayerNormStep(cell.ln_c.weight, cell.ln_c.bias, cell.ln_c.eps)
    order = list(range(steps - 1, -1, -1) if reverse else range(steps))
    spec = LSTMSpec(
        cell.hidden_size, cell.coupled, order, valid_masks(lengths, steps), norm_hh, norm_c, masks
    )
    norm_params = [p for norm in (norm_hh, norm_c) if norm is not None for p in norm.params]
    tensors = (
        xg,
        h,
        c,
        recurrent_weight(masks, cell.weight_hh),
        cell.weight_peephole,
        cell.weight_hr,
        *norm_params,
    )
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors):
        return FusedLSTM.apply(spec, *tensors)
    with torch.no_grad():
        return lstm_forward(spec, *tensors[:6], saved=None)


def lstm_forward(spec: LSTMSpec, xg, h, c, w_hh, peephole, w_hr, saved: dict | None):
    """The forward loop; fills ``saved`` (when given) with what the backward needs."""
    xs = xg.unbind(0)
    w_hh_t = StepWeight(w_hh, h.shape[0], len(spec.order))
    w_hr_t = None if w_hr is None else StepWeight(w_hr, h.shape[0], len(spec.order))
    keep = saved is not None
    if keep:
        for name in ("h", "c", "act", "tc", "c_new", "m", "norm_hh", "norm_c"):
            saved[name] = {}
    drop, zone_h, zone_c = mask_parts(spec.masks)
    ops = native_for(xg)
    if keep:
        saved["ops"] = ops
    outputs = []
    for t in spec.order:
        h_in = h if drop is None else h * drop
        if spec.norm_hh is None:
            a = w_hh_t(h_in, xs[t])
        else:
            hw, norm_saved = spec.norm_hh.forward(w_hh_t(h_in), t)
            a = xs[t] + hw
            if keep:
                saved["norm_hh"][t] = norm_saved
        gates = _gates_python if ops is None else _gates_native
        act, c_new, tc, m = gates(spec, ops, a, c, peephole, t, saved)
        h_new = m if w_hr_t is None else w_hr_t(m)
        if keep:
            saved["h"][t], saved["c"][t] = h_in, c
            saved["act"][t] = act
            saved["tc"][t], saved["c_new"][t], saved["m"][t] = tc, c_new, m
        c_out = c_new if zone_c is None else torch.lerp(c_new, c, zone_c[t])
        if zone_h is not None:
            h_new = torch.lerp(h_new, h, zone_h[t])
        if spec.valid is None:
            h, c = h_new, c_out
        else:
            v = spec.valid[t]
            h, c = torch.where(v, h_new, h), torch.where(v, c_out, c)
            h_new = h_new * v
        outputs.append(h_new)
    y = torch.stack(outputs[::-1] if spec.order[0] > spec.order[-1] else outputs)
    return y, h, c


def _gates_python(spec: LSTMSpec, ops, a, c, peephole, t: int, saved: dict | None):
    """The gate maths of one step from the pre-activations ``a [B, G*H]`` (overwritten):
    ``(act, c_new, tanh(cn), m)``, ``act`` being what the backward needs; tensor operations."""
    hidden, coupled = spec.hidden, spec.coupled
    g_start = hidden if coupled else 2 * hidden
    g_end = g_start + hidden
    if peephole is not None:
        a[:, :hidden].addcmul_(peephole[0], c)
        if not coupled:
            a[:, hidden : 2 * hidden].addcmul_(peephole[1], c)
    a[:, g_start:g_end].mul_(2)  # tanh(a_g) = 2 sigmoid(2 a_g) - 1: one sigmoid for all
    s = a.sigmoid() if peephole is None else a[:, :g_end].sigmoid()
    g = s[:, g_start:g_end] * 2 - 1
    i = s[:, :hidden]
    if coupled:
        c_new = torch.addcmul(c, i, g - c)
    else:
        c_new = torch.addcmul(s[:, hidden:g_start] * c, i, g)
    if peephole is None:
        o = s[:, g_end:]
    else:
        o = torch.addcmul(a[:, g_end:], peephole[-1], c_new).sigmoid_()
    tc = fast_tanh(_norm_cell(spec, c_new, t, saved))
    act = None
    if saved is not None:
        deriv = s * (1 - s)  # sigmoid'; tanh'(a_g) = 1 - g^2 = 4 s_g (1 - s_g)
        deriv[:, g_start:g_end].mul_(4)
        act = (s, g, o, deriv)
    return act, c_new, tc, o * tc


def _gates_native(spec: LSTMSpec, ops, a, c, peephole, t: int, saved: dict | None):
    """:func:`_gates_python` in one native call; ``act`` is ``a``, overwritten with the
    activations (i, f, g, o)."""
    finish = spec.norm_c is None
    p = a.new_empty(0) if peephole is None else peephole.detach()
    c_new, *out = ops.lstm_gates(a, c.contiguous(), p, spec.coupled, finish)
    if finish:
        tc, m = out
    else:
        tc = fast_tanh(_norm_cell(spec, c_new, t, saved))
        m = a[:, -spec.hidden :] * tc
    return a, c_new, tc, m


def _norm_cell(spec: LSTMSpec, c_new, t: int, saved: dict | None):
    """The cell as the output gate sees it: ``c_new``, normalised with ``norm_c``."""
    if spec.norm_c is None:
        return c_new
    cn, norm_saved = spec.norm_c.forward(c_new, t)
    if saved is not None:
        saved["norm_c"][t] = norm_saved
    return cn


def _gates_backward_python(spec: LSTMSpec, ops, da, dm, dc, act, c_prev, tc, peephole, t, saved):
    """Backward of :func:`_gates_python`: writes the gradient of ``a`` into ``da`` and returns
    that of ``c_prev`` (``dm``: gradient of ``m``; ``dc``: of ``c_new`` from the later steps)."""
    hidden, coupled = spec.hidden, spec.coupled
    g_start = hidden if coupled else 2 * hidden
    g_end = g_start + hidden
    s, g, o, deriv = act
    i = s[:, :hidden]
    dtc = dm * o
    dcn = torch.addcmul(dtc, dtc * tc, tc, value=-1)  # through tanh: (1 - tc^2)
    if spec.norm_c is not None:
        dcn = spec.norm_c.backward(dcn, saved["norm_c"][t])
    dc_new = dc + dcn
    # da: gradient of each activation, then times its derivative
    da_o = da[:, g_end:]
    if peephole is None:
        torch.mul(dm, tc, out=da_o)
    else:
        torch.mul(dm * tc, o * (1 - o), out=da_o)
        dc_new.addcmul_(da_o, peephole[-1])
    torch.mul(dc_new, g - c_prev if coupled else g, out=da[:, :hidden])
    if not coupled:
        torch.mul(dc_new, c_prev, out=da[:, hidden:g_start])
    torch.mul(dc_new, i, out=da[:, g_start:g_end])
    if peephole is None:
        da.mul_(deriv)
    else:
        da[:, :g_end].mul_(deriv)
    dc = dc_new * (1 - i) if coupled else dc_new * s[:, hidden:g_start]
    if peephole is not None:
        dc.addcmul_(da[:, :hidden], peephole[0])
        if not coupled:
            dc.addcmul_(da[:, hidden:g_start], peephole[1])
    return dc


def _gates_backward_native(spec: LSTMSpec, ops, da, dm, dc, act, c_prev, tc, peephole, t, saved):
    """:func:`_gates_backward_python` in one native call (with ``norm_c``: its backward first)."""
    dm = dm.contiguous()
    if spec.norm_c is None:
        dcn = dm.new_empty(0)
    else:
        dtc = dm * act[:, -spec.hidden :]
        dcn = spec.norm_c.backward(torch.addcmul(dtc, dtc * tc, tc, value=-1), saved["norm_c"][t])
    p = dm.new_empty(0) if peephole is None else peephole.detach()
    return ops.lstm_gates_backward(
        dm, dc.contiguous(), dcn.contiguous(), act, c_prev, tc, p, spec.coupled, da
    )


class FusedLSTM(torch.autograd.Function):
    """Forward loop without autograd; backward through time by hand (each in one native call
    where :func:`~rnnlab.fast.native_training.native_training` covers the call)."""

    @staticmethod
    def forward(ctx, spec, xg, h0, c0, w_hh, peephole, w_hr, *norm_params):
        norms = (spec.norm_hh, spec.norm_c)
        ctx.spec = spec
        ctx.native = None if w_hr is not None else native_training(spec, norms, xg, h0, c0, w_hh)
        if ctx.native is not None:  # the whole loop in one native call each way
            y, h, c, ctx.saved = train_forward(ctx.native, spec, xg, h0, c0, w_hh, peephole)
            ctx.save_for_backward(w_hh, peephole)
            return y, h, c
        saved: dict = {}
        y, h, c = lstm_forward(spec, xg, h0, c0, w_hh, peephole, w_hr, saved)
        ctx.saved = saved
        ctx.save_for_backward(w_hh, peephole, w_hr)
        ctx.shapes = (xg.shape, xg.dtype, xg.device)
        ctx.has_norm_params = len(norm_params)
        # The final h and c may be tensors kept in ``saved``: returning them as they are would
        # make the outputs (whose grad_fn is this node) reachable from ctx, a reference cycle
        # through C++ that is never freed. Fresh tensors break it.
        return y, h.clone(), c.clone()

    @staticmethod
    def backward(ctx, dy, dh, dc):
        spec, saved = ctx.spec, ctx.saved
        if ctx.native is not None:
            w_hh, peephole = ctx.saved_tensors
            return (None, *train_backward(ctx.native, spec, saved, dy, dh, dc, w_hh, peephole))
        w_hh, peephole, w_hr = ctx.saved_tensors
        hidden, coupled = spec.hidden, spec.coupled
        shape, dtype, device = ctx.shapes
        dxg = torch.empty(shape, dtype=dtype, device=device)
        dhw_all = torch.empty(shape, dtype=dtype, device=device) if spec.norm_hh else dxg
        dh_out = [] if w_hr is not None else None
        dh = torch.zeros_like(saved["h"][spec.order[0]]) if dh is None else dh
        dc = torch.zeros_like(saved["c"][spec.order[0]]) if dc is None else dc
        dys = dy.unbind(0)
        back_hh = StepWeight(w_hh.t(), shape[1], shape[0])
        back_hr = None if w_hr is None else StepWeight(w_hr.t(), shape[1], shape[0])
        for norm in (spec.norm_hh, spec.norm_c):
            if norm is not None:
                norm.zero_grads()
        drop, zone_h, zone_c = mask_parts(spec.masks)
        g_start = hidden if coupled else 2 * hidden
        g_end = g_start + hidden
        ops = saved["ops"]
        for t in reversed(spec.order):
            tc, c_prev = saved["tc"][t], saved["c"][t]
            dh_new = dh + dys[t]
            if spec.valid is not None:
                v = spec.valid[t]
                keep_h, keep_c = dh * ~v, dc * ~v
                dh_new, dc = dh_new * v, dc * v
            if zone_h is not None:  # h_t = lerp(h~_t, h_{t-1}, m): split the gradient
                zoned_h = dh_new * zone_h[t]
                dh_new = dh_new - zoned_h
            if zone_c is not None:
                zoned_c = dc * zone_c[t]
                dc = dc - zoned_c
            if w_hr is not None:
                dh_out.append(dh_new)
                dm = back_hr(dh_new)
            else:
                dm = dh_new
            da = dxg[t]
            gates_backward = _gates_backward_python if ops is None else _gates_backward_native
            dc = gates_backward(
                spec, ops, da, dm, dc, saved["act"][t], c_prev, tc, peephole, t, saved
            )
            if spec.norm_hh is not None:
                dhw = spec.norm_hh.backward(da, saved["norm_hh"][t])
                dhw_all[t] = dhw
            else:
                dhw = da
            dh = back_hh(dhw)
            if drop is not None:
                dh = dh * drop
            if zone_h is not None:
                dh = dh + zoned_h
            if zone_c is not None:
                dc = dc + zoned_c
            if spec.valid is not None:
                dh, dc = dh + keep_h, dc + keep_c
        steps = range(shape[0])
        h_prev = torch.stack([saved["h"][t] for t in steps]).flatten(0, 1)
        dw_hh = matmul_t(dhw_all.flatten(0, 1), h_prev)
        dpeep = dw_hr = None
        if peephole is not None:
            c_prev = torch.stack([saved["c"][t] for t in steps])
            c_new = torch.stack([saved["c_new"][t] for t in steps])
            rows = [(dxg[..., :hidden] * c_prev).sum((0, 1))]
            if not coupled:
                rows.append((dxg[..., hidden:g_start] * c_prev).sum((0, 1)))
            rows.append((dxg[..., g_end:] * c_new).sum((0, 1)))
            dpeep = torch.stack(rows)
        if w_hr is not None:
            order = spec.order
            m = torch.stack([saved["m"][t] for t in order]).flatten(0, 1)
            dh_rev = torch.stack(dh_out[::-1]).flatten(0, 1)
            dw_hr = matmul_t(dh_rev, m)
        norm_grads = [g for n in (spec.norm_hh, spec.norm_c) if n is not None for g in n.grads]
        return (None, dxg, dh, dc, dw_hh, dpeep, dw_hr, *norm_grads)
