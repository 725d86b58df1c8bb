"""The trainer: how parameters move, for any task.

Read top to bottom, one training run is::

    trainer = Trainer(task, config, run_dir)        # builds model and optimizer, or resumes
    trainer.fit()                                   # the loop below, until the budget is spent

    for each epoch, for each batch of the task (from the saved position when resuming):
        loss, state = task.loss(model, batch, carried state)    # forward
        loss.backward(); clip                                   # gradients, global norm
        if loss and norm are finite: optimizer.step()           # else skip, count, roll back
        carried state = state.detach()                          # truncated BPTT
        --curriculum step: lengthen the task's sequences on schedule
        every --eval-every steps: validate (--curriculum plateau: lengthen on a plateau),
            save `last` (and `best`), print a sample

``Ctrl-C`` finishes the current step, saves ``last`` and returns. Everything that decides the
next step (weights, optimizer, schedule, RNG states, data position, carried state, counters,
curriculum) is in the checkpoint, so ``--resume`` continues exactly: on CPU, a run of 40 steps
and a run of 20 steps resumed for 20 more end with identical weights.
"""

from __future__ import annotations

import argparse
import math
import random
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

import torch
from torch import Tensor
from tqdm import tqdm

from rnnlab.analysis.dynamics import model_spectral_stats
from rnnlab.analysis.gradients import GradFlowLogger
from rnnlab.errors import CheckpointError, ConfigError, DataError
from rnnlab.tasks.base import Task
from rnnlab.training import checkpoint, distributed, metrics_log
from rnnlab.training.gradients import GradientMonitor
from rnnlab.training.progress import advance, budget_bar, budget_label
from rnnlab.training.recovery import NonFiniteGuard, TrainingDiverged
from rnnlab.training.regularization import after_update, weight_noise
from rnnlab.training.run_lock import LOCK, RunLock
from rnnlab.training.schedules import lr_factor
from rnnlab.training.tensorboard_log import DIRECTORY as TENSORBOARD_DIRECTORY
from rnnlab.training.tensorboard_log import TensorBoardLog


def resolve_device(name: str) -> torch.device:
    """``--device`` as a ``torch.device``; a missing GPU is a ``ConfigError``."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was given but no CUDA GPU is available; use --device cpu")
    return device


def build_optimizer(
    name: str, parameters, lr: float, momentum: float | None = None
) -> torch.optim.Optimizer:
    """``adam | adamw | sgd | rmsprop | adagrad`` with torch's defaults otherwise (sgd: momentum
    0.9 unless ``momentum`` is given; adamw: weight decay 0.01)."""
    parameters = list(parameters)
    if momentum is not None and name != "sgd":
        raise ConfigError(f"momentum is a setting of sgd, not {name}; drop it or use sgd")
    if name == "adam":
        return torch.optim.Adam(parameters, lr=lr)
    if name == "adamw":
        return torch.optim.AdamW(parameters, lr=lr, weight_decay=0.01)
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=lr, momentum=0.9 if momentum is None else momentum)
    if name == "rmsprop":
        return torch.optim.RMSprop(parameters, lr=lr)
    if name == "adagrad":
        return torch.optim.Adagrad(parameters, lr=lr)
    raise ConfigError(f"unknown optimizer {name!r}; choose adam, adamw, sgd, rmsprop or adagrad")


def add_input_noise(model: torch.nn.Module, sigma: float) -> None:
    """In training mode, N(0, sigma^2) added to the model's (real-valued) input on every call
    (Greff et al.'s input noise); evaluation sees the clean input."""

    def hook(module, args):
        if not module.training or not args:
            return None
        x = args[0]
        if not (isinstance(x, Tensor) and x.is_floating_point()):
            raise ConfigError("input_noise needs real-valued inputs; this task feeds tokens")
        return (x + sigma * torch.randn_like(x), *args[1:])

    model.register_forward_pre_hook(hook)


def detach_state(state: Any) -> Any:
    """Cut the graph of a carried state (tensor or nested tuples/lists of tensors)."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.detach()
    if isinstance(state, tuple) and hasattr(state, "_fields"):
        return type(state)(*(detach_state(s) for s in state))
    return type(state)(detach_state(s) for s in state)


def plain_state(state: Any) -> Any:
    """A carried state as plain lists of CPU tensors (storable with ``weights_only=True``)."""
    if state is None or isinstance(state, Tensor):
        return None if state is None else state.detach().cpu()
    return [plain_state(s) for s in state]


def state_to(state: Any, device: torch.device) -> Any:
    if state is None or isinstance(state, Tensor):
        return None if state is None else state.to(device)
    return [state_to(s, device) for s in state]


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""Signals that stop a run at the next step boundary with a checkpoint (exit 128 + signal)."""


class Trainer:
    """Train ``task``'s model with ``config`` into ``run_dir``.

    Args:
        task: what to learn (data, model, loss, evaluation).
        config: the resolved settings (:func:`rnnlab.training.config.make_config`).
        run_dir: the run directory; created for a new run, read when ``resume`` is true.
        resume: continue the run in ``run_dir`` from its ``last`` checkpoint.
        out: where progress lines and samples go (stdout).
        progress: show the tqdm progress bar (on stderr).
        on_validate: called with the step and the metrics after every validation; a true
            return stops the run after that step, saved as by Ctrl-C (sweeps prune with it).

    ``config.momentum`` (sgd) and ``config.input_noise`` (sigma) are read when present.
    """

    def __init__(
        self,
        task: Task,
        config: argparse.Namespace,
        run_dir: str | Path,
        resume: bool = False,
        out: TextIO | None = None,
        progress: bool = True,
        on_validate: Callable[[int, dict[str, float]], bool] | None = None,
    ):
        if getattr(task, "closed_form", False):
            raise ConfigError(
                f"task {task.name!r} is fitted in closed form, not trained: "
                f"run `rnnlab bench {task.name}`"
            )
        self.task, self.config, self.run_dir = task, config, Path(run_dir)
        self.out = out or sys.stdout
        self.on_validate = on_validate
        self.curriculum = task.curriculum  # the task reads its length, the trainer advances it
        if getattr(config, "curriculum", None) and self.curriculum is None:
            raise ConfigError(
                f"task {task.name!r} has no curriculum; --curriculum works with the synthetic "
                "tasks and the language models"
            )
        device = resolve_device(config.device)
        self.dist = distributed.setup(device)  # one process unless launched by torchrun
        self.device = distributed.local_device(device, self.dist)
        distributed.check_batch_size(getattr(config, "batch_size", None), self.dist)
        # a task that can read only this rank's part of each batch says so: no slicing here
        per_rank = getattr(task, "batches_per_rank", None)
        self.task_shards = bool(
            self.dist.enabled and per_rank and per_rank(self.dist.rank, self.dist.world)
        )
        self.progress = progress and self.dist.is_main
        torch.manual_seed(config.seed)
        random.seed(config.seed)
        self.model = task.build_model().to(self.device)
        if getattr(config, "input_noise", 0.0):
            add_input_noise(self.model, config.input_noise)
        self.loss_module = distributed.wrap(task, self.model, self.device, self.dist)
        every = getattr(config, "log_grad_flow", None)
        # gradient-flow probes write files: rank 0 only (its own backward, no collectives)
        probe = every and self.dist.is_main
        self.grad_flow = GradFlowLogger(every, self.run_dir) if probe else None
        self.optimizer = build_optimizer(
            config.optimizer, self.model.parameters(), config.lr, getattr(config, "momentum", None)
        )
        self.guard = NonFiniteGuard(patience=config.recovery_patience)
        self.gradients = GradientMonitor(
            self.model, config.clip_norm, config.clip_value, getattr(config, "clip_target", 0.05)
        )
        self.step = 0  # optimizer steps taken (skipped steps count too: they consume data)
        self.epoch = 0
        self.batch_in_epoch = 0
        self.carried: Any = None
        self.elapsed = 0.0  # seconds of training before this session
        self.started: float | None = None  # monotonic time training started, minus elapsed
        self.lr_scale = 1.0  # lowered by roll-backs
        self.clipped = 0
        self.best: float | None = None
        self.stop_requested = False
        self.last_eval: dict[str, float] = {}
        self.agreed_elapsed: float | None = None  # the ranks' mean clock (distributed runs)
        self.stop_signal: int | None = None  # the signal that asked the run to stop
        # one writer per run: rank 0 holds the run directory's lock until fit() ends
        self.lock = RunLock(self.run_dir) if self.dist.is_main and resume else None
        self.tensorboard = (  # checked on every rank, written by rank 0 (in _log)
            TensorBoardLog(self.run_dir / TENSORBOARD_DIRECTORY)
            if getattr(config, "tensorboard", False)
            else None
        )
        if resume:
            try:
                self._restore(checkpoint.checkpoint_dir(self.run_dir, "last"))
                if self.dist.is_main:
                    path = self.run_dir / checkpoint.CONFIG
                    checkpoint.write_json_atomic(path, vars(self.config))
                    # the steps logged after the checkpoint are trained again: log them once
                    metrics_log.truncate(self.run_dir / checkpoint.METRICS, self.step)
            except BaseException:
                self._release_lock()
                raise
        else:
            self._start_run()

    # ----------------------------------------------------------------------------- the loop
    def fit(self) -> dict[str, float]:
        """Train until the budget is spent or Ctrl-C; return the last validation metrics."""
        self.started = time.monotonic() - self.elapsed
        batches = self.task.train_batches(self.epoch, self.batch_in_epoch)  # data errors first
        params = sum(p.numel() for p in self.model.parameters())
        c, about = self.config, self.task.describe()
        kind = getattr(c, "model", None)  # a task's --model (tcn, tree-lstm) replaces the cell
        name = c.cell if kind in (None, "recurrent") else kind
        self._print(
            f"task {self.task.name}{' | ' + about if about else ''}\n"
            f"model: {name} {c.layers}x{c.hidden}, {params:,} parameters | {c.optimizer} "
            f"lr {c.lr:g} ({c.schedule}) | batch {c.batch_size} x {c.seq_len} | {self.device}"
            + (f" | resumed at step {self.step}" if self.step else "")
            + (
                f"\n{self.curriculum.describe()} | now {self.curriculum.length}"
                if self.curriculum is not None
                else ""
            )
        )
        budget = budget_label(c.max_steps, c.max_minutes, c.epochs)
        bar = budget_bar(budget, self.step, self._progress(), self.progress)
        previous_handlers = self._catch_stop_signals()
        self._window = _Window()
        try:
            while not self._budget_spent():
                if self._run_epoch(bar, batches):
                    self.epoch, self.batch_in_epoch, self.carried = self.epoch + 1, 0, None
                batches = self.task.train_batches(self.epoch, self.batch_in_epoch)
        except BaseException:
            self._release_lock()
            raise
        finally:
            for signum, previous in previous_handlers.items():
                signal.signal(signum, previous)
            bar.close()
        try:
            return self._finish()
        finally:
            self._release_lock()

    def _release_lock(self) -> None:
        if self.lock is not None:
            self.lock.release()

    def _finish(self) -> dict[str, float]:
        """Save or validate at the end of :meth:`fit`, print the summary."""
        self.elapsed = self._elapsed_now()
        last_eval = self.last_eval
        if self.stop_requested:
            self._save(("last",))
            name = signal.Signals(self.stop_signal).name if self.stop_signal else "a stop request"
            self._print(
                f"stopped by {name} at step {self.step}; saved. Continue with: "
                f"rnnlab train --resume {self.run_dir}"
            )
            self._close_logs()
            return last_eval
        if not last_eval or last_eval.get("step") != self.step:
            last_eval = self._validate(None)
        self._close_logs()
        if self.best is None:  # no validation was ever finite: the model diverged
            value = last_eval.get(self.task.metric, math.nan)
            raise TrainingDiverged(
                f"every validation of {self.run_dir} was non-finite (valid {self.task.metric} "
                f"{value}); the model diverged: start again with a smaller --lr or --clip-norm 1"
            )
        if self.step % self.config.sample_every != 0:
            self._print_sample(None)
        self._print(self._summary(last_eval))
        return last_eval

    def _run_epoch(self, bar: tqdm, batches: Iterator[Any]) -> bool:
        """Train on ``batches``, the rest of the current epoch; ``True`` when they are exhausted,
        ``False`` when the budget ran out or a roll-back moved the position."""
        started_at = self.batch_in_epoch
        for batch in batches:
            length = self.curriculum.length if self.curriculum is not None else None  # batch's
            loss, metrics, rolled_back = self._train_step(batch)
            if rolled_back:
                return False
            if self.curriculum is not None and self.curriculum.after_step(self.step):
                self._print(f"step {self.step} | curriculum: length {self.curriculum.length}", bar)
            window = self._window
            window.add(loss, metrics)
            rate = window.units / max(time.monotonic() - window.start, 1e-9)
            shown = f"loss {window.mean('loss'):.3f} | {rate:,.0f} {self.task.unit}/s"
            advance(bar, self.step, self._progress(), shown)
            spent = self._budget_spent()
            if self.step % self.config.log_every == 0 or spent:
                means = {k: window.mean(k) for k in window.sums}
                if length is not None:
                    means["train_length"] = length
                self._log(
                    {"split": "train", **means, f"{self.task.unit}_per_s": rate, **self._counters()}
                )
                self._window = _Window()
                warning = self.gradients.warning()
                if warning:
                    self._print(f"step {self.step}: warning: {warning}", bar)
            if self.step % self.config.eval_every == 0:
                self.last_eval = self._validate(bar)
                spent = spent or self.stop_requested  # on_validate asked to stop here
            if self.step % self.config.sample_every == 0:
                self._print_sample(bar)
            if spent:
                return False
        if started_at == 0 and self.batch_in_epoch == 0:
            raise DataError(f"task {self.task.name!r} produced no training batches")
        return True

    def _train_step(self, batch: Any) -> tuple[float, dict[str, float], bool]:
        """One step; returns (loss, the task's metrics, whether it rolled back)."""
        config = self.config
        self.model.train()
        for group in self.optimizer.param_groups:
            group["lr"] = config.lr * self.lr_scale * self._lr_factor()
        batch = self._rank_batch(batch)
        state = state_to(self.carried, self.device) if self.carried is not None else None
        if self.grad_flow is not None:
            task, model = self.task, self.model
            self.grad_flow(self.step, model, lambda: task.loss(model, batch, state)[0])
        with weight_noise(self.model, config):  # removed again before the update
            loss, new_state, metrics = self.loss_module(batch, state)
            self.optimizer.zero_grad(set_to_none=True)
            loss_value, metrics = self._reduce(float(loss.detach()), metrics)
            norm, clipped = math.nan, False
            if math.isfinite(loss_value):
                loss.backward()
                norm, clipped, gradient_metrics = self.gradients.clip()
                metrics = {**metrics, **gradient_metrics}
        self.step += 1
        self.batch_in_epoch += 1
        if self.guard.check(loss_value, norm):
            self.optimizer.step()
            after_update(self.model, config)
            self.clipped += int(clipped)
            self.carried = detach_state(new_state)
        else:
            self.optimizer.zero_grad(set_to_none=True)
            self._print(f"step {self.step}: non-finite loss or gradient; step skipped")
            if self.guard.must_roll_back:
                self._roll_back()
                return loss_value, {}, True
        return loss_value, metrics, False

    # ----------------------------------------------------------------------------- ranks
    def _rank_batch(self, batch: Any) -> Any:
        """This rank's slice of the global batch (all of it in a single process); a task whose
        ``batches_per_rank(rank, world)`` returned true yields that slice itself."""
        if not self.task_shards:
            batch = distributed.shard(batch, getattr(self.task, "batch_dim", 0), self.dist)
        return self.task.to_device(batch, self.device)

    def _reduce(self, loss: float, metrics: dict[str, float]) -> tuple[float, dict[str, float]]:
        """The step's loss and metrics over all ranks, and the ranks' agreed clock (so that
        time budgets and time-based schedules are the same on every rank)."""
        if not self.dist.enabled:
            return loss, metrics
        loss, metrics = distributed.reduce_step(
            loss, {**metrics, "elapsed_clock": self._elapsed_now()}, self.dist
        )
        self.agreed_elapsed = metrics.pop("elapsed_clock")
        return loss, metrics

    def _global_carried(self) -> Any:
        """The carried state of all ranks' streams in global order (what checkpoints hold)."""
        dim = getattr(self.task, "state_batch_dim", 0)
        return distributed.gather(plain_state(self.carried), dim, self.dist)

    # ----------------------------------------------------------------------------- budget
    def _minutes(self) -> float:
        if self.dist.enabled and self.agreed_elapsed is not None:
            return self.agreed_elapsed / 60.0
        return self._elapsed_now() / 60.0

    def _progress(self) -> float:
        """Fraction of the budget used (the largest over the budgets given)."""
        c = self.config
        parts = [0.0]
        if c.max_steps:
            parts.append(self.step / c.max_steps)
        if c.max_minutes:
            parts.append(self._minutes() / c.max_minutes)
        if c.epochs:
            per_epoch = self.task.steps_per_epoch()
            if per_epoch:
                parts.append((self.epoch + self.batch_in_epoch / per_epoch) / c.epochs)
        return max(parts)

    def _lr_factor(self) -> float:
        return lr_factor(self.config.schedule, self._progress(), self.step, self.config.warmup)

    def _budget_spent(self) -> bool:
        c = self.config
        self.stop_requested = distributed.any_rank(self.stop_requested, self.dist)
        return (
            self.stop_requested
            or (c.max_steps is not None and self.step >= c.max_steps)
            or (c.max_minutes is not None and self._minutes() >= c.max_minutes)
            or (c.epochs is not None and self.epoch >= c.epochs)
        )

    def _catch_stop_signals(self) -> dict[int, Any]:
        """SIGINT (Ctrl-C), SIGTERM (schedulers, ``docker stop``) and SIGHUP: stop after the
        current step and save; the signal is kept in ``stop_signal`` for the exit code. A second
        one stops at once. Returns the handlers it replaced."""

        def handler(signum, frame):
            if self.stop_requested:
                raise KeyboardInterrupt
            self.stop_requested, self.stop_signal = True, signum

        previous = {}
        for signum in STOP_SIGNALS:
            try:
                previous[signum] = signal.signal(signum, handler)
            except ValueError:  # not the main thread: the signals are not ours to catch
                pass
        return previous

    # ----------------------------------------------------------------------------- evaluation
    def _validate(self, bar: tqdm | None) -> dict[str, float]:
        self.model.eval()
        with torch.no_grad():
            metrics = self.task.evaluate(self.model, "valid")
        value = metrics[self.task.metric]
        better = math.isfinite(value) and (  # a non-finite validation is never the best
            self.best is None
            or (value < self.best if self.task.metric_mode == "min" else value > self.best)
        )
        if better:
            self.best = value
        # only the validations every --eval-every steps count (a run's final one would make a
        # shorter run resumed differ from a longer one)
        lengthened = (
            self.curriculum is not None
            and self.step % self.config.eval_every == 0
            and self.curriculum.after_validation(self.step, value, self.task.metric_mode)
        )
        self._log({"split": "valid", **metrics})
        spectra = model_spectral_stats(self.model)
        if spectra:
            self._log({"split": "spectrum", **spectra})
        self._save(("last", "best") if better else ("last",), metrics)
        shown = " | ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        self._print(f"step {self.step} | valid {shown}{' | best' if better else ''}", bar)
        if lengthened:
            self._print(f"step {self.step} | curriculum: length {self.curriculum.length}", bar)
        if self.on_validate is not None and self.on_validate(self.step, metrics):
            self.stop_requested = True
        return {"step": self.step, **metrics}

    def _print_sample(self, bar: tqdm | None) -> None:
        if not self.task.can_sample or not self.dist.is_main:
            return
        self.model.eval()
        with torch.no_grad():
            text = self.task.sample(self.model, seed=self.config.seed + self.step)
        self._print(f"----- sample at step {self.step} -----\n{text}\n-----", bar)

    def _summary(self, metrics: dict[str, float]) -> str:
        shown = " | ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k != "step")
        return (
            f"done: {self.step} steps in {self.elapsed / 60:.1f} min | valid {shown} | "
            f"clipped {self._counters()['clipped_fraction']:.1%} | skipped {self.guard.skipped} "
            f"| run {self.run_dir}"
        )

    # ----------------------------------------------------------------------------- run dir
    def _start_run(self) -> None:
        if self.dist.is_main:  # only rank 0 writes
            created = not self.run_dir.exists()
            self.lock = RunLock(self.run_dir)  # creates the folder; one writer at a time
            if any(p.name != LOCK for p in self.run_dir.iterdir()):
                self.lock.release()
                raise ConfigError(
                    f"{self.run_dir} exists and is not empty; use --resume {self.run_dir} to "
                    "continue it, or another --out"
                )
            try:
                checkpoint.write_json_atomic(self.run_dir / checkpoint.CONFIG, vars(self.config))
                self.task.save(self.run_dir)
                self._save(("last",))
            except BaseException:  # a failed start leaves no half-made run behind
                self.lock.release()
                if created:
                    shutil.rmtree(self.run_dir, ignore_errors=True)
                raise
        else:
            self._save(("last",))

    def _training_state(self) -> dict[str, Any]:
        rng = {"torch": torch.get_rng_state(), "python": list(_to_lists(random.getstate()))}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "optimizer": self.optimizer.state_dict(),
            "position": {"step": self.step, "epoch": self.epoch, "batch": self.batch_in_epoch},
            "carried": self._global_carried(),
            "schedule": {"lr_scale": self.lr_scale, "elapsed": self._elapsed_now()},
            "rng": rng,
            "counters": {"clipped": self.clipped, "best": self.best, **self.guard.state_dict()},
            "gradients": self.gradients.state_dict(),
            "curriculum": None if self.curriculum is None else self.curriculum.state_dict(),
        }

    def _elapsed_now(self) -> float:
        return self.elapsed if self.started is None else time.monotonic() - self.started

    def _save(self, tags: tuple[str, ...], metrics: dict[str, float] | None = None) -> None:
        """Save checkpoint ``tags``; also ``finite`` (where a roll-back returns to) when the
        step's loss and its validation metrics, if any, are finite."""
        state = self._training_state()  # a collective when distributed: every rank takes part
        metrics = metrics or {}
        finite = self.guard.consecutive == 0 and all(_is_finite(v) for v in metrics.values())
        if self.dist.is_main:
            checkpoint.save_checkpoint(
                self.run_dir,
                self.step,
                self.model,
                state,
                {**metrics, "finite": finite},
                tags + (("finite",) if finite else ()),
            )
        distributed.barrier(self.dist)  # no rank reads a checkpoint before it is complete

    def _restore(self, path: Path, keep_counters: bool = False) -> None:
        checkpoint.load_weights(self.model, path)
        state = checkpoint.load_state(path)
        try:
            self._load_training_state(state, keep_counters)
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as error:
            why = f"{type(error).__name__}: {checkpoint.first_sentence(error)}"
            raise CheckpointError(f"{path / 'state.pt'} does not fit this run ({why})") from None

    def _load_training_state(self, state: dict[str, Any], keep_counters: bool) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        position = state["position"]
        self.step, self.epoch = position["step"], position["epoch"]
        self.batch_in_epoch = position["batch"]
        dim = getattr(self.task, "state_batch_dim", 0)
        self.carried = distributed.shard(state["carried"], dim, self.dist)  # this rank's streams
        if self.curriculum is not None:  # its stage and the stream position roll back too
            self.curriculum.load_state_dict(state["curriculum"])
        if not keep_counters:
            self.lr_scale = state["schedule"]["lr_scale"]
            self.elapsed = state["schedule"]["elapsed"]
            counters = state["counters"]
            self.clipped, self.best = counters["clipped"], counters["best"]
            self.guard.load_state_dict(counters)
            if "gradients" in state:
                self.gradients.load_state_dict(state["gradients"])
        torch.set_rng_state(state["rng"]["torch"])
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        random.setstate(_to_tuples(state["rng"]["python"]))

    def _roll_back(self) -> None:
        """Return to the newest checkpoint saved outside a non-finite stretch (``finite``) with
        a lower learning rate."""
        self.lr_scale *= self.guard.rolled_back()
        self._restore(checkpoint.checkpoint_dir(self.run_dir, "finite"), keep_counters=True)
        self._print(
            f"rolled back to step {self.step} with learning rate x{self.lr_scale:g} "
            f"(roll-back {self.guard.rollbacks})"
        )

    # ----------------------------------------------------------------------------- logging
    def _counters(self) -> dict[str, float]:
        return {
            "clipped_fraction": self.clipped / max(self.step - self.guard.skipped, 1),
            "skipped": self.guard.skipped,
            "lr": self.optimizer.param_groups[0]["lr"],
        }

    def _log(self, record: dict[str, Any]) -> None:
        if not self.dist.is_main:
            return
        record = {"step": self.step, "epoch": self.epoch, "time": self._elapsed_now(), **record}
        metrics_log.append(self.run_dir / checkpoint.METRICS, record)
        if self.tensorboard is not None:
            self.tensorboard.write(record)

    def _close_logs(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()

    def _print(self, text: str, bar: tqdm | None = None) -> None:
        if not self.dist.is_main:
            return
        if bar is not None and self.progress:
            bar.write(text, file=self.out)
        else:
            print(text, file=self.out, flush=True)


class _Window:
    """Running sums of the training loss and the task's metrics since the last log line."""

    def __init__(self):
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.units = 0.0
        self.start = time.monotonic()

    def add(self, loss: float, metrics: dict[str, float]) -> None:
        self.units += float(metrics.get("count", 0.0))
        values = {"loss": loss, **{k: v for k, v in metrics.items() if k != "count"}}
        for key, value in values.items():
            if math.isfinite(value):
                self.sums[key] = self.sums.get(key, 0.0) + float(value)
                self.counts[key] = self.counts.get(key, 0) + 1

    def mean(self, key: str) -> float:
        return self.sums.get(key, math.nan) / max(self.counts.get(key, 0), 1)


def _is_finite(value: Any) -> bool:
    return not isinstance(value, float) or math.isfinite(value)


def _to_lists(value: Any) -> Any:
    return [_to_lists(v) for v in value] if isinstance(value, tuple) else value


def _to_tuples(value: Any) -> Any:
    return tuple(_to_tuples(v) for v in value) if isinstance(value, list) else value
