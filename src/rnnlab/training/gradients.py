"""Gradient monitoring and automatic clipping ("aim to clip a few % of all steps").

Every step, after ``backward()`` and before clipping, :class:`GradientMonitor` measures

- ``grad_norm``: the global gradient norm, and ``grad_norm/<layer>`` for each top-level part of
  the model (``embedding``, ``layers.0``, ``layers.1``, ``decoder``, ...: the parameter name up to
  and including its first numeric component);
- ``clipped``: 1 when the step was clipped, else 0; averaged over a log window this is the
  clip rate of that window.

These go into the step's metrics, so ``metrics.jsonl`` gets their window means.

``--clip-norm auto`` clips at the ``1 - target`` quantile of the last :data:`HISTORY` global
norms (``--clip-target``, default 5%), so that about ``target`` of the steps are clipped. It does
not clip during the first :data:`MIN_HISTORY` steps (there is no distribution yet). When the clip
rate over the last :data:`HISTORY` steps is below ``target / 3`` or above ``3 * target``,
:meth:`GradientMonitor.warning` says so (norms that keep falling make the rate drop: the
quantile lags behind).
"""

from __future__ import annotations

import math
from collections import deque

import torch
from torch import Tensor, nn

from rnnlab.training.clipping import clip_gradients

AUTO = "auto"
HISTORY = 500
MIN_HISTORY = 20


def layer_name(parameter_name: str) -> str:
    """``layers.0.cell.weight_hh`` -> ``layers.0``; ``decoder.weight`` -> ``decoder``."""
    parts = parameter_name.split(".")
    for i, part in enumerate(parts[:-1]):
        if part.isdigit():
            return ".".join(parts[: i + 1])
    return parts[0] if len(parts) > 1 else "params"


class GradientMonitor:
    """Per-layer gradient norms, clipping (fixed or ``auto``), and the clip rate.

    Args:
        model: the model whose gradients are clipped.
        clip_norm: a threshold on the global norm, ``"auto"``, or None.
        clip_value: clamp every gradient element to ``[-clip_value, clip_value]`` (or None).
        target: for ``auto``: the fraction of steps to clip.
    """

    def __init__(
        self,
        model: nn.Module,
        clip_norm: float | str | None,
        clip_value: float | None,
        target: float = 0.05,
    ):
        self.model = model
        self.clip_norm, self.clip_value, self.target = clip_norm, clip_value, target
        self.norms: deque[float] = deque(maxlen=HISTORY)  # recent global norms (auto)
        self.clips: deque[int] = deque(maxlen=HISTORY)  # recent clip decisions (auto)

    @property
    def auto(self) -> bool:
        return self.clip_norm == AUTO

    def threshold(self) -> float | None:
        """The norm clipped to this step: fixed, the running quantile, or None."""
        if not self.auto:
            return self.clip_norm
        if len(self.norms) < MIN_HISTORY:
            return None
        history = torch.tensor(list(self.norms), dtype=torch.float64)
        return float(torch.quantile(history, 1.0 - self.target))

    def layer_norms(self) -> dict[str, float]:
        squares: dict[str, Tensor] = {}
        for name, p in self.model.named_parameters():
            if p.grad is not None:
                key = f"grad_norm/{layer_name(name)}"
                squares[key] = squares.get(key, 0.0) + p.grad.detach().pow(2).sum()
        return {k: float(v.sqrt()) for k, v in squares.items()}

    def clip(self) -> tuple[float, bool, dict[str, float]]:
        """Measure and clip this step's gradients; ``(global norm, clipped, metrics)``.

        Non-finite gradients are measured but neither clipped nor recorded."""
        layers = self.layer_norms()
        threshold = self.threshold()
        norm, clipped = clip_gradients(self.model.parameters(), threshold, self.clip_value)
        if not math.isfinite(norm):
            return norm, False, {}
        if self.auto:
            self.norms.append(norm)
            self.clips.append(int(clipped))
        metrics = {"grad_norm": norm, **layers, "clipped": float(clipped)}
        if threshold is not None:
            metrics["clip_threshold"] = threshold
        return norm, clipped, metrics

    def warning(self) -> str | None:
        """A one-line warning when ``auto`` clips far more or less often than its target."""
        if not self.auto or len(self.clips) < HISTORY:
            return None
        rate = sum(self.clips) / len(self.clips)
        if self.target / 3 <= rate <= 3 * self.target:
            return None
        return (
            f"--clip-norm auto clipped {rate:.1%} of the last {len(self.clips)} steps, far from "
            f"--clip-target {self.target:.1%} (gradient norms are drifting; a fixed --clip-norm "
            "may suit this run better)"
        )

    def state_dict(self) -> dict[str, list]:
        return {"norms": list(self.norms), "clips": list(self.clips)}

    def load_state_dict(self, state: dict[str, list]) -> None:
        self.norms = deque(state["norms"], maxlen=HISTORY)
        self.clips = deque(state["clips"], maxlen=HISTORY)
