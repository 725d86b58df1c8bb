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
- The ablations of Greff et al. (2017, *LSTM: A Search Space Odyssey*), each dropping one
  part: ``input_gate=False`` (NIG, ``i_t = 1``), ``forget_gate=False`` (NFG, ``f_t = 1``),
  ``output_gate=False`` (NOG, ``o_t = 1``), ``input_activation=False`` (NIAF, ``g_t = a_g``, no
  tanh), ``output_activation=False`` (NOAF, ``h_t = o_t * c_t``); a dropped gate has no rows in
  the stacked matrices (nor in ``weight_peephole``). ``full_gate_recurrence=True`` (FGR): every
  sigmoid gate also sees all gates of the previous step, ``a_t += W_gg [i; f; o]_{t-1}``, so
  the state is ``FGRLSTMState(h, c, gates)``. ``variant=NAME`` picks one of the paper's eight
  (:data:`GREFF_VARIANTS`: ``vanilla`` has peepholes, ``np`` is the LSTM without them, ``cifg``
  is ``coupled``). These cells run the reference loop (:func:`is_greff_ablation`).
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
``ln_hh``, ``ln_c`` (``nn.LayerNorm``) or ``bn_ih``, ``bn_hh``, ``bn_c`` (``RecurrentBatchNorm``);
``weight_gg [G*H, G*H]`` (G sigmoid gates, rows and columns i, f, o) with
``full_gate_recurrence``, uniform. ``gate_blocks`` names the blocks of the stacked rows.
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


class FGRLSTMState(NamedTuple):
    """Full-gate-recurrence LSTM state: ``h``, ``c`` and ``gates [B, G*H]``, the previous
    step's sigmoid gates (i, f, o as present)."""

    h: Tensor
    c: Tensor
    gates: Tensor


class BNLSTMState(NamedTuple):
    """Batch-norm LSTM state: ``h``, ``c`` and ``step [B]`` (long), each sequence's time step."""

    h: Tensor
    c: Tensor
    step: Tensor


ABLATIONS: dict[str, bool] = {
    "input_gate": True,
    "forget_gate": True,
    "output_gate": True,
    "input_activation": True,
    "output_activation": True,
    "full_gate_recurrence": False,
}
"""The Greff et al. switches and their defaults (the standard LSTM)."""

GREFF_VARIANTS: dict[str, dict[str, bool]] = {
    name: {"peephole": True, "coupled": False, **ABLATIONS, **change}
    for name, change in {
        "vanilla": {},
        "nig": {"input_gate": False},
        "nfg": {"forget_gate": False},
        "nog": {"output_gate": False},
        "niaf": {"input_activation": False},
        "noaf": {"output_activation": False},
        "np": {"peephole": False},
        "cifg": {"coupled": True},
        "fgr": {"full_gate_recurrence": True},
    }.items()
}
"""Greff et al.'s variants as cell options: the vanilla LSTM has peepholes; each other one
changes one thing (``variant="nfg"`` is ``peephole=True, forget_gate=False``)."""


def check_variants(layer_norm: bool, batch_norm: bool) -> None:
    """Raise a ConfigError for variant combinations the maths does not allow."""
    if layer_norm and batch_norm:
        raise ConfigError("layer_norm and batch_norm normalise the same terms; choose one")


def resolve_greff(variant: str | None, given: dict[str, bool]) -> dict[str, bool]:
    """The switches of ``variant`` (a :data:`GREFF_VARIANTS` name) over the ``given`` ones; a
    given switch off its default that the variant sets otherwise is a ConfigError."""
    if variant is None:
        return given
    if variant not in GREFF_VARIANTS:
        raise ConfigError(
            f"unknown LSTM variant {variant!r}; choose one of {', '.join(GREFF_VARIANTS)}"
        )
    defaults = {"peephole": False, "coupled": False, **ABLATIONS}
    chosen = GREFF_VARIANTS[variant]
    for key, value in given.items():
        if value != defaults[key] and value != chosen[key]:
            raise ConfigError(f"variant {variant!r} sets {key}={chosen[key]}; drop {key}={value}")
    return dict(chosen)


def check_ablations(switches: dict[str, bool], batch_norm: bool) -> None:
    """Raise a ConfigError for Greff switches that contradict each other or the cell."""
    if switches["coupled"] and not (switches["input_gate"] and switches["forget_gate"]):
        raise ConfigError(
            "coupled sets f_t = 1 - i_t: it needs input_gate and forget_gate; drop one of them"
        )
    if switches["full_gate_recurrence"] and batch_norm:
        raise ConfigError("full_gate_recurrence does not combine with batch_norm; choose one")


def is_greff_ablation(cell: nn.Module) -> bool:
    """True for an ``LSTMCell`` with a Greff et al. switch off its default: it has no fused
    path and runs the reference loop."""
    return isinstance(cell, LSTMCell) and any(
        getattr(cell, key) != default for key, default in ABLATIONS.items()
    )


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
        input_gate: bool = True,
        forget_gate: bool = True,
        output_gate: bool = True,
        input_activation: bool = True,
        output_activation: bool = True,
        full_gate_recurrence: bool = False,
        variant: str | None = None,
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
        switches = resolve_greff(
            variant,
            {
                "peephole": bool(peephole),
                "coupled": bool(coupled),
                "input_gate": bool(input_gate),
                "forget_gate": bool(forget_gate),
                "output_gate": bool(output_gate),
                "input_activation": bool(input_activation),
                "output_activation": bool(output_activation),
                "full_gate_recurrence": bool(full_gate_recurrence),
            },
        )
        check_ablations(switches, batch_norm)
        self.input_size, self.hidden_size, self.proj_size = input_size, hidden_size, proj_size
        self.bias, self.forget_bias, self.init = bias, float(forget_bias), init
        self.chrono = check_chrono(chrono)
        self.variant = variant
        self.peephole, self.coupled = switches["peephole"], switches["coupled"]
        self.input_gate, self.forget_gate = switches["input_gate"], switches["forget_gate"]
        self.output_gate = switches["output_gate"]
        self.input_activation = switches["input_activation"]
        self.output_activation = switches["output_activation"]
        self.full_gate_recurrence = switches["full_gate_recurrence"]
        self.layer_norm, self.batch_norm = bool(layer_norm), bool(batch_norm)
        self.weight_norm = bool(weight_norm)
        present = {
            "i": self.input_gate,
            "f": self.forget_gate and not self.coupled,
            "g": True,
            "o": self.output_gate,
        }
        self.gate_blocks = tuple(name for name, kept in present.items() if kept)
        self.sigmoid_gates = tuple(name for name in self.gate_blocks if name != "g")
        self.gates = len(self.gate_blocks)
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
        if self.peephole:
            self.weight_peephole = nn.Parameter(torch.empty(self.gates - 1, hidden_size))
        else:
            self.register_parameter("weight_peephole", None)
        if self.full_gate_recurrence:
            gated = len(self.sigmoid_gates) * hidden_size
            self.weight_gg = nn.Parameter(torch.empty(gated, gated))
        else:
            self.register_parameter("weight_gg", None)
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
        return self.weight_norm or self.is_structural_variant

    @property
    def is_structural_variant(self) -> bool:
        """True when a variant changes the equations (all but ``weight_norm``)."""
        return (
            self.peephole
            or self.coupled
            or self.layer_norm
            or self.batch_norm
            or is_greff_ablation(self)
        )

    def block(self, name: str) -> slice:
        """The rows of gate block ``name`` (``"i"``, ``"f"``, ``"g"``, ``"o"``) in the stacks."""
        start = self.gate_blocks.index(name) * self.hidden_size
        return slice(start, start + self.hidden_size)

    def reset_parameters(self) -> None:
        hidden = self.hidden_size
        reset_weight_(self, "weight_ih", lambda w: init_uniform_(w, hidden))
        reset_weight_(self, "weight_hh", lambda w: init_recurrent_(w, self.gates, self.init))
        if self.bias:
            with torch.no_grad():
                self.bias_ih.zero_()
                self.bias_hh.zero_()
                gates = self.gate_blocks
                if self.chrono:
                    forget = chrono_bias(hidden, self.chrono)
                    if "i" in gates:
                        self.bias_ih[self.block("i")] = -forget
                    if "f" in gates:
                        self.bias_ih[self.block("f")] = forget
                elif self.coupled:
                    self.bias_ih[self.block("i")] = -self.forget_bias
                elif "f" in gates:
                    self.bias_ih[self.block("f")] = self.forget_bias
        if self.proj_size:
            init_uniform_(self.weight_hr, hidden)
        if self.peephole:
            init_uniform_(self.weight_peephole, hidden)
        if self.full_gate_recurrence:
            init_uniform_(self.weight_gg, hidden)

    def init_state(self, batch, device=None, dtype=None) -> LSTMState | BNLSTMState | FGRLSTMState:
        h = torch.zeros(batch, self.output_size, device=device, dtype=dtype)
        c = torch.zeros(batch, self.hidden_size, device=device, dtype=dtype)
        if self.batch_norm:
            return BNLSTMState(h, c, torch.zeros(batch, device=device, dtype=torch.long))
        if self.full_gate_recurrence:
            gated = len(self.sigmoid_gates) * self.hidden_size
            return FGRLSTMState(h, c, torch.zeros(batch, gated, device=device, dtype=dtype))
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
        a = dict(zip(self.gate_blocks, a.chunk(self.gates, dim=-1)))
        if self.full_gate_recurrence:  # a state without the gates (torch's (h, c)) has none yet
            if len(state) > 2:
                recurrent = (state[2] @ self.weight_gg.T).chunk(len(self.sigmoid_gates), dim=-1)
                for name, term in zip(self.sigmoid_gates, recurrent):
                    a[name] = a[name] + term
        if self.peephole:
            p = dict(zip(self.sigmoid_gates, self.weight_peephole))
            for name in ("i", "f"):
                if name in p:
                    a[name] = a[name] + p[name] * c_prev
        i = torch.sigmoid(a["i"]) if "i" in a else 1.0
        if self.coupled:
            f = 1 - i
        else:
            f = torch.sigmoid(a["f"]) if "f" in a else 1.0
        g = torch.tanh(a["g"]) if self.input_activation else a["g"]
        c = f * c_prev + i * g
        if self.peephole and "o" in a:
            a["o"] = a["o"] + p["o"] * c
        if self.layer_norm:
            c_out = self.ln_c(c)
        elif self.batch_norm:
            c_out = self.bn_c(c, t)
        else:
            c_out = c
        o = torch.sigmoid(a["o"]) if "o" in a else 1.0
        h = o * (torch.tanh(c_out) if self.output_activation else c_out)
        if self.proj_size:
            h = h @ self.weight_hr.T
        if self.batch_norm:
            return h, BNLSTMState(h, c, t + 1)
        if self.full_gate_recurrence:
            gates = {"i": i, "f": f, "o": o}
            return h, FGRLSTMState(h, c, torch.cat([gates[n] for n in self.sigmoid_gates], -1))
        return h, LSTMState(h, c)

    def fused_unroll(self, x, state, lengths=None, reverse=False, masks=None):
        if is_greff_ablation(self):  # the fused and native loops compute the standard gates
            return None
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
