"""Non-finite losses and gradients never reach the weights.

Every step the trainer asks :meth:`NonFiniteGuard.check`: a step whose loss or global gradient
norm is ``nan``/``inf`` is skipped (no optimizer update) and counted. After ``patience``
consecutive skipped steps the trainer rolls back to the last checkpoint (weights, optimizer, data
position, hidden state, RNG) and multiplies the learning rate by ``lr_decay``; after
``max_rollbacks`` roll-backs it gives up with :class:`TrainingDiverged`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rnnlab.errors import RnnlabError


class TrainingDiverged(RnnlabError):
    """The loss stayed non-finite even after rolling back with lower learning rates."""


@dataclass
class NonFiniteGuard:
    """Counts skipped steps and decides when to roll back."""

    patience: int = 5
    lr_decay: float = 0.5
    max_rollbacks: int = 3
    skipped: int = 0
    consecutive: int = 0
    rollbacks: int = 0

    def check(self, loss: float, grad_norm: float) -> bool:
        """``True`` when the step may update the weights; counts it as skipped otherwise."""
        if math.isfinite(loss) and math.isfinite(grad_norm):
            self.consecutive = 0
            return True
        self.skipped += 1
        self.consecutive += 1
        return False

    @property
    def must_roll_back(self) -> bool:
        return self.consecutive >= self.patience

    def rolled_back(self) -> float:
        """Record a roll-back; return the factor to multiply the learning rate by."""
        self.rollbacks += 1
        self.consecutive = 0
        if self.rollbacks > self.max_rollbacks:
            raise TrainingDiverged(
                f"the loss stayed non-finite after {self.max_rollbacks} roll-backs with lower "
                "learning rates; try a smaller --lr, --clip-norm 1, or a smaller model"
            )
        return self.lr_decay

    def state_dict(self) -> dict[str, int]:
        return {
            "skipped": self.skipped,
            "consecutive": self.consecutive,
            "rollbacks": self.rollbacks,
        }

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.skipped, self.consecutive = state["skipped"], state["consecutive"]
        self.rollbacks = state["rollbacks"]
