"""``rnnlab train``: train a task's model (default: the character-level language model).

Examples::

    rnnlab train                                   # LSTM on the stdlib sources, about 5 minutes
    rnnlab train --data input.txt --splits 90/10/0 --hidden 512 --max-minutes 15
    rnnlab train --resume runs/20261122-031500 --max-steps 5000
    rnnlab train --config run.yaml --lr 1e-3         # settings from a file, flags override it
    rnnlab train --task sst-tree --help              # the generic flags and sst-tree's own
    torchrun --nproc_per_node 2 -m rnnlab train      # data-parallel over 2 processes
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from rnnlab import tasks
from rnnlab.cli.main import Parser
from rnnlab.errors import ConfigError
from rnnlab.training import checkpoint, distributed
from rnnlab.training.config import (
    RUN_ONLY,
    add_generic_arguments,
    given,
    make_config,
    not_an_option,
    owners,
    task_options,
)
from rnnlab.training.config_file import load_config_file, read_config_file
from rnnlab.training.trainer import Trainer, resolve_device


class _NotGiven:
    """Adds a task's flags to a parser group with the parsed default ``None`` ("not given"): the
    task's own defaults are filled in by :func:`~rnnlab.training.config.make_config`, after a
    resumed run's configuration."""

    def __init__(self, group: argparse._ArgumentGroup):
        self.group = group

    def add_argument(self, *flags: str, **kwargs):
        kwargs["default"] = None
        return self.group.add_argument(*flags, **kwargs)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model (default: character-level LSTM language model)",
        add_help=False,  # the flags depend on --task: run() parses them, --help included
    )
    parser.set_defaults(func=run, own_flags=True)


def task_parser(name: str) -> Parser:
    """The parser of ``rnnlab train --task NAME``: the generic flags and task NAME's own."""
    parser = Parser(
        prog="rnnlab train",
        hint=f"rnnlab train --task {name} --help",
        description=f"Train task {name}'s model. Every flag is optional; unset flags take the "
        f"task's defaults. Other tasks take other flags: rnnlab train --task TASK --help. "
        f"Tasks: {', '.join(tasks.available())}",
        allow_abbrev=False,  # an abbreviation could silently mean another flag of this task
    )
    add_generic_arguments(parser)
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="settings from a YAML, TOML or JSON file (a run's config.json reproduces the run); "
        "flags given here override it",
    )
    add_task_arguments(parser, name)
    return parser


def add_task_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    """Add task NAME's own flags to ``parser`` as the group ``task NAME`` (parsed default
    ``None``), its defaults in the group's description."""
    task_cls = tasks.get(name)
    shown = ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in task_cls.defaults.items())
    group = parser.add_argument_group(f"task {name}", f"defaults: {shown}" if shown else None)
    task_cls.add_arguments(_NotGiven(group))


def reject_unknown(parser: argparse.ArgumentParser, unknown: list[str], name: str) -> None:
    """``parser.error`` for the words it did not know: a flag of another task names task NAME
    (``--pooling is not an option of task charlm``)."""
    for word in unknown:
        setting = word.split("=", 1)[0].removeprefix("--").replace("-", "_")
        if word.startswith("--") and owners(setting):
            parser.error(not_an_option(setting, name))
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")


def _chosen_task(rest: list[str]) -> str:
    """The task of a command line: ``--task``, else the ``--config`` file's or the resumed
    run's, else charlm."""
    first = Parser(prog="rnnlab train", add_help=False, allow_abbrev=False)
    for flag in ("--task", "--config", "--resume"):
        first.add_argument(flag)
    known, _ = first.parse_known_args(rest)
    if known.task is not None:
        return known.task
    if known.resume is not None:
        return checkpoint.read_config(known.resume)["task"]
    if known.config is not None:
        return str(read_config_file(known.config).get("task") or "charlm")
    return "charlm"


def parse(rest: list[str]) -> tuple[argparse.Namespace, Parser, str]:
    """``(arguments, parser, task)`` of ``rnnlab train``'s arguments, parsed by the parser of the
    task they choose; a flag of another task is a one-line error naming the task."""
    name = _chosen_task(rest)
    tasks.get(name)  # an unknown task is named before its flags are looked at
    parser = task_parser(name)
    args, unknown = parser.parse_known_args(rest)
    reject_unknown(parser, unknown, name)
    return args, parser, name


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


def resumed_config(run_dir: Path, flags: dict) -> argparse.Namespace:
    """The configuration of the run in ``run_dir`` continued with ``flags``: only the settings
    of :data:`~rnnlab.training.config.RUN_ONLY` (the budget, the device) may change."""
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
    return make_config(saved["task"], base=saved, **flags)


def run(args: argparse.Namespace) -> int:
    args, parser, name = parse(args.rest)
    flags = given(args)
    if flags.pop("config", None) is not None:
        if args.resume:
            raise ConfigError("give --config or --resume, not both (a resumed run keeps its own)")
        from_file = load_config_file(args.config, parser, task_options(tasks.get(name)), name)
        flags = {**from_file, **flags}  # flags override the file
        name = flags.get("task", name)
    _resume_after_elastic_restart(args, flags)
    if args.resume:
        run_dir = Path(args.resume)
        config = resumed_config(run_dir, flags)
    else:
        flags.pop("task", None)
        config = make_config(name, **flags)
        run_dir = Path(config.out or Path("runs") / time.strftime("%Y%m%d-%H%M%S"))
    tasks.get(config.task).check_needs()  # a missing extra now, not at the first validation
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
