"""``rnnlab train``: train a task's model (default: the character-level language model).

Examples::

    rnnlab train                                   # LSTM on the stdlib sources, about 5 minutes
    rnnlab train --data input.txt --splits 90/10/0 --hidden 512 --max-minutes 15
    rnnlab train --resume runs/20261122-031500 --max-steps 5000
    rnnlab train --config run.yaml --lr 1e-3         # settings from a file, flags override it
    torchrun --nproc_per_node 2 -m rnnlab train      # data-parallel over 2 processes
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from rnnlab import tasks
from rnnlab.errors import ConfigError
from rnnlab.training import checkpoint, distributed
from rnnlab.training.config import (
    GENERIC_DEFAULTS,
    RUN_ONLY,
    add_generic_arguments,
    given,
    make_config,
    task_argument_defaults,
)
from rnnlab.training.config_file import load_config_file
from rnnlab.training.trainer import Trainer, resolve_device


class _FirstDefinitionWins:
    """Adds a task's flags to a shared parser group, skipping flags another task already added.

    Parsed defaults are ``None`` ("not given"); the task's own defaults are filled in by
    :func:`~rnnlab.training.config.make_config`, after a resumed run's configuration.
    """

    def __init__(self, parser: argparse.ArgumentParser, group: argparse._ArgumentGroup):
        self.parser, self.group = parser, group

    def add_argument(self, *flags: str, **kwargs):
        known = self.parser._option_string_actions
        if any(flag in known for flag in flags):
            return None
        kwargs["default"] = None
        return self.group.add_argument(*flags, **kwargs)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model (default: character-level LSTM language model)",
        description="Train a task's model. Every flag is optional; unset flags take the task's "
        "defaults. Tasks: " + ", ".join(tasks.available()),
    )
    add_generic_arguments(parser)
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="settings from a YAML, TOML or JSON file (a run's config.json reproduces the run); "
        "flags given here override it",
    )
    for name in tasks.available():
        task_cls = tasks.get(name)
        shown = ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in task_cls.defaults.items())
        group = parser.add_argument_group(f"task {name}", f"defaults: {shown}" if shown else None)
        task_cls.add_arguments(_FirstDefinitionWins(parser, group))
    parser.set_defaults(func=run, parser=parser)


def _file_settings(args: argparse.Namespace) -> dict:
    known = {**GENERIC_DEFAULTS}
    for name in tasks.available():
        known.update(task_argument_defaults(tasks.get(name)))
    return load_config_file(args.config, args.parser, known)


def _resume_after_elastic_restart(args: argparse.Namespace, flags: dict) -> None:
    """Under ``torchrun --max-restarts N`` the restarted workers run the same command line: turn
    it into ``--resume OUT`` once ``OUT`` holds a run, so the job continues from its ``last``
    checkpoint. The run must then be named (``--out``): a new timestamped directory would
    start over."""
    if args.resume or int(os.environ.get("TORCHELASTIC_MAX_RESTARTS", "0")) == 0:
        return
    if flags.get("out") is None:
        raise ConfigError(
            "torchrun --max-restarts needs --out DIR, so that a restarted job finds its run"
        )
    restarted = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0
    if restarted and checkpoint.is_run(Path(flags["out"])):
        args.resume = flags["out"]


def run(args: argparse.Namespace) -> int:
    flags = given(args)
    flags.pop("parser", None)
    if flags.pop("config", None) is not None:
        if args.resume:
            raise ConfigError("give --config or --resume, not both (a resumed run keeps its own)")
        flags = {**_file_settings(args), **flags}  # flags override the file
    _resume_after_elastic_restart(args, flags)
    if args.resume:
        run_dir = Path(args.resume)
        saved = checkpoint.read_config(run_dir)
        if flags.get("out") is not None and Path(flags["out"]) != run_dir:
            raise ConfigError(
                f"--resume continues {run_dir} in place; drop --out {flags['out']} (to branch "
                "a run, copy its directory and resume the copy)"
            )
        changed = sorted(
            k for k, v in flags.items() if k not in RUN_ONLY and k in saved and saved[k] != v
        )
        if changed:
            raise ConfigError(
                f"--resume continues a run as it was configured; cannot change {changed[0]!r} "
                f"({saved[changed[0]]!r} -> {flags[changed[0]]!r}); start a new run instead"
            )
        config = make_config(saved["task"], base=saved, **flags)
    else:
        config = make_config(flags.pop("task", "charlm"), **flags)
        run_dir = Path(config.out or Path("runs") / time.strftime("%Y%m%d-%H%M%S"))
    # under torchrun every rank joins the process group here and uses rank 0's run directory
    info = distributed.setup(resolve_device(config.device))
    run_dir = distributed.broadcast_object(run_dir, info)
    if not args.resume:
        config.out = str(run_dir)
    task = tasks.create(config.task, config, run_dir if args.resume else None)
    try:
        trainer = Trainer(task, config, run_dir, resume=bool(args.resume))  # the run exists now
        if info.is_main:
            world = f" | {info.world} processes" if info.enabled else ""
            print(f"run directory: {run_dir}{world}")
        trainer.fit()
        # leave together: no rank tears its connections down while another is still working
        distributed.barrier(info)
    finally:
        distributed.shutdown(info)
    # stopped by SIGINT/SIGTERM/SIGHUP after saving: the shell's convention, 128 + signal
    return 128 + trainer.stop_signal if trainer.stop_signal else 0
