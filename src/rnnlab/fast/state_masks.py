"""The masks that recurrent dropout and zoneout apply to the recurrent state inside a fused loop.

At every step ``t`` of a fused pass (``s`` is ``h``, or an LSTM's ``c``)::

    h_in   = h_{t-1} * drop                          (recurrent dropout: what enters the step)
    s~_t   = the cell's step from h_in (and c_{t-1})
    s_t    = lerp(s~_t, s_{t-1}, zone_s[t])           (zoneout: = m s_{t-1} + (1 - m) s~_t)

``drop [B, H_out]`` is one scaled Bernoulli keep-mask per sequence (0 or ``1 / (1 - p)``).
``zone_h [T, B, H_out]`` and ``zone_c [T, B, H]`` hold 0 or 1 per step and unit in training, and
the probability ``p`` (shape ``[T, 1, 1]``) at evaluation, where zoneout is its expectation.
``T`` indexes time as the input does (also for a reverse pass). A field left ``None`` is not
applied. :func:`rnnlab.regularize.fused.draw_state_masks` draws them as the wrappers do.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass
class StateMasks:
    """Recurrent-dropout and zoneout masks of one fused pass (shapes in the module docstring)."""

    drop: Tensor | None = None
    zone_h: Tensor | None = None
    zone_c: Tensor | None = None

    def needed(self) -> set[str]:
        """The names of the masks that are set."""
        return {name for name in ("drop", "zone_h", "zone_c") if getattr(self, name) is not None}


def mask_parts(masks: StateMasks | None) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """``(drop, zone_h, zone_c)``, all ``None`` without masks."""
    return (None, None, None) if masks is None else (masks.drop, masks.zone_h, masks.zone_c)
