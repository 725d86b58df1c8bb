"""Data-parallel training on PyTorch's own distributed engine (``torch.distributed`` + DDP).

Launch one process per device with torchrun; nothing else changes::

    torchrun --nproc_per_node 2 -m rnnlab train --max-steps 2000        # one machine, 2 procs
    torchrun --nnodes 2 --node-rank 0 --master-addr HOST --nproc_per_node 4 -m rnnlab train ...

How the work is divided (``N`` processes, global ``--batch-size B``; ``B`` must divide by ``N``):

- every rank builds the same task and walks the same global batches; rank ``r`` keeps the
  ``r``-th slice of ``B / N`` examples of each (for the char LM: its own ``B / N`` contiguous
  TBPTT streams), so the ranks see disjoint data and together exactly one-process batches;
- the model is wrapped in :class:`~torch.nn.parallel.DistributedDataParallel`, which averages
  the gradients: with equal slices and mean losses that is the gradient of the global batch, so
  ``N`` processes follow the loss curve of one process with the same ``--batch-size``;
- each rank carries the hidden state of its own streams; a checkpoint stores the state of all
  streams gathered in global order, so a run resumes with the same or another number of ranks;
- training losses and metrics are averaged (counts summed) over ranks every step; the stop
  decision (time budget, Ctrl-C) is agreed on by all ranks;
- only rank 0 writes: checkpoints, ``metrics.jsonl``, ``config.json``, printed lines, samples.

Backend: ``gloo`` on CPU, ``nccl`` on CUDA (rank ``LOCAL_RANK`` uses ``cuda:LOCAL_RANK``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from rnnlab.errors import ConfigError


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: ``rank`` of ``world`` processes (``world == 1``: alone)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched() -> bool:
    """Whether this process was started by torchrun (or another launcher setting WORLD_SIZE)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device: torch.device) -> DistInfo:
    """Join the process group torchrun describes in the environment (idempotent).

    Returns ``DistInfo()`` for a single process. ``device`` picks the backend: ``nccl`` for
    CUDA, ``gloo`` otherwise.
    """
    if not dist.is_available() or not (launched() or dist.is_initialized()):
        return DistInfo()
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=timedelta(minutes=10))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank)


def local_device(device: torch.device, info: DistInfo) -> torch.device:
    """``cuda`` becomes ``cuda:LOCAL_RANK`` so that each process of a node has its own GPU."""
    if info.enabled and device.type == "cuda" and device.index is None:
        torch.cuda.set_device(info.local_rank)
        return torch.device("cuda", info.local_rank)
    return device


def check_batch_size(batch_size: int | None, info: DistInfo) -> None:
    if info.enabled and batch_size is not None and batch_size % info.world:
        raise ConfigError(
            f"--batch-size {batch_size} does not divide among {info.world} processes; "
            f"use a multiple of {info.world} (it is the global batch over all processes)"
        )


def broadcast_object(value: Any, info: DistInfo) -> Any:
    """Rank 0's ``value`` on every rank."""
    if not info.enabled:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def any_rank(flag: bool, info: DistInfo) -> bool:
    """``True`` on every rank when ``flag`` is true on at least one."""
    if not info.enabled:
        return flag
    value = torch.tensor([float(flag)])
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def reduce_step(loss: float, metrics: dict[str, float], info: DistInfo):
    """Average ``loss`` and ``metrics`` over ranks, except ``metrics["count"]`` (summed).

    Every rank must pass the same metric keys (the task computes the same ones everywhere).
    """
    if not info.enabled:
        return loss, metrics
    keys = sorted(metrics)
    values = torch.tensor([loss, *(float(metrics[k]) for k in keys)], dtype=torch.float64)
    dist.all_reduce(values)
    values /= info.world
    reduced = dict(zip(keys, values[1:].tolist(), strict=True))
    if "count" in reduced:
        reduced["count"] *= info.world
    return float(values[0]), reduced


def _slice(tensor: Tensor, dim: int, info: DistInfo) -> Tensor:
    size = tensor.shape[dim]
    if size % info.world:
        raise ConfigError(
            f"a batch of {size} does not divide among {info.world} processes; use a "
            f"--batch-size that is a multiple of {info.world}"
        )
    part = size // info.world
    return tensor.narrow(dim, info.rank * part, part)


def shard(value: Any, dim: int, info: DistInfo) -> Any:
    """This rank's slice along ``dim`` of every tensor in ``value`` (nested tuples, lists,
    NamedTuples, dicts); other leaves are kept."""
    if not info.enabled or value is None:
        return value
    if isinstance(value, Tensor):
        return _slice(value, dim, info) if value.dim() > dim else value
    if isinstance(value, dict):
        return {k: shard(v, dim, info) for k, v in value.items()}
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*(shard(v, dim, info) for v in value))
    if isinstance(value, (list, tuple)):
        return type(value)(shard(v, dim, info) for v in value)
    return value


def gather(value: Any, dim: int, info: DistInfo) -> Any:
    """The inverse of :func:`shard` for plain states (tensors in nested lists): every rank's
    slice concatenated along ``dim`` in rank order, on every rank."""
    if not info.enabled or value is None:
        return value
    if isinstance(value, Tensor):
        parts = [torch.empty_like(value) for _ in range(info.world)]
        dist.all_gather(parts, value.contiguous())
        return torch.cat(parts, dim)
    return [gather(v, dim, info) for v in value]


class TaskLoss(nn.Module):
    """``task.loss(model, batch, state)`` as a module's ``forward``, so that
    DistributedDataParallel (which hooks ``forward``) can wrap it."""

    def __init__(self, task, model: nn.Module):
        super().__init__()
        self.task = task
        self.model = model

    def forward(self, batch: Any, state: Any):
        return self.task.loss(self.model, batch, state)


def wrap(task, model: nn.Module, device: torch.device, info: DistInfo) -> nn.Module:
    """A module whose ``forward(batch, state)`` is ``task.loss(model, batch, state)``; wrapped in
    DDP (gradients averaged over ranks, rank 0's initial weights broadcast) when distributed."""
    module = TaskLoss(task, model)
    if not info.enabled:
        return module
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids)


_torn_down = False


def shutdown(info: DistInfo) -> None:
    global _torn_down
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
        _torn_down = True


def torn_down() -> bool:
    """Whether this process tore a process group down (its gloo threads may still be alive).

    ``destroy_process_group`` does not stop them while DDP's reducer holds the group: they live
    on into interpreter shutdown. A worker that drops its last reference to a finished collective
    there destroys the work's saved thread-local state, whose Python objects need the GIL; taking
    the GIL while the interpreter finalizes ends the thread (``pthread_exit``), whose unwinding
    through the work's ``noexcept`` destructor calls ``std::terminate``: "terminate called
    without an active exception", SIGABRT. The command line therefore collects those references
    before the interpreter finalizes (:func:`rnnlab.cli.main.main`) and then exits normally."""
    return _torn_down
