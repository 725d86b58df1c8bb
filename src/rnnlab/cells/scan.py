"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs all we needed?"): gates that depend on the
input only, so a whole sequence is one parallel prefix scan.

minGRU::

    z_t  = sigmoid(W_z x_t + b_z)
    h~_t = g(W_h x_t + b_h)
    h_t  = (1 - z_t) * h_{t-1} + z_t * h~_t

minLSTM::

    f_t  = sigmoid(W_f x_t + b_f),   i_t = sigmoid(W_i x_t + b_i)
    f'_t = f_t / (f_t + i_t),        i'_t = i_t / (f_t + i_t)
    h~_t = g(W_h x_t + b_h)
    h_t  = f'_t * h_{t-1} + i'_t * h~_t

with the paper's ``g(v) = v + 0.5`` for ``v >= 0`` and ``sigmoid(v)`` otherwise (positive, so the
scan can run in log space). Both are ``h_t = a_t * h_{t-1} + b_t`` with ``a_t, b_t`` computed from
the inputs alone: :class:`rnnlab.layers.Recurrent` runs a whole sequence through
:func:`rnnlab.fast.scan.linear_scan` (log-space parallel scan) via the cells' ``fused_unroll``
hook, and :meth:`step` is the same recurrence one step at a time (generation), with the same
outputs (tested to 1e-5 up to T=4096).

Example::

    rnn = rnnlab.Recurrent(rnnlab.cells.create("mingru", input_size=65, hidden_size=256))
    y, h = rnn(torch.randn(1024, 8, 65))      # one parallel scan over the 1024 steps

Attributes: ``weight_ih [2H, I]`` (rows z, h~) for minGRU, ``[3H, I]`` (rows f, i, h~) for
minLSTM, and ``bias_ih``; all ~ U(-1/sqrt(H), 1/sqrt(H)) like torch.nn's RNNs. State ``h [B, H]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.cells.base import Cell, register
from rnnlab.cells.init import init_uniform_
from rnnlab.fast.scan import linear_scan
from rnnlab.sequences import reverse_padded
from rnnlab.validation import check_positive


def log_g(v: Tensor) -> Tensor:
    """``log g(v)`` of the paper's positive activation for candidate states, ``g(v) = v + 0.5``
    for ``v >= 0`` and ``sigmoid(v)`` otherwise (continuous at 0), without forming ``g``."""
    return torch.where(v >= 0, torch.log(F.relu(v) + 0.5), -F.softplus(-v))


def scan_unroll(
    log_a: Tensor,
    b: Tensor | None,
    log_b: Tensor | None,
    h0: Tensor,
    lengths: Tensor | None,
) -> tuple[Tensor, Tensor]:
    """``h_t = a_t h_{t-1} + b_t`` over time-major coefficients: all ``h [T, B, H]`` (zero past
    each length) and the final state (each sequence's ``h`` at its last valid step)."""
    h = linear_scan(log_a, b, h0, log_b=log_b)
    if lengths is None:
        return h, h[-1]
    final = h[lengths - 1, torch.arange(h.shape[1], device=h.device)]
    valid = torch.arange(h.shape[0], device=h.device).unsqueeze(1) < lengths
    return h * valid.unsqueeze(-1).to(h.dtype), final


class _MinimalRNN(Cell):
    """Shared machinery of minGRU and minLSTM: a linear projection of the input gives the
    log-coefficients of ``h_t = a_t h_{t-1} + b_t``; ``step`` and ``fused_unroll`` use them."""

    gates: int

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__()
        check_positive(input_size=input_size, hidden_size=hidden_size)
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        self.weight_ih = nn.Parameter(torch.empty(self.gates * hidden_size, input_size))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(self.gates * hidden_size))
        else:
            self.register_parameter("bias_ih", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init_uniform_(self.weight_ih, self.hidden_size)
        if self.bias:
            init_uniform_(self.bias_ih, self.hidden_size)

    def init_state(self, batch, device=None, dtype=None) -> Tensor:
        return torch.zeros(batch, self.hidden_size, device=device, dtype=dtype)

    def precompute(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight_ih, self.bias_ih)

    def log_coefficients(self, xp: Tensor) -> tuple[Tensor, Tensor]:
        """``(log a_t, log b_t)`` from the precomputed projections ``xp [..., gates * H]``."""
        raise NotImplementedError

    def step(self, xp_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        log_a, log_b = self.log_coefficients(xp_t)
        h = torch.exp(log_a) * state + torch.exp(log_b)
        return h, h

    def fused_unroll(
        self, x: Tensor, state: Tensor, lengths: Tensor | None = None, reverse: bool = False
    ) -> tuple[Tensor, Tensor]:
        """The whole sequence ``x [T, B, I]`` as one log-space parallel scan (same contract and
        results as :func:`rnnlab.layers.unroll.unroll`)."""
        if reverse:
            x = reverse_padded(x, lengths)
        log_a, log_b = self.log_coefficients(self.precompute(x))
        y, state = scan_unroll(log_a, None, log_b, state, lengths)
        return (reverse_padded(y, lengths) if reverse else y), state


@register("mingru")
class MinGRUCell(_MinimalRNN):
    """minGRU cell (Feng et al. 2024); state ``h [B, H]``."""

    gates = 2

    def log_coefficients(self, xp: Tensor) -> tuple[Tensor, Tensor]:
        k, v = xp.chunk(2, dim=-1)
        # log(1 - z) = -softplus(k), log z = -softplus(-k)
        return -F.softplus(k), -F.softplus(-k) + log_g(v)


@register("minlstm")
class MinLSTMCell(_MinimalRNN):
    """minLSTM cell (Feng et al. 2024); state ``h [B, H]``."""

    gates = 3

    def log_coefficients(self, xp: Tensor) -> tuple[Tensor, Tensor]:
        kf, ki, v = xp.chunk(3, dim=-1)
        # log f' = log f - log(f + i) = -softplus(d), log i' = -softplus(-d),
        # with d = log i - log f = softplus(-kf) - softplus(-ki)
        d = F.softplus(-kf) - F.softplus(-ki)
        return -F.softplus(d), -F.softplus(-d) + log_g(v)
