"""Gated recurrent unit (Cho et al. 2014), in torch.nn.GRU's formulation, with normalised and
weight-normalised variants as keyword arguments.

    r_t = sigmoid(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
    z_t = sigmoid(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
    n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}

Variants (combinable, except ``layer_norm`` with ``batch_norm``):

- ``layer_norm=True`` (Ba et al. 2016): ``W_i* x_t`` and ``W_h* h_{t-1}`` are replaced by
  ``LN_ih(W_ih x_t)`` and ``LN_hh(W_hh h_{t-1})``, each normalised over the stacked gate vector
  (r, z, n) with a learned gain; the biases stay as above.
- ``batch_norm=True`` (recurrent batch norm, Cooijmans et al. 2017): the same two terms are
  batch-normalised with separate statistics for every time step, gains starting at 0.1 (see
  :class:`rnnlab.cells.norm.RecurrentBatchNorm`); the state is then
  ``BNGRUState(h, step)`` (a plain ``h`` starts at step 0).
- ``weight_norm=True`` (Salimans and Kingma 2016): ``W = g * V / ||V||`` row by row for ``W_ih``
  and ``W_hh`` (torch's ``parametrizations.weight_norm``).

Example::

    cell = rnnlab.cells.create("gru", input_size=65, hidden_size=128, layer_norm=True)
    y, h = cell(torch.randn(4, 65))

Attributes: ``weight_ih [3H, I]`` (rows r, z, n), ``weight_hh [3H, H]`` orthogonal per gate block by
default (``init``), biases ``[3H]`` ~ U(-1/sqrt(H), 1/sqrt(H)) (with ``chrono=T_max``, the chrono
initialisation of Tallec and Ollivier 2018: update-gate bias ``log(u)``, ``u ~ U(1, T_max - 1)`` in
``bias_ih``, the rest of the update-gate bias zero); ``ln_ih``, ``ln_hh`` or ``bn_ih``, ``bn_hh``.
Parameter names are torch.nn.GRUCell's.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm as apply_weight_norm

from rnnlab.cells.base import Cell, register
from rnnlab.cells.init import (
    check_chrono,
    chrono_bias,
    init_recurrent_,
    init_uniform_,
    reset_weight_,
)
from rnnlab.cells.lstm import check_variants
from rnnlab.cells.norm import RecurrentBatchNorm, state_steps
from rnnlab.fast.fused_gru import gru_unroll
from rnnlab.fast.loop import linear_steps
from rnnlab.validation import check_positive


class BNGRUState(NamedTuple):
    """Batch-norm GRU state: ``h [B, H]`` and ``step [B]`` (long), each sequence's time step."""

    h: Tensor
    step: Tensor


@register("gru")
class GRUCell(Cell):
    """GRU cell; state ``h [B, H]`` (``BNGRUState(h, step)`` with ``batch_norm``)."""

    fused_masks = ("drop", "weight_hh", "zone_h")

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        init: str = "orthogonal",
        chrono: int = 0,
        layer_norm: bool = False,
        batch_norm: bool = False,
        weight_norm: bool = False,
    ) -> None:
        super().__init__()
        check_positive(input_size=input_size, hidden_size=hidden_size)
        check_variants(layer_norm, batch_norm)
        self.chrono = check_chrono(chrono)
        self.input_size, self.hidden_size, self.bias, self.init = (
            input_size,
            hidden_size,
            bias,
            init,
        )
        self.layer_norm, self.batch_norm = bool(layer_norm), bool(batch_norm)
        self.weight_norm = bool(weight_norm)
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden_size, hidden_size))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(3 * hidden_size))
            self.bias_hh = nn.Parameter(torch.empty(3 * hidden_size))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        if layer_norm:
            self.ln_ih = nn.LayerNorm(3 * hidden_size, bias=False)
            self.ln_hh = nn.LayerNorm(3 * hidden_size, bias=False)
        if batch_norm:
            self.bn_ih = RecurrentBatchNorm(3 * hidden_size)
            self.bn_hh = RecurrentBatchNorm(3 * hidden_size)
        self.reset_parameters()
        if weight_norm:
            apply_weight_norm(self, "weight_ih", dim=0)
            apply_weight_norm(self, "weight_hh", dim=0)

    @property
    def is_variant(self) -> bool:
        """True when any variant is on (then torch's fused kernel does not compute this cell)."""
        return self.layer_norm or self.batch_norm or self.weight_norm

    def reset_parameters(self) -> None:
        hidden = self.hidden_size
        reset_weight_(self, "weight_ih", lambda w: init_uniform_(w, hidden))
        reset_weight_(self, "weight_hh", lambda w: init_recurrent_(w, 3, self.init))
        if self.bias:
            init_uniform_(self.bias_ih, hidden)
            init_uniform_(self.bias_hh, hidden)
            if self.chrono:
                with torch.no_grad():
                    self.bias_ih[hidden : 2 * hidden] = chrono_bias(hidden, self.chrono)
                    self.bias_hh[hidden : 2 * hidden] = 0.0

    def init_state(self, batch, device=None, dtype=None) -> Tensor | BNGRUState:
        h = torch.zeros(batch, self.hidden_size, device=device, dtype=dtype)
        if self.batch_norm:
            return BNGRUState(h, torch.zeros(batch, device=device, dtype=torch.long))
        return h

    def precompute(self, x: Tensor) -> Tensor:
        """``W_ih x + b_ih`` for all steps (``LN_ih`` first with ``layer_norm``). With
        ``batch_norm`` only ``W_ih x``: it is normalised in :meth:`step`, which knows the step."""
        if self.layer_norm:  # the bias as LN_ih's shift: no pass of its own, forward or backward
            ln = self.ln_ih
            xp = linear_steps(x, self.weight_ih, None)
            return F.layer_norm(xp, ln.normalized_shape, ln.weight, self.bias_ih, ln.eps)
        if self.batch_norm or not self.bias:
            return linear_steps(x, self.weight_ih, None)
        return linear_steps(x, self.weight_ih, self.bias_ih)

    def step(self, xp_t: Tensor, state: Tensor | BNGRUState):
        h_prev = state if isinstance(state, Tensor) else state.h
        hp = h_prev @ self.weight_hh.T
        if self.batch_norm:
            t = state_steps(state, h_prev)
            xp_t = self.bn_ih(xp_t, t)
            hp = self.bn_hh(hp, t)
            if self.bias:
                xp_t = xp_t + self.bias_ih
        elif self.layer_norm:
            hp = self.ln_hh(hp)
        if self.bias:
            hp = hp + self.bias_hh
        xr, xz, xn = xp_t.chunk(3, dim=-1)
        hr, hz, hn = hp.chunk(3, dim=-1)
        r = torch.sigmoid(xr + hr)
        z = torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        h = n + z * (h_prev - n)
        if self.batch_norm:
            return h, BNGRUState(h, t + 1)
        return h, h

    def fused_unroll(self, x, state, lengths=None, reverse=False, masks=None):
        h = state if isinstance(state, Tensor) else state.h
        step = state_steps(state, h) if self.batch_norm else None
        y, h = gru_unroll(self, x, h, step, lengths, reverse, masks)
        if self.batch_norm:
            return y, BNGRUState(h, step + (x.shape[0] if lengths is None else lengths))
        return y, h

    def torch_kernel(self):
        if self.is_variant:
            return None
        weights = [self.weight_ih, self.weight_hh]
        if self.bias:
            weights += [self.bias_ih, self.bias_hh]
        return "GRU", weights
