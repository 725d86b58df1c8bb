"""TensorBoard event files beside ``metrics.jsonl`` (``rnnlab train --tensorboard``).

Every record the trainer appends to ``metrics.jsonl`` is also written as TensorBoard scalars:
each number ``name`` of a record with ``"split": S`` becomes the scalar ``S/name`` at the
record's ``step`` (``train/loss``, ``train/grad_norm/layers.0``, ``train/lr``, ``valid/bpc``,
``spectrum/layers.0.cell/spectral_radius``, ...). View them with::

    tensorboard --logdir RUN/tensorboard

Needs the ``tensorboard`` package (``pip install 'rnnlab[tensorboard]'``); torch's
``SummaryWriter`` writes the files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rnnlab.errors import ConfigError

DIRECTORY = "tensorboard"
"""The event files' folder inside the run directory."""


def summary_writer_class() -> type:
    """``torch.utils.tensorboard.SummaryWriter``, or a ``ConfigError`` naming the extra."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError(
            "--tensorboard needs the tensorboard package: pip install 'rnnlab[tensorboard]'"
        ) from None
    return SummaryWriter


class TensorBoardLog:
    """Writes metrics records as scalars into ``directory``.

    The package is checked when this is built (so a missing one fails before training); the
    folder and its event file are created with the first record. Every record is flushed to
    disk at once, so an interrupted run keeps all it logged.
    """

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self._writer_class = summary_writer_class()
        self._writer: Any = None

    def write(self, record: dict[str, Any]) -> None:
        """``record``: a ``metrics.jsonl`` row with ``step`` and ``split``."""
        if self._writer is None:
            self._writer = self._writer_class(log_dir=str(self.directory))
        step, split = record["step"], record.get("split", "run")
        for name, value in record.items():
            if name in ("step", "split") or not isinstance(value, (int, float)):
                continue
            self._writer.add_scalar(f"{split}/{name}", value, step)
        self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
