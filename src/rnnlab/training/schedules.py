"""Learning-rate schedules: a factor in ``(0, 1]`` multiplying the peak learning rate ``--lr``.

==========  =================================================================================
constant    1 (the default; does not depend on the budget, so a resumed run with a longer
            budget is exactly a longer run)
cosine      ``0.1 + 0.9 * (1 + cos(pi * p)) / 2``: from 1 down to 0.1 at the end of the budget,
            where ``p`` in [0, 1] is the fraction of the budget used (the largest of steps /
            ``--max-steps``, minutes / ``--max-minutes``, epochs / ``--epochs``)
step        ``0.5 ** floor(4 * p)``: halved at each quarter of the budget
==========  =================================================================================

``--warmup N`` multiplies any of them by ``min(1, (step + 1) / N)`` during the first N steps.
"""

from __future__ import annotations

import math

from rnnlab.errors import ConfigError


def lr_factor(schedule: str, progress: float, step: int, warmup: int = 0) -> float:
    """The learning-rate factor at optimizer ``step`` with ``progress`` in [0, 1] of the budget."""
    progress = min(max(progress, 0.0), 1.0)
    if schedule == "constant":
        factor = 1.0
    elif schedule == "cosine":
        factor = 0.1 + 0.9 * (1.0 + math.cos(math.pi * progress)) / 2.0
    elif schedule == "step":
        factor = 0.5 ** math.floor(4 * min(progress, 0.999999))
    else:
        raise ConfigError(f"unknown schedule {schedule!r}; choose constant, cosine or step")
    if warmup > 0 and step < warmup:
        factor *= (step + 1) / warmup
    return factor
