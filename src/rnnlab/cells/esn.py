"""Echo state network reservoir (Jaeger 2001), leaky-integrator form (Jaeger et al. 2007).

    h_t = (1 - a) h_{t-1} + a tanh(W_h h_{t-1} + W_x x_t + W_fb y_{t-1} + b)
    y_t = h_t   (the trained readout lives in rnnlab.models.EchoStateNetwork)

``W_h`` is a sparse random matrix (a fraction ``connectivity`` of non-zero N(0, 1) entries) rescaled
so that its spectral radius (largest |eigenvalue|) is ``spectral_radius``; ``W_x`` is sparse with
entries +-``input_scaling`` (a fraction ``input_connectivity`` non-zero), ``W_fb`` likewise with
``feedback_scaling``; ``b`` ~ U(-``bias_scaling``, ``bias_scaling``). None of them is trained: they
are buffers, not parameters. With output feedback (``feedback_size > 0``) each step's input is
``[x_t, y_{t-1}]`` (width ``input_size + feedback_size``): teacher forcing feeds the target,
free-running generation the model's own previous output.

Example::

    cell = rnnlab.cells.create("esn", input_size=1, hidden_size=100, spectral_radius=1.25,
                               leak_rate=0.3)
    states, h = rnnlab.Recurrent(cell)(torch.randn(500, 1, 1))

Defaults are ReservoirPy's (``leak_rate=1``, ``spectral_radius=1``, ``input_scaling=1``,
10% connectivity of ``W_h`` and ``W_x``, no bias); ``seed`` makes the reservoir reproducible.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rnnlab.cells.base import Cell, register
from rnnlab.errors import ConfigError
from rnnlab.validation import check_positive


def sparse_random(
    rows: int, cols: int, density: float, generator: torch.Generator, signs: bool = False
) -> Tensor:
    """A ``[rows, cols]`` float64 matrix with a fraction ``density`` of non-zero entries (at least
    one per row), N(0, 1) or (``signs=True``) +-1."""
    mask = torch.rand(rows, cols, generator=generator, dtype=torch.float64) < density
    mask[torch.arange(rows), torch.randint(cols, (rows,), generator=generator)] = True
    if signs:
        values = torch.randint(2, (rows, cols), generator=generator).to(torch.float64) * 2 - 1
    else:
        values = torch.randn(rows, cols, generator=generator, dtype=torch.float64)
    return values * mask


def spectral_radius_of(weight: Tensor) -> float:
    """Largest absolute eigenvalue of a square matrix."""
    return float(torch.linalg.eigvals(weight.detach().double().cpu()).abs().max())


@register("esn", "reservoir")
class EchoStateCell(Cell):
    """Leaky reservoir of an echo state network; state ``h [B, H]``; nothing trainable."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        spectral_radius: float = 1.0,
        leak_rate: float = 1.0,
        input_scaling: float = 1.0,
        connectivity: float = 0.1,
        input_connectivity: float = 0.1,
        bias_scaling: float = 0.0,
        feedback_size: int = 0,
        feedback_scaling: float = 1.0,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        check_positive(input_size=input_size, hidden_size=hidden_size)
        if not 0.0 < leak_rate <= 1.0:
            raise ConfigError(f"leak_rate must be in (0, 1], got {leak_rate}")
        for name, value in (
            ("connectivity", connectivity),
            ("input_connectivity", input_connectivity),
        ):
            if not 0.0 < value <= 1.0:
                raise ConfigError(f"{name} must be in (0, 1], got {value}")
        if feedback_size < 0:
            raise ConfigError(f"feedback_size must be >= 0, got {feedback_size}")
        self.input_size, self.hidden_size, self.feedback_size = (
            input_size,
            hidden_size,
            feedback_size,
        )
        self.leak_rate = leak_rate
        generator = torch.Generator().manual_seed(
            seed if seed is not None else int(torch.randint(2**62, ()))
        )
        w_hh = sparse_random(hidden_size, hidden_size, connectivity, generator)
        radius = spectral_radius_of(w_hh)
        if radius > 0:
            w_hh *= spectral_radius / radius
        w_in = sparse_random(hidden_size, input_size, input_connectivity, generator, signs=True)
        w_in *= input_scaling
        if feedback_size:
            w_fb = sparse_random(hidden_size, feedback_size, input_connectivity, generator, True)
            w_in = torch.cat([w_in, w_fb * feedback_scaling], dim=1)
        bias = (torch.rand(hidden_size, generator=generator, dtype=torch.float64) * 2 - 1) * (
            bias_scaling
        )
        dtype = torch.get_default_dtype()
        self.register_buffer("weight_hh", w_hh.to(dtype))
        self.register_buffer("weight_ih", w_in.to(dtype))
        self.register_buffer("bias", bias.to(dtype))

    def init_state(self, batch, device=None, dtype=None) -> Tensor:
        return torch.zeros(batch, self.hidden_size, device=device, dtype=dtype)

    def precompute(self, x: Tensor) -> Tensor:
        """``W_x x_t (+ W_fb y_{t-1}) + b`` for all steps of ``x [T, B, input + feedback size]``."""
        return torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight_ih.T).view(
            *x.shape[:-1], self.hidden_size
        )

    def step(self, xp_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        update = torch.tanh(torch.addmm(xp_t, state, self.weight_hh.T))
        h = torch.lerp(state, update, self.leak_rate)
        return h, h
