"""Unitary evolution RNN (Arjovsky, Shah & Bengio 2016).

The recurrent matrix is a product of cheap unitary factors, so it is unitary for every value of
its 7N parameters and ``||W h|| = ||h||`` (no exploding or vanishing through W)::

    W   = D3 R2 F^-1 D2 Pi R1 F D1
    h_t = modReLU(W h_{t-1} + V x_t, b)                  h_t complex, [N]
    modReLU(z, b) = relu(|z| + b) * z / |z|              elementwise
    y_t = [Re h_t, Im h_t]                               real, [2N]

``D_k = diag(exp(i theta_k))`` are diagonal phase matrices, ``R_k = I - 2 v_k v_k^* / ||v_k||^2``
complex reflections, ``Pi`` a fixed random permutation and ``F`` the unitary DFT. The paper's
real output ``o_t = U [Re h_t; Im h_t] + b_o`` is a linear layer on ``y_t``, which is why the cell
outputs the real and imaginary parts side by side (``output_size = 2N``). The state is stored the
same way, as a real tensor ``[B, 2N]`` (real parts first), so that it behaves like every other
state (dtype casts, masking, detaching); ``|z|`` in modReLU is ``sqrt(|z|^2 + 1e-8)``.

Example::

    cell = rnnlab.cells.create("urnn", input_size=1, hidden_size=128)
    y, h = rnnlab.Recurrent(cell)(torch.randn(600, 8, 1))     # y: [600, 8, 256]
    unitarity_error(cell)                                      # < 1e-6 in float32

Attributes: ``theta [3, N]`` ~ U(-pi, pi); ``reflection [2, 2, N]`` (factor, real/imag) ~
U(-1, 1); ``permutation [N]`` (buffer); ``weight_ih [2N, I]`` (rows Re V, Im V) ~
U(-sqrt(6 / (I + 2N)), +); ``bias [N]`` (modReLU) ~ U(-0.01, 0.01), as in the paper's code.
The initial state is zero.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from rnnlab.cells.base import Cell, register
from rnnlab.validation import check_positive

MODRELU_EPS = 1e-8


def _reflect(h: Tensor, v: Tensor) -> Tensor:
    """``(I - 2 v v^* / ||v||^2) h`` for each row of ``h [B, N]``."""
    projection = (h * v.conj()).sum(-1, keepdim=True) / v.abs().square().sum()
    return h - 2 * projection * v


@register("urnn", "unitary")
class UnitaryCell(Cell):
    """uRNN cell; complex state of N units stored as real ``[B, 2N]``; output ``[B, 2N]``."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        check_positive(input_size=input_size, hidden_size=hidden_size)
        self.input_size, self.hidden_size = input_size, hidden_size
        self.theta = nn.Parameter(torch.empty(3, hidden_size))
        self.reflection = nn.Parameter(torch.empty(2, 2, hidden_size))
        self.weight_ih = nn.Parameter(torch.empty(2 * hidden_size, input_size))
        self.bias = nn.Parameter(torch.empty(hidden_size))
        self.register_buffer("permutation", torch.randperm(hidden_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = math.sqrt(6.0 / (self.input_size + 2 * self.hidden_size))
        with torch.no_grad():
            self.theta.uniform_(-math.pi, math.pi)
            self.reflection.uniform_(-1.0, 1.0)
            self.weight_ih.uniform_(-bound, bound)
            self.bias.uniform_(-0.01, 0.01)

    @property
    def output_size(self) -> int:
        return 2 * self.hidden_size

    def init_state(self, batch, device=None, dtype=None) -> Tensor:
        return torch.zeros(batch, 2 * self.hidden_size, device=device, dtype=dtype)

    def recurrent_matrix_apply(self, h: Tensor) -> Tensor:
        """``W h`` for complex rows ``h [B, N]``."""
        phases = torch.polar(torch.ones_like(self.theta), self.theta)
        r1 = torch.complex(self.reflection[0, 0], self.reflection[0, 1])
        r2 = torch.complex(self.reflection[1, 0], self.reflection[1, 1])
        h = torch.fft.fft(h * phases[0], norm="ortho")
        h = _reflect(h, r1)[..., self.permutation] * phases[1]
        h = _reflect(torch.fft.ifft(h, norm="ortho"), r2)
        return h * phases[2]

    def precompute(self, x: Tensor) -> Tensor:
        return x @ self.weight_ih.T

    def step(self, xp_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        n = self.hidden_size
        h = torch.complex(state[..., :n], state[..., n:])
        z = self.recurrent_matrix_apply(h) + torch.complex(xp_t[..., :n], xp_t[..., n:])
        modulus = torch.sqrt(z.real.square() + z.imag.square() + MODRELU_EPS)
        scale = torch.relu(modulus + self.bias) / modulus
        h = torch.cat([z.real * scale, z.imag * scale], dim=-1)
        return h, h


def unitary_matrix(cell: UnitaryCell) -> Tensor:
    """The recurrent matrix ``W [N, N]`` (complex) of a uRNN cell, column j = ``W e_j``."""
    dtype = torch.complex128 if cell.theta.dtype == torch.float64 else torch.complex64
    eye = torch.eye(cell.hidden_size, dtype=dtype, device=cell.theta.device)
    with torch.no_grad():
        return cell.recurrent_matrix_apply(eye).T


def unitarity_error(cell: UnitaryCell) -> float:
    """``max |W^* W - I|``: how far the cell's recurrent matrix is from unitary."""
    w = unitary_matrix(cell)
    eye = torch.eye(w.shape[0], dtype=w.dtype, device=w.device)
    return float((w.conj().T @ w - eye).abs().max())
