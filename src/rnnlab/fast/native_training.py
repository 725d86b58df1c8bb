"""Training of the fused LSTM and GRU in one native call each way.

With gradients, :class:`~rnnlab.fast.fused_lstm.FusedLSTM` runs the whole forward loop in one
C++ call (``lstm_train_forward`` in ``native_kernels.cpp``) that keeps what the backward needs in
``[T, B, ...]`` tensors, and the whole backward in another (``lstm_train_backward``), instead of
a Python loop per time step (whose per-step dispatch cost about as much as the maths). Per step
one product with the recurrent matrix each way (through oneDNN with the weight packed once, as
:class:`~rnnlab.fast.onednn.StepWeight`); the gradient of ``W_hh`` and of the peepholes are
products over all steps afterwards, here.

The GRU (``gru_train_forward`` / ``gru_train_backward``) runs the same way, with layer
norm, batch norm in training, or weight norm (its normalised matrix is computed before).

It covers the LSTM without projection and without regularizer masks, with peepholes or coupled
gates, and with its recurrent term and cell normalised by layer norm or by batch norm in training
(batch statistics at each step; the running statistics move as
:class:`~rnnlab.fast.norm_steps.BatchNormStep` moves them), or not normalised;
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

from rnnlab.fast.native import native_for, step_weight
from rnnlab.fast.norm_steps import BatchNormStep, LayerNormStep
from rnnlab.fast.onednn import _tracing, matmul_t

NONE, LAYER, BATCH = 0, 1, 3  # the normalisations lstm_train_forward knows

_SAVED = ("h_prev", "c_prev", "act", "hat_hh", "rstd_hh", "c_new", "hat_c", "rstd_c", "tc")
_BACKWARD = ("c_prev", "act", "hat_hh", "rstd_hh", "hat_c", "rstd_c", "tc")  # what it reads
_GRU_SAVED = ("h_prev", "rz", "n", "hp", "hat_hh", "rstd_hh")


def norm_kind(norms: tuple, batch: int) -> int | None:
    """The kernels' normalisation of ``norms`` (the recurrent term's, and the LSTM's cell's),
    ``None`` when they have no form of it (batch norm at evaluation, a single row's batch
    statistics, mixed kinds)."""
    if all(n is None for n in norms):
        return NONE
    if all(isinstance(n, LayerNormStep) for n in norms):
        return LAYER
    if all(isinstance(n, BatchNormStep) and n.training for n in norms) and batch > 1:
        return BATCH
    return None


def native_training(spec, norms: tuple, *tensors: Tensor | None):
    """The kernels when the whole-sequence training path covers this call (``spec`` of an LSTM
    or GRU, its ``norms``, and the tensors the kernels read, the input terms first), else
    ``None``."""
    if spec.masks is not None or _tracing() or norm_kind(norms, tensors[0].shape[1]) is None:
        return None
    for norm in norms:
        if isinstance(norm, BatchNormStep) and norm.norm.running_mean.dtype != tensors[0].dtype:
            return None
    return native_for(*tensors)


def _valid(spec, like: Tensor) -> Tensor:
    """``[T, B]`` bool: is each step within its row's length (empty without lengths)."""
    if spec.valid is None:
        return torch.empty(0, dtype=torch.bool, device=like.device)
    return torch.stack(spec.valid).squeeze(-1)


def _reverse(spec) -> bool:
    return len(spec.order) > 1 and spec.order[0] > spec.order[-1]


def _gains(norms: tuple, sizes: tuple, like: Tensor) -> tuple:
    """``(gain, shift, eps)`` of each of ``norms`` (of ``sizes`` features each) for the kernels
    (empty: none)."""
    empty = like.new_empty(0)
    out: list = []
    for norm, features in zip(norms, sizes):
        if norm is None:
            out += [empty, empty, 0.0]
            continue
        gain, shift = norm.params
        eps = norm.norm.eps if isinstance(norm, BatchNormStep) else norm.eps
        gain = like.new_ones(features) if gain is None else gain.detach()
        out += [gain, empty if shift is None else shift.detach(), float(eps)]
    return tuple(out)


def _statistics(norms: tuple, like: Tensor) -> tuple[list[Tensor], Tensor, list[float]]:
    """Batch norm's running statistics (mean and variance of each of ``norms``, moved in place),
    each step's slot and each norm's momentum; empty without batch norm."""
    if not isinstance(norms[0], BatchNormStep):
        empty = like.new_empty(0)
        return [empty, empty] * len(norms), empty.long(), [0.0] * len(norms)
    stats = [s for n in norms for s in (n.norm.running_mean, n.norm.running_var)]
    slots = torch.tensor(norms[0].slots, dtype=torch.long)
    return stats, slots, [float(n.norm.momentum) for n in norms]


def train_forward(ops, spec, xg: Tensor, h: Tensor, c: Tensor, w_hh: Tensor, peephole):
    """The LSTM's forward loop in one native call: ``(y [T, B, H], h, c, saved)``."""
    steps, batch = xg.shape[:2]
    norms = (spec.norm_hh, spec.norm_c)
    kind = norm_kind(norms, batch)
    w_hh = w_hh.detach()
    stats, slots, momenta = _statistics(norms, xg)
    out = ops.lstm_train_forward(
        xg.detach(),
        h.detach(),
        c.detach(),
        w_hh.t(),
        step_weight(ops, w_hh, batch, steps),
        xg.new_empty(0) if peephole is None else peephole.detach(),
        _valid(spec, xg),
        _reverse(spec),
        spec.coupled,
        kind,
        *_gains(norms, (xg.shape[-1], spec.hidden), xg),
        *stats,
        slots,
        *momenta,
    )
    y, h, c = out[:3]
    saved = dict(zip(_SAVED, out[3:]))
    saved["kind"] = kind
    return y, h, c, saved


def train_backward(ops, spec, saved: dict, dy, dh, dc, w_hh: Tensor, peephole) -> tuple:
    """The LSTM's backward loop in one native call: the gradients of ``xg``, ``h``, ``c``,
    ``w_hh``, ``peephole``, ``w_hr`` (``None``) and the norm parameters, as
    ``FusedLSTM.backward``."""
    c_prev, act = saved["c_prev"], saved["act"]
    steps, batch, hidden = c_prev.shape
    dy = torch.zeros_like(c_prev) if dy is None else dy
    dh = torch.zeros_like(c_prev[0]) if dh is None else dh
    dc = torch.zeros_like(c_prev[0]) if dc is None else dc
    w_hh = w_hh.detach()
    gains = _gains((spec.norm_hh, spec.norm_c), (act.shape[-1], hidden), act)
    dxg, dhw, dh, dc, *norm_grads = ops.lstm_train_backward(
        dy,
        dh,
        dc,
        w_hh,
        step_weight(ops, w_hh.t(), batch, steps),
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


def gru_train_forward(ops, spec, xp: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor | None):
    """The GRU's forward loop in one native call: ``(y [T, B, H], h, saved)``."""
    steps, batch = xp.shape[:2]
    norms = (spec.norm_hh,)
    kind = norm_kind(norms, batch)
    w_hh = w_hh.detach()
    stats, slots, momenta = _statistics(norms, xp)
    out = ops.gru_train_forward(
        xp.detach(),
        h.detach(),
        w_hh.t(),
        step_weight(ops, w_hh, batch, steps),
        xp.new_empty(0) if b_hh is None else b_hh.detach(),
        _valid(spec, xp),
        _reverse(spec),
        kind,
        *_gains(norms, (xp.shape[-1],), xp),
        *stats,
        slots,
        *momenta,
    )
    y, h = out[:2]
    saved = dict(zip(_GRU_SAVED, out[2:]))
    saved["kind"] = kind
    return y, h, saved


def gru_train_backward(ops, spec, saved: dict, dy, dh, w_hh: Tensor, has_bias: bool) -> tuple:
    """The GRU's backward loop in one native call: the gradients of ``xp``, ``h``, ``w_hh``,
    ``b_hh`` and the norm parameters, as ``FusedGRU.backward``."""
    h_prev = saved["h_prev"]
    steps, batch, _ = h_prev.shape
    dy = torch.zeros_like(h_prev) if dy is None else dy
    dh = torch.zeros_like(h_prev[0]) if dh is None else dh
    w_hh = w_hh.detach()
    gain = _gains((spec.norm_hh,), (w_hh.shape[0],), w_hh)[0]
    dxp, dhp, dhw, dh, *norm_grads = ops.gru_train_backward(
        dy,
        dh,
        w_hh,
        step_weight(ops, w_hh.t(), batch, steps),
        _valid(spec, h_prev),
        _reverse(spec),
        saved["kind"],
        gain,
        *(saved[name] for name in _GRU_SAVED),
    )
    dw_hh = matmul_t(dhw.flatten(0, 1), h_prev.flatten(0, 1))
    db_hh = dhp.sum((0, 1)) if has_bias else None
    params = () if spec.norm_hh is None else spec.norm_hh.params
    grads = [g if p is not None else None for p, g in zip(params, norm_grads)]
    return (dxp, dh, dw_hh, db_hh, *grads)
