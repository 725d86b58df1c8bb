"""The Mackey-Glass chaotic time series (Mackey & Glass 1977), the classic echo state network
benchmark (Jaeger 2001, tau = 17).

    dx/dt = a x(t - tau) / (1 + x(t - tau)^n) - b x(t),   a = 0.2, b = 0.1, n = 10

integrated with the classical 4th-order Runge-Kutta method at step ``dt`` (default 0.1, so that
``tau / dt`` is a whole number of steps); the delayed value at a half step is the mean of its two
neighbours on the grid. The history before ``t = 0`` is the constant ``x0``; one sample is taken
every ``sample_step`` time units after discarding the first ``transient`` samples.
"""

from __future__ import annotations

import numpy as np
import torch

from rnnlab.errors import ConfigError


def mackey_glass(
    n_samples: int,
    tau: float = 17.0,
    a: float = 0.2,
    b: float = 0.1,
    n: float = 10.0,
    x0: float = 1.2,
    dt: float = 0.1,
    sample_step: float = 1.0,
    transient: int = 0,
) -> torch.Tensor:
    """``n_samples`` values of the series, float64 tensor ``[n_samples]``."""
    delay = round(tau / dt)
    every = round(sample_step / dt)
    if n_samples < 1 or delay < 1 or every < 1 or transient < 0:
        raise ConfigError("mackey_glass needs n_samples >= 1, tau >= dt, sample_step >= dt")
    if abs(delay * dt - tau) > 1e-9 or abs(every * dt - sample_step) > 1e-9:
        raise ConfigError("tau and sample_step must be whole multiples of dt")
    steps = (n_samples + transient) * every
    x = np.empty(delay + steps + 1)
    x[: delay + 1] = x0

    def f(now: float, delayed: float) -> float:
        return a * delayed / (1.0 + delayed**n) - b * now

    for i in range(delay, delay + steps):
        lag, lag_next = x[i - delay], x[i - delay + 1]
        lag_mid = 0.5 * (lag + lag_next)
        xi = x[i]
        k1 = f(xi, lag)
        k2 = f(xi + 0.5 * dt * k1, lag_mid)
        k3 = f(xi + 0.5 * dt * k2, lag_mid)
        k4 = f(xi + dt * k3, lag_next)
        x[i + 1] = xi + dt * (k1 + 2 * k2 + 2 * k3 + k4) / 6
    samples = x[delay::every][transient : transient + n_samples]
    return torch.from_numpy(samples.copy())
