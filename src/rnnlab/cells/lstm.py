"""Long short-term memory (Hochreiter and Schmidhuber 1997; forget gate of Gers et al. 2000),
with the variants of the literature as keyword arguments.

    i_t = sigmoid(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)
    f_t = sigmoid(W_if x_t + b_if + W_hf h_{t-1} + b_hf)
    g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)
    o_t = sigmoid(W_io x_t + b_io + W_ho h_{t-1} + b_ho)
    c_t = f_t * c_{t-1} + i_t * g_t
    h_t = o_t * tanh(c_t)            (with proj_size > 0: h_t = W_hr (o_t * tanh(c_t)))

Variants (combinable, except ``layer_norm`` with ``batch_norm``):

- ``peephole=True`` (Gers and Schmidhuber 2000): diagonal peephole weights ``p``;
  ``i_t = sigmoid(... + p_i * c_{t-1})``, ``f_t = sigmoid(... + p_f * c_{t-1})``,
  ``o_t = sigmoid(... + p_o * c_t)``.
- ``coupled=True`` (CIFG, Greff et al. 2017): ``f_t = 1 - i_t``; there is no forget block, so
  the stacked matrices have 3 blocks (i, g, o) and ``forget_bias`` goes to the input gate with the
  opposite sign (``f_t = sigmoid(-a_i)`` starts near ``sigmoid(forget_bias)``).
- ``layer_norm=True`` (Ba et al. 2016): with LN(a) = gain * (a - mean(a)) / std(a) over the
  stacked gate vector,
  ``a_t = LN_ih(W_ih x_t) + LN_hh(W_hh h_{t-1}) + b_ih + b_hh`` and ``h_t = o_t * tanh(LN_c(c_t))``
  (LN_c has a gain and a shift).
- ``batch_norm=True`` (Cooijmans et al. 2017): ``a_t = BN_ih(W_ih x_t; t) + BN_hh(W_hh h_{t-1}; t)
  + b_ih + b_hh`` and ``h_t = o_t * tanh(BN_c(c_t; t))`` with separate statistics for every time
  step (see :class:`rnnlab.cells.norm.RecurrentBatchNorm`; gains start at 0.1). The
  state is then ``BNLSTMState(h, c, step)``; a state without ``step`` (torch's ``(h, c)``)
  starts at step 0.
- ``weight_norm=True`` (Salimans and Kingma 2016): ``W = g * V / ||V||`` row by row for ``W_ih``
  and ``W_hh`` (torch's ``parametrizations.weight_norm``; ``weight_ih`` stays readable). Alone, its
  fused path runs torch's fused kernel on the normalised weights from 8 steps on.

Example::

    cell = rnnlab.cells.create("lstm", input_size=65, hidden_size=128, layer_norm=True)
    y, (h, c) = cell(torch.randn(4, 65))

Attributes: ``weight_ih [4H, I]`` (rows i, f, g, o; ``[3H, I]`` rows i, g, o when coupled) ~
U(-1/sqrt(H), 1/sqrt(H)); ``weight_hh [4H, H or P]`` orthogonal per gate block by default
(``init``); ``bias_ih`` zero except its forget slice, which is ``forget_bias`` (default 1.0, Gers et
al.; Jozefowicz et al. 2015), or with ``chrono=T_max`` the chrono initialisation (Tallec and
Ollivier 2018): forget bias ``log(u)``, ``u ~ U(1, T_max - 1)``, and input bias ``-log(u)``;
``bias_hh`` zero; ``weight_hr [P, H]`` when ``proj_size = P > 0`` (Sak et al. 2014), uniform;
``weight_peephole [3, H]`` (rows i, f, o; ``[2, H]`` rows i, o when coupled), uniform; ``ln_ih``,
``ln_hh``, ``ln_c`` (``nn.LayerNorm``) or ``bn_ih``, ``bn_hh``, ``bn_c`` (``RecurrentBatchNorm``).
Parameter names are torch.nn.LSTM's without the layer suffix.
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
from rnnlab.cells.norm import RecurrentBatchNorm, state_steps
from rnnlab.errors import ConfigError
from rnnlab.fast.fused_lstm import lstm_unroll
from rnnlab.fast.loop import linear_steps
from rnnlab.fast.torch_kernels import run_kernel
from rnnlab.sequences import reverse_padded
from rnnlab.validation import check_positive

KERNEL_STEPS = 8
"""From this many steps on, a weight-normalised LSTM (no other variant) runs torch's kernel."""


class LSTMState(NamedTuple):
    """LSTM state: ``h [B, H or P]`` (the output) and ``c [B, H]`` (the cell)."""

    h: Tensor
    c: Tensor


class BNLSTMState(NamedTuple):
    """Batch-norm LSTM state: ``h``, ``c`` and ``step [B]`` (long), each sequence's time step."""

    h: Tensor
    c: Tensor
    step: Tensor


def check_variants(layer_norm: bool, batch_norm: bool) -> None:
    """Raise a ConfigError for variant combinations the maths does not allow."""
    if layer_norm and batch_norm:
        raise ConfigError("layer_norm and batch_norm normalise the same terms; choose one")


@register("lstm")
class LSTMCell(Cell):
    """LSTM cell with forget-gate bias, projection and the variants above; state
    ``LSTMState(h, c)`` (``BNLSTMState(h, c, step)`` with ``batch_norm``)."""

    fused_masks = ("drop", "weight_hh", "zone_h", "zone_c")

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        forget_bias: float = 1.0,
        proj_size: int = 0,
        init: str = "orthogonal",
        chrono: int = 0,
        peephole: bool = False,
        coupled: bool = False,
        layer_norm: bool = False,
        batch_norm: bool = False,
        weight_norm: bool = False,
    ) -> None:
        super().__init__()
        check_positive(input_size=input_size, hidden_size=hidden_size)
        if (
            not isinstance(proj_size, int)
            or proj_size < 0
            or proj_size >= hidden_size
            and proj_size
        ):
            raise ConfigError(
                f"proj_size must be 0 or a positive integer below hidden_size, got {proj_size!r}"
            )
        check_variants(layer_norm, batch_norm)
        self.input_size, self.hidden_size, self.proj_size = input_size, hidden_size, proj_size
        self.bias, self.forget_bias, self.init = bias, float(forget_bias), init
        self.chrono = check_chrono(chrono)
        self.peephole, self.coupled = bool(peephole), bool(coupled)
        self.layer_norm, self.batch_norm = bool(layer_norm), bool(batch_norm)
        self.weight_norm = bool(weight_norm)
        self.gates = 3 if coupled else 4
        out, rows = proj_size or hidden_size, self.gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(rows, input_size))
        self.weight_hh = nn.Parameter(torch.empty(rows, out))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(rows))
            self.bias_hh = nn.Parameter(torch.empty(rows))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        if proj_size:
            self.weight_hr = nn.Parameter(torch.empty(proj_size, hidden_size))
        else:
            self.register_parameter("weight_hr", None)
        if peephole:
            self.weight_peephole = nn.Parameter(torch.empty(self.gates - 1, hidden_size))
        else:
            self.register_parameter("weight_peephole", None)
        if layer_norm:
            self.ln_ih = nn.LayerNorm(rows, bias=False)
            self.ln_hh = nn.LayerNorm(rows, bias=False)
            self.ln_c = nn.LayerNorm(hidden_size)
        if batch_norm:
            self.bn_ih = RecurrentBatchNorm(rows)
            self.bn_hh = RecurrentBatchNorm(rows)
            self.bn_c = RecurrentBatchNorm(hidden_size, bias=True)
        self.reset_parameters()
        if weight_norm:
            apply_weight_norm(self, "weight_ih", dim=0)
            apply_weight_norm(self, "weight_hh", dim=0)

    @property
    def output_size(self) -> int:
        return self.proj_size or self.hidden_size

    @property
    def is_variant(self) -> bool:
        """True when any variant is on."""
        return (
            self.peephole or self.coupled or self.layer_norm or self.batch_norm or self.weight_norm
        )

    @property
    def is_structural_variant(self) -> bool:
        """True when a variant changes the equations (all but ``weight_norm``)."""
        return self.peephole or self.coupled or self.layer_norm or self.batch_norm

    def reset_parameters(self) -> None:
        hidden = self.hidden_size
        reset_weight_(self, "weight_ih", lambda w: init_uniform_(w, hidden))
        reset_weight_(self, "weight_hh", lambda w: init_recurrent_(w, self.gates, self.init))
        if self.bias:
            with torch.no_grad():
                self.bias_ih.zero_()
                self.bias_hh.zero_()
                if self.chrono:
                    forget = chrono_bias(hidden, self.chrono)
                    self.bias_ih[:hidden] = -forget
                    if not self.coupled:
                        self.bias_ih[hidden : 2 * hidden] = forget
                elif self.coupled:
                    self.bias_ih[:hidden] = -self.forget_bias
                else:
                    self.bias_ih[hidden : 2 * hidden] = self.forget_bias
        if self.proj_size:
            init_uniform_(self.weight_hr, hidden)
        if self.peephole:
            init_uniform_(self.weight_peephole, hidden)

    def init_state(self, batch, device=None, dtype=None) -> LSTMState | BNLSTMState:
        h = torch.zeros(batch, self.output_size, device=device, dtype=dtype)
        c = torch.zeros(batch, self.hidden_size, device=device, dtype=dtype)
        if self.batch_norm:
            return BNLSTMState(h, c, torch.zeros(batch, device=device, dtype=torch.long))
        return LSTMState(h, c)

    def gate_bias(self) -> Tensor | None:
        """``b_ih + b_hh`` (``None`` without bias)."""
        return self.bias_ih + self.bias_hh if self.bias else None

    def precompute(self, x: Tensor) -> Tensor:
        """``W_ih x`` for all steps; plus the bias, after ``LN_ih`` with ``layer_norm``. With
        ``batch_norm`` the input term is normalised in :meth:`step`, which knows the time step."""
        if self.layer_norm:  # the bias as LN_ih's shift: no pass of its own, forward or backward
            ln = self.ln_ih
            xp = linear_steps(x, self.weight_ih, None)
            return F.layer_norm(xp, ln.normalized_shape, ln.weight, self.gate_bias(), ln.eps)
        if self.batch_norm or not self.bias:
            return linear_steps(x, self.weight_ih, None)
        return linear_steps(x, self.weight_ih, self.gate_bias())

    def step(self, xp_t: Tensor, state: LSTMState | BNLSTMState):
        h_prev, c_prev = state[0], state[1]
        if self.batch_norm:
            t = state_steps(state, h_prev)
            a = self.bn_ih(xp_t, t) + self.bn_hh(h_prev @ self.weight_hh.T, t)
            if self.bias:
                a = a + self.gate_bias()
        elif self.layer_norm:
            a = xp_t + self.ln_hh(h_prev @ self.weight_hh.T)
        else:
            a = torch.addmm(xp_t, h_prev, self.weight_hh.T)
        if self.coupled:
            a_i, a_g, a_o = a.chunk(3, dim=-1)
        else:
            a_i, a_f, a_g, a_o = a.chunk(4, dim=-1)
        if self.peephole:
            p = self.weight_peephole
            a_i = a_i + p[0] * c_prev
            if not self.coupled:
                a_f = a_f + p[1] * c_prev
        i = torch.sigmoid(a_i)
        f = 1 - i if self.coupled else torch.sigmoid(a_f)
        c = f * c_prev + i * torch.tanh(a_g)
        if self.peephole:
            a_o = a_o + self.weight_peephole[-1] * c
        if self.layer_norm:
            c_out = self.ln_c(c)
        elif self.batch_norm:
            c_out = self.bn_c(c, t)
        else:
            c_out = c
        h = torch.sigmoid(a_o) * torch.tanh(c_out)
        if self.proj_size:
            h = h @ self.weight_hr.T
        if self.batch_norm:
            return h, BNLSTMState(h, c, t + 1)
        return h, LSTMState(h, c)

    def fused_unroll(self, x, state, lengths=None, reverse=False, masks=None):
        if (
            self.weight_norm
            and not self.is_structural_variant
            and masks is None
            and x.shape[0] >= KERNEL_STEPS
        ):
            return self._unroll_on_torch_kernel(x, state, lengths, reverse)
        h, c = state[0], state[1]
        step = state_steps(state, h) if self.batch_norm else None
        y, h, c = lstm_unroll(self, x, h, c, step, lengths, reverse, masks)
        if self.batch_norm:
            return y, BNLSTMState(h, c, step + (x.shape[0] if lengths is None else lengths))
        return y, LSTMState(h, c)

    def _unroll_on_torch_kernel(self, x, state, lengths, reverse):
        """A weight-normalised LSTM is an LSTM with the normalised matrices: torch's fused kernel
        runs it (autograd goes through the normalisation). Over many steps that is faster than
        the fused path (oneDNN's whole-sequence LSTM on CPU); for a few steps it is slower (the
        kernel reorders its weights in every call), so only from KERNEL_STEPS steps on."""
        weights = [self.weight_ih, self.weight_hh]
        if self.bias:
            weights += [self.bias_ih, self.bias_hh]
        if self.proj_size:
            weights.append(self.weight_hr)
        if reverse:
            x = reverse_padded(x, lengths)
        hx = (state[0].unsqueeze(0), state[1].unsqueeze(0))
        y, (h, c) = run_kernel("LSTM", weights, x, hx, lengths, has_bias=self.bias)
        if reverse:
            y = reverse_padded(y, lengths)
        return y, LSTMState(h.squeeze(0), c.squeeze(0))

    def torch_kernel(self):
        if self.is_variant:
            return None
        weights = [self.weight_ih, self.weight_hh]
        if self.bias:
            weights += [self.bias_ih, self.bias_hh]
        if self.proj_size:
            weights.append(self.weight_hr)
        return "LSTM", weights
