"""What recurrent dropout, DropConnect and zoneout hand to a fused loop.

At every step ``t`` of a fused pass (``s`` is ``h``, or an LSTM's ``c``)::

    h_in   = h_{t-1} * drop                          (recurrent dropout: what enters the step)
    s~_t   = the cell's step from h_in (and c_{t-1}), with weight_hh in place of W_hh
    s_t    = lerp(s~_t, s_{t-1}, zone_s[t])           (zoneout: = m s_{t-1} + (1 - m) s~_t)

``drop [B, H_out]`` is one scaled Bernoulli keep-mask per sequence (0 or ``1 / (1 - p)``).
``weight_hh`` is the cell's ``W_hh`` times its DropConnect mask (one per pass), a differentiable
tensor: its gradient flows back to the parameter through the mask.
``zone_h [T, B, H_out]`` and ``zone_c [T, B, H]`` hold 0 or 1 per step and unit in training, and
the probability ``p`` (shape ``[T, 1, 1]``) at evaluation, where zoneout is its expectation.
``T`` indexes time as the input does (also for a reverse pass). A field left ``None`` is not
applied. :func:`rnnlab.regularize.fused.draw_masks` draws them as the wrappers do.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass
class RegularizerMasks:
    """Recurrent-dropout, DropConnect and zoneout inputs of one fused pass (see the module)."""

    drop: Tensor | None = None
    weight_hh: Tensor | None = None
    zone_h: Tensor | None = None
    zone_c: Tensor | None = None


def mask_parts(
    masks: RegularizerMasks | None,
) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """``(drop, zone_h, zone_c)``, all ``None`` without masks."""
    return (None, None, None) if masks is None else (masks.drop, masks.zone_h, masks.zone_c)


def recurrent_weight(masks: RegularizerMasks | None, weight_hh: Tensor) -> Tensor:
    """The recurrent matrix of the pass: DropConnect's masked one, or the cell's ``weight_hh``."""
    return weight_hh if masks is None or masks.weight_hh is None else masks.weight_hh
