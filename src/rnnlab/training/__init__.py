"""Training: the Trainer, schedules, clipping, checkpoints and recovery, for any task."""

from rnnlab.training.config import make_config
from rnnlab.training.trainer import Trainer

__all__ = ["Trainer", "make_config"]
