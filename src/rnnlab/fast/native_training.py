"""Training of the fused LSTM in one native call each way.

With gradients, :class:`~rnnlab.fast.fused_lstm.FusedLSTM` runs the whole forward loop in one
C++ call (``lstm_train_forward`` in ``native_kernels.cpp``) that keeps what the backward needs in
``[T, B, ...]`` tensors, and the whole backward in another (``lstm_train_backward``), instead of
a Python loop per time step (whose per-step dispatch cost about as much as the maths). Per step
one product with the recurrent matrix each way (through oneDNN with the weight packed once, as
:class:`~rnnlab.fast.onednn.StepWeight`); the gradient of ``W_hh`` and of the peepholes are
products over all steps afterwards, here.

It covers the LSTM without projection and without regularizer masks, with peepholes or coupled
gates, and with its recurrent term and cell normalised by layer norm or by batch norm in training
(batch statistics at each step; the running statistics move as
:class:`~rnnlab.regularize.normalization.BatchNormStep` moves them), or not normalised;
:func:`native_training` says ``None`` for anything else and the Python loop runs.

=========  ==================================================================================
xg         ``[T, B, G*H]`` input terms (normalised, bias included)
h, c       ``[B, H]`` initial state
saved      what the backward needs: ``[T, B, ...]`` tensors of the forward
=========  ==================================================================================
"""

from __future__ import annotations

import torch
from torch import Tensor

from rnnlab.fast.native import native_for
from rnnlab.fast.onednn import StepWeight, _tracing, matmul_t
from rnnlab.regularize.normalization import BatchNormStep, LayerNormStep

NONE, LAYER, BATCH = 0, 1, 3  # the normalisations lstm_train_forward knows

_SAVED = ("h_prev", "c_prev", "act", "hat_hh", "rstd_hh", "c_new", "hat_c", "rstd_c", "tc")
_BACKWARD = ("c_prev", "act", "hat_hh", "rstd_hh", "hat_c", "rstd_c", "tc")  # what it reads


def norm_kind(spec, batch: int) -> int | None:
    """The kernels' normalisation of ``spec``'s recurrent term and cell, ``None`` when they have
    no form of it (batch norm at evaluation, a single row's batch statistics, mixed kinds)."""
    norms = (spec.norm_hh, spec.norm_c)
    if all(n is None for n in norms):
        return NONE
    if all(isinstance(n, LayerNormStep) for n in norms):
        return LAYER
    if all(isinstance(n, BatchNormStep) and n.training for n in norms) and batch > 1:
        return BATCH
    return None


def native_training(spec, xg: Tensor, h: Tensor, c: Tensor, w_hh: Tensor, peephole, w_hr):
    """The kernels when the whole-sequence training path covers this call, else ``None``."""
    if spec.masks is not None or w_hr is not None or _tracing():
        return None
    if norm_kind(spec, xg.shape[1]) is None:
        return None
    if spec.norm_hh is not None and isinstance(spec.norm_hh, BatchNormStep):
        stats = (spec.norm_hh.norm.running_mean, spec.norm_c.norm.running_mean)
        if any(s.dtype != xg.dtype or s.device != xg.device for s in stats):
            return None
    return native_for(xg, h, c, w_hh, peephole)


def _packed(weight: Tensor, batch: int, steps: int) -> Tensor | None:
    """``weight`` reordered once for oneDNN's per-step products, when :class:`StepWeight`
    would."""
    step = StepWeight(weight, batch, steps)
    return step.packed if step.onednn else None


def _valid(spec, like: Tensor) -> Tensor:
    """``[T, B]`` bool: is each step within its row's length (empty without lengths)."""
    if spec.valid is None:
        return torch.empty(0, dtype=torch.bool, device=like.device)
    return torch.stack(spec.valid).squeeze(-1)


def _reverse(spec) -> bool:
    return len(spec.order) > 1 and spec.order[0] > spec.order[-1]


def _gains(spec, like: Tensor) -> tuple[Tensor, Tensor, float, Tensor, Tensor, float]:
    """``(hh_gain, hh_shift, hh_eps, c_gain, c_shift, c_eps)`` for the kernels (empty: none)."""
    empty = like.new_empty(0)
    out: list = []
    for norm, features in ((spec.norm_hh, like.shape[-1]), (spec.norm_c, spec.hidden)):
        if norm is None:
            out += [empty, empty, 0.0]
            continue
        gain, shift = norm.params
        eps = norm.norm.eps if isinstance(norm, BatchNormStep) else norm.eps
        gain = like.new_ones(features) if gain is None else gain.detach()
        out += [gain, empty if shift is None else shift.detach(), float(eps)]
    return tuple(out)


def _statistics(spec, like: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, float, float]:
    """``(hh_mean, hh_var, c_mean, c_var, slots, hh_momentum, c_momentum)``: batch norm's running
    statistics (moved in place) and each step's slot; empty without batch norm."""
    if not isinstance(spec.norm_hh, BatchNormStep):
        empty = like.new_empty(0)
        return empty, empty, empty, empty, empty.long(), 0.0, 0.0
    hh, c = spec.norm_hh, spec.norm_c
    slots = torch.tensor(hh.slots, dtype=torch.long)
    return (
        hh.norm.running_mean,
        hh.norm.running_var,
        c.norm.running_mean,
        c.norm.running_var,
        slots,
        float(hh.norm.momentum),
        float(c.norm.momentum),
    )


def train_forward(ops, spec, xg: Tensor, h: Tensor, c: Tensor, w_hh: Tensor, peephole):
    """The forward loop in one native call: ``(y [T, B, H], h, c, saved)``."""
    steps, batch = xg.shape[:2]
    kind = norm_kind(spec, batch)
    w_hh = w_hh.detach()
    out = ops.lstm_train_forward(
        xg.detach(),
        h.detach(),
        c.detach(),
        w_hh.t(),
        _packed(w_hh, batch, steps),
        xg.new_empty(0) if peephole is None else peephole.detach(),
        _valid(spec, xg),
        _reverse(spec),
        spec.coupled,
        kind,
        *_gains(spec, xg),
        *_statistics(spec, xg),
    )
    y, h, c = out[:3]
    saved = dict(zip(_SAVED, out[3:]))
    saved["kind"] = kind
    return y, h, c, saved


def train_backward(ops, spec, saved: dict, dy, dh, dc, w_hh: Tensor, peephole) -> tuple:
    """The backward loop in one native call: the gradients of ``xg``, ``h``, ``c``, ``w_hh``,
    ``peephole``, ``w_hr`` (``None``) and the norm parameters, as ``FusedLSTM.backward``."""
    c_prev, act = saved["c_prev"], saved["act"]
    steps, batch, hidden = c_prev.shape
    dy = torch.zeros_like(c_prev) if dy is None else dy
    dh = torch.zeros_like(c_prev[0]) if dh is None else dh
    dc = torch.zeros_like(c_prev[0]) if dc is None else dc
    w_hh = w_hh.detach()
    gains = _gains(spec, act)
    dxg, dhw, dh, dc, *norm_grads = ops.lstm_train_backward(
        dy,
        dh,
        dc,
        w_hh,
        _packed(w_hh.t(), batch, steps),
        act.new_empty(0) if peephole is None else peephole.detach(),
        _valid(spec, act),
        _reverse(spec),
        spec.coupled,
        saved["kind"],
        gains[0],
        gains[3],
        *(saved[name] for name in _BACKWARD),
    )
    dw_hh = matmul_t(dhw.flatten(0, 1), saved["h_prev"].flatten(0, 1))
    dpeep = None
    if peephole is not None:
        g_start = hidden if spec.coupled else 2 * hidden
        rows = [(dxg[..., :hidden] * c_prev).sum((0, 1))]
        if not spec.coupled:
            rows.append((dxg[..., hidden:g_start] * c_prev).sum((0, 1)))
        rows.append((dxg[..., g_start + hidden :] * saved["c_new"]).sum((0, 1)))
        dpeep = torch.stack(rows)
    params = [p for n in (spec.norm_hh, spec.norm_c) if n is not None for p in n.params]
    grads = [g if p is not None else None for p, g in zip(params, norm_grads)]
    return (dxg, dh, dc, dw_hh, dpeep, None, *grads)
