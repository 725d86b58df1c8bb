"""The Task contract and the registry of tasks.

A task says what to learn: which data, which model, which loss, which evaluation. The
:class:`~rnnlab.training.trainer.Trainer` says how parameters move (optimizer, schedule,
clipping, recovery, checkpoints) and works with every task. A task is one module in
``rnnlab/tasks/``::

    @register("charlm")
    class CharLM(Task):
        metric, metric_mode = "loss", "min"
        defaults = {"hidden": 512, "seq_len": 128}

        @classmethod
        def add_arguments(cls, parser): parser.add_argument("--data", ...)
        def __init__(self, config, run_dir=None): ...   # data, vocabulary
        def build_model(self): ...                       # nn.Module
        def train_batches(self, epoch, start=0): ...     # iterator of batches
        def loss(self, model, batch, state): ...         # (loss, state, metrics)
        def evaluate(self, model, split): ...            # {"loss": ..., ...}

Life cycle (what the trainer and the CLI call, in order):

1. ``create(name, config, run_dir)``: ``config`` is the resolved ``argparse.Namespace`` of the
   trainer's generic flags and the task's own flags (``defaults`` of the task for flags the user
   did not give); no other task's flags are in it. ``run_dir`` is an existing run being
   resumed, sampled or evaluated: restore what :meth:`Task.save` wrote there (a vocabulary ...)
   instead of building it again.
2. ``save(run_dir)`` once, when a new run starts.
3. ``build_model()``; the trainer moves it to ``config.device``.
4. per epoch: ``for batch in train_batches(epoch, start)``: ``loss(model, batch, state)``. The
   trainer moves each batch to the device with :meth:`Task.to_device`, detaches the returned
   state and passes it back with the next batch of the same epoch (``None`` at each epoch's
   start; tuples come back as lists). ``start`` is the number of batches of this epoch
   already done (resume): the batches of an epoch must be a deterministic function of
   ``(config.seed, epoch)``.
5. ``evaluate(model, split)`` for ``"valid"`` / ``"test"`` returns floats including ``"loss"``;
   the trainer calls it with the model in eval mode under ``torch.no_grad()``. ``metric`` names
   the number that picks the best checkpoint; ``metric_mode`` says whether lower is better.
6. Optional: ``sample(model, **kw) -> str`` (printed every ``--sample-every`` steps and by
   ``rnnlab sample``), ``predict(model, inputs) -> list[str]``.
"""

from __future__ import annotations

import argparse
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import torch
from torch import Tensor, nn

from rnnlab.errors import ConfigError

if TYPE_CHECKING:  # rnnlab.training imports this module
    from rnnlab.training.curriculum import Curriculum

Batch = Any
"""Whatever a task's ``train_batches`` yields: a tensor, a tuple/dict of tensors, ..."""


class Task:
    """What to learn: data, model, loss and evaluation. Subclass it and :func:`register` it."""

    name: ClassVar[str] = ""
    metric: ClassVar[str] = "loss"
    """The key of :meth:`evaluate`'s result that picks the ``best`` checkpoint."""
    metric_mode: ClassVar[str] = "min"
    """``"min"`` when lower ``metric`` is better, ``"max"`` when higher is better."""
    defaults: ClassVar[dict[str, Any]] = {}
    """Task-specific defaults of generic flags (``{"hidden": 128, "lr": 1e-3}``)."""
    unit: ClassVar[str] = "examples"
    """What ``loss``'s ``metrics["count"]`` counts; the progress bar shows ``<unit>/s``."""
    needs: ClassVar[dict[str, str]] = {}
    """Optional modules that training and evaluation import, each with the rnnlab extra that
    installs it (``{"sacrebleu": "translate"}``); checked by :meth:`check_needs`."""
    curriculum: Curriculum | None = None
    """Set in ``__init__`` by a task that supports ``--curriculum``
    (:func:`rnnlab.training.curriculum.build_curriculum`): ``train_batches`` reads its ``length``
    for each batch it draws; the trainer advances and checkpoints it."""

    def __init__(self, config: argparse.Namespace, run_dir: Path | None = None):
        self.config = config
        self.run_dir = Path(run_dir) if run_dir is not None else None

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
        """Add the task's own command-line flags. They are the task's alone: another task may
        define a flag of the same name with another meaning and default."""

    @classmethod
    def check_needs(cls) -> None:
        """A ``ConfigError`` naming the extra to install when a module of :attr:`needs` is
        missing (called before a run starts, not when the first evaluation needs it)."""
        for module, extra in cls.needs.items():
            if importlib.util.find_spec(module) is None:
                raise ConfigError(
                    f"task {cls.name} needs {module}: pip install 'rnnlab[{extra}]' "
                    f"(or pip install {module})"
                )

    def describe(self) -> str:
        """One line about the data, printed when training starts (optional)."""
        return ""

    def save(self, run_dir: Path) -> None:
        """Write what is needed to rebuild the model without the data (e.g. a vocabulary)."""

    def build_model(self) -> nn.Module:
        raise NotImplementedError

    def train_batches(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        """The training batches of ``epoch`` (0-based), skipping the first ``start``."""
        raise NotImplementedError

    def steps_per_epoch(self) -> int | None:
        """Batches per epoch when known (used by schedules when the budget is ``--epochs``)."""
        return None

    def loss(
        self, model: nn.Module, batch: Batch, state: Any
    ) -> tuple[Tensor, Any, dict[str, float]]:
        """``(mean loss, state to carry or None, metrics)`` for one batch. ``metrics["count"]``
        (optional) is the number of ``unit`` in the batch, for the throughput shown; the other
        metrics are averaged into ``metrics.jsonl``. A carried state comes back as a tensor or as
        nested lists of tensors (tuples and NamedTuples become lists, in the same order), so
        that it can be stored in a checkpoint."""
        raise NotImplementedError

    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        """Metrics on ``"valid"`` or ``"test"``, including ``"loss"``."""
        raise NotImplementedError

    def sample(self, model: nn.Module, **kwargs: Any) -> str:
        """Text showing what the model does (optional)."""
        raise NotImplementedError

    def predict(self, model: nn.Module, inputs: list[str]) -> list[str]:
        """Model outputs for raw inputs (optional)."""
        raise NotImplementedError

    @property
    def can_sample(self) -> bool:
        return type(self).sample is not Task.sample

    def to_device(self, batch: Batch, device: torch.device) -> Batch:
        """Move a batch (tensor, or tuple/list/dict of them) to ``device``."""
        if isinstance(batch, Tensor):
            return batch.to(device, non_blocking=True)
        if isinstance(batch, dict):
            return {k: self.to_device(v, device) for k, v in batch.items()}
        if isinstance(batch, tuple) and hasattr(batch, "_fields"):
            return type(batch)(*(self.to_device(v, device) for v in batch))
        if isinstance(batch, (tuple, list)):
            return type(batch)(self.to_device(v, device) for v in batch)
        return batch


_REGISTRY: dict[str, type[Task]] = {}
T = TypeVar("T", bound=type[Task])


def register(name: str):
    """Class decorator: make a :class:`Task` subclass available as ``--task name``."""

    def decorate(cls: T) -> T:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"task {name!r} is registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def available() -> list[str]:
    return sorted(_REGISTRY)


def get(name: str) -> type[Task]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown task {name!r}; available tasks: {', '.join(available())}"
        ) from None


def create(name: str, config: argparse.Namespace, run_dir: Path | None = None) -> Task:
    """Build the task ``name`` from the resolved flags (and an existing run to restore from)."""
    return get(name)(config, run_dir)
