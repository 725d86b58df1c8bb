"""Scheduled sampling (Bengio et al. 2015): how often a decoder is fed the gold previous token.

During training, each target token's input is the gold previous token with probability
``eps_i`` and the model's own sampled prediction otherwise, decided independently for every
token (``RecurrentDecoder.scheduled``). ``eps_i`` decays with the training step ``i``:

==================  ==============================================  ===========================
schedule            eps_i                                           default parameters
==================  ==============================================  ===========================
``teacher``         1 (teacher forcing)
``free``            0 (free running: always the model's own tokens)
``linear``          ``max(minimum, k - c * i)``                     k = 1, c = 1e-4
``exponential``     ``max(minimum, k ** i)``, ``k < 1``             k = 0.9995
``inverse_sigmoid`` ``max(minimum, k / (k + exp(i / k)))``, k >= 1  k = 1000
==================  ==============================================  ===========================

The current ``eps_i`` is logged as ``teacher_prob`` by the tasks that use it.

Example::

    schedule = ScheduledSampling("inverse_sigmoid", k=500)
    loss, metrics = model.loss(..., teacher_prob=schedule.probability(step))
"""

from __future__ import annotations

import math

from rnnlab.errors import ConfigError

SCHEDULES = ("teacher", "free", "linear", "exponential", "inverse_sigmoid")
_DEFAULT_K = {"linear": 1.0, "exponential": 0.9995, "inverse_sigmoid": 1000.0}


class ScheduledSampling:
    """The probability ``eps_i`` of feeding the gold token at training step ``i``."""

    def __init__(
        self,
        schedule: str = "teacher",
        k: float | None = None,
        c: float = 1e-4,
        minimum: float = 0.0,
    ) -> None:
        if schedule not in SCHEDULES:
            raise ConfigError(
                f"scheduled sampling must be one of {', '.join(SCHEDULES)}, got {schedule!r}"
            )
        self.schedule, self.c, self.minimum = schedule, c, minimum
        self.k = _DEFAULT_K.get(schedule, 1.0) if k is None else k
        if schedule == "exponential" and not 0 < self.k < 1:
            raise ConfigError(f"the exponential schedule needs 0 < k < 1, got k={self.k}")
        if schedule == "inverse_sigmoid" and self.k < 1:
            raise ConfigError(f"the inverse-sigmoid schedule needs k >= 1, got k={self.k}")
        if not 0 <= minimum <= 1:
            raise ConfigError(f"the minimum probability must be in [0, 1], got {minimum}")

    def probability(self, step: int) -> float:
        """``eps_i`` at training step ``step`` (see the module docstring)."""
        if self.schedule == "teacher":
            return 1.0
        if self.schedule == "free":
            return 0.0
        if self.schedule == "linear":
            eps = self.k - self.c * step
        elif self.schedule == "exponential":
            eps = self.k**step
        else:
            eps = self.k / (self.k + math.exp(min(step / self.k, 700.0)))
        return min(1.0, max(self.minimum, eps))

    def __repr__(self) -> str:
        return f"ScheduledSampling({self.schedule!r}, k={self.k}, c={self.c}, min={self.minimum})"
