"""``rnnlab bench``: train one benchmark task and print its result beside the published numbers.

Examples::

    rnnlab bench adding --cell gru --budget-minutes 15
    rnnlab bench jsb --cell lstm --hidden 200 --layers 2 --append-results
    rnnlab bench pmnist --mnist-protocol test-split --forget-bias 10
    rnnlab bench pmnist --config benchmarks/configs/pmnist_lstm.yaml --out runs/pm
    rnnlab bench pmnist --resume runs/pm --budget-minutes 240   # continue it to 4 hours
    rnnlab bench copy --help             # the generic flags and those of copy's task
    rnnlab bench --quick                 # every task for 2 steps of a tiny model (a smoke test);
                                         # a task whose dataset is missing is skipped
    rnnlab bench --list                  # the tasks, their metric and the published numbers

``rnnlab bench TASK`` takes the generic training flags and those of TASK's task only (as
``rnnlab train --task``): a flag of another task is a one-line error, and two tasks may give one
flag different meanings. ``--quick`` without a TASK gives each task the flags it takes.

Prints a Markdown table: task, cell, parameters, steps, minutes, the result (metric, split and
protocol labels), the published LSTM / GRU / RNN / TCN numbers and notes. Training progress
goes to stderr, and so does one ``skipped TASK: ...`` line for each task of ``--quick`` whose
dataset is neither on disk nor downloadable; ``--quick`` exits 0 when at least one task ran.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from rnnlab import tasks
from rnnlab.bench.entries import COLUMNS, ENTRIES
from rnnlab.bench.runner import (
    HEADER,
    RESULTS,
    RULE,
    BenchStopped,
    append_result,
    command_line,
    evaluate_run,
    format_row,
    git_commit,
    resume_benchmark,
    run_benchmark,
)
from rnnlab.cli.main import Parser
from rnnlab.cli.train import add_task_arguments, reject_unknown, resumed_config
from rnnlab.errors import ConfigError, DatasetNotFound, MissingExtra
from rnnlab.training.config import add_generic_arguments, given, task_options
from rnnlab.training.config_file import load_config_file

_NOT_FOR_BENCH = {"task", "resume"}
"""Generic flags bench does not take from train: the benchmark names the task, and bench's own
``--resume`` continues a benchmark run."""
_BENCH_FLAGS = (
    "bench_task",
    "quick",
    "list",
    "from_run",
    "config",
    "resume",
    "budget_minutes",
    "threads",
    "append_results",
    "note",
    "verbose",
)
"""Destinations of bench's own flags; the others are training settings."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="run a benchmark task and print the result beside the published numbers",
        add_help=False,  # the flags depend on TASK: run() parses them, --help included
    )
    parser.set_defaults(func=run, own_flags=True)


def settings_parser(task: str | None) -> Parser:
    """The training settings of a benchmark of task ``task``: the generic flags (not ``--task``
    or ``--resume``) and the task's own (none for ``None``); also what ``--config`` files are
    checked against."""
    parser = Parser(add_help=False, allow_abbrev=False)
    generic = argparse.ArgumentParser(add_help=False)
    add_generic_arguments(generic)
    for source in generic._action_groups:
        actions = [
            a for a in source._group_actions if a.option_strings and a.dest not in _NOT_FOR_BENCH
        ]
        if actions:
            group = parser.add_argument_group(source.title)
            for action in actions:
                group._add_action(action)
    if task is not None:
        add_task_arguments(parser, task)
    return parser


def bench_parser(name: str | None, add_help: bool = True) -> Parser:
    """The parser of ``rnnlab bench NAME``: bench's flags, the generic ones and those of NAME's
    task (without NAME: of no task)."""
    task = ENTRIES[name].task if name else None
    parser = Parser(
        prog=f"rnnlab bench {name}" if name else "rnnlab bench",
        hint=f"rnnlab bench {name} --help" if name else None,
        description="Train a benchmark task within a budget and print one table row: task, "
        "cell, parameters, steps, minutes, result, and the published "
        + "/".join(COLUMNS)
        + " numbers. "
        + (
            f"Benchmark {name} trains task {task}; other benchmarks take other flags: "
            "rnnlab bench TASK --help."
            if name
            else "The flags of a task: rnnlab bench TASK --help. Tasks: " + ", ".join(ENTRIES)
        ),
        parents=[settings_parser(task)],
        add_help=add_help,
        allow_abbrev=False,
    )
    parser.add_argument("bench_task", nargs="?", metavar="TASK", help="the benchmark to run")
    group = parser.add_argument_group("bench")
    group.add_argument("--quick", action="store_true", help="every task (or TASK) for 2 steps")
    group.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    group.add_argument(
        "--from-run",
        metavar="DIR",
        help="evaluate the run in DIR (from --out) instead of training a new one",
    )
    group.add_argument(
        "--config",
        metavar="FILE",
        help="settings from a YAML, TOML or JSON file (benchmarks/configs/); flags override it",
    )
    group.add_argument(
        "--resume",
        metavar="DIR",
        help="continue the stopped run in DIR (a previous --out) to its budget, or to a new "
        "--budget-minutes / --max-steps, then evaluate it",
    )
    group.add_argument(
        "--budget-minutes",
        type=float,
        help="training time budget, any length (default 10 minutes)",
    )
    group.add_argument("--threads", type=int, help="torch CPU threads (--quick: 1)")
    group.add_argument(
        "--append-results",
        nargs="?",
        const=RESULTS,
        metavar="FILE",
        help=f"append the row with date, commit, machine, command and budget ({RESULTS})",
    )
    group.add_argument("--note", help="a remark stored with --append-results (machine load)")
    group.add_argument(
        "--verbose", action="store_true", help="show the progress bar (share of the budget used)"
    )
    return parser


def _chosen_benchmark(rest: list[str]) -> str | None:
    """The TASK of a command line: its first word, else the first word naming a benchmark
    (``--verbose adding``), else none (``--quick``, ``--list``)."""
    if rest and not rest[0].startswith("-"):
        if rest[0] not in ENTRIES:
            raise ConfigError(f"unknown benchmark {rest[0]!r}; choose one of: {', '.join(ENTRIES)}")
        return rest[0]
    return next((word for word in rest if word in ENTRIES), None)


def _settings(args: argparse.Namespace) -> dict:
    """The training settings given in ``args`` (without bench's own flags)."""
    return {k: v for k, v in given(args).items() if k not in _BENCH_FLAGS}


def parse(rest: list[str]) -> tuple[argparse.Namespace, dict[str, dict]]:
    """``(arguments, flags)`` of ``rnnlab bench``'s arguments: ``flags`` maps each benchmark to
    run to the training settings given for it. With a TASK, they are parsed by its task's parser
    (another task's flag is a one-line error naming the task); ``--quick`` without one gives each
    task the flags it takes, and a word that no task takes is an error."""
    name = _chosen_benchmark(rest)
    parser = bench_parser(name)
    args, unknown = parser.parse_known_args(rest)
    stray = [args.bench_task] if args.bench_task != name else []  # a word before TASK
    if name is not None:
        reject_unknown(parser, unknown + stray, ENTRIES[name].task)
        return args, {name: _settings(args)}
    args.bench_task = None
    unknown += stray  # a value of a task flag lands here without the task's flags
    flags, unclaimed = {}, set(unknown)
    if args.quick:
        for each in ENTRIES:
            task_args, task_unknown = bench_parser(each).parse_known_args(rest)
            flags[each] = _settings(task_args)
            unclaimed &= set(
                task_unknown + ([task_args.bench_task] if task_args.bench_task else [])
            )
    if unclaimed:
        parser.error(f"unrecognized arguments: {' '.join(w for w in unknown if w in unclaimed)}")
    return args, flags


def _with_config_file(name: str, path: str, flags: dict) -> dict:
    """``flags`` over the settings of the file ``path``, checked as ``rnnlab train --config``
    checks them against the flags of benchmark ``name``'s task."""
    task = ENTRIES[name].task
    from_file = load_config_file(path, settings_parser(task), task_options(tasks.get(task)), task)
    named = from_file.pop("task", task)
    if named != task:
        raise ConfigError(f"{path} is for task {named!r}; benchmark {name} trains task {task}")
    if from_file.pop("resume", None) is not None:
        raise ConfigError(f"{path}: give --resume on the command line, not in a config file")
    return {**from_file, **flags}


def _list() -> int:
    print("| task | trains | metric | " + " | ".join(COLUMNS) + " | source |")
    print("|" + "---|" * (4 + len(COLUMNS)))
    for entry in ENTRIES.values():
        published = [entry.published.get(column, "-") for column in COLUMNS]
        print(
            f"| {entry.name} | {entry.task} | {entry.label} ({entry.split}) | "
            + " | ".join(published)
            + f" | {entry.source} |"
        )
    return 0


def run(args: argparse.Namespace) -> int:
    args, flags = parse(args.rest)
    if args.list:
        return _list()
    if not args.quick and not args.bench_task:
        raise ConfigError("name a benchmark (rnnlab bench --list) or use --quick")
    for flag in ("from_run", "config", "resume"):
        if getattr(args, flag) and not args.bench_task:
            option = "--" + flag.replace("_", "-")
            raise ConfigError(f"{option} needs the benchmark's name: rnnlab bench TASK {option} …")
    if args.resume and (args.config or args.quick or args.from_run):
        raise ConfigError(
            "--resume continues a run as it was configured: drop --config, --quick and --from-run"
        )
    if args.config:
        flags[args.bench_task] = _with_config_file(
            args.bench_task, args.config, flags[args.bench_task]
        )
    threads = args.threads or (1 if args.quick else None)
    previous_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    commit = git_commit()
    started = time.monotonic()
    print(HEADER)
    print(RULE, flush=True)
    skipped: list[DatasetNotFound | MissingExtra] = []
    try:
        for name in flags:
            try:
                result = _run_one(name, flags[name], args)
            except (DatasetNotFound, MissingExtra) as missing:
                if not args.quick or args.bench_task:
                    raise
                print(_skip_line(name, missing, args.data_dir), file=sys.stderr, flush=True)
                skipped.append(missing)
                continue
            except BenchStopped as stopped:
                run_dir = args.resume or flags[name].get("out")
                where = f"continue with: rnnlab bench {name} --resume {run_dir}"
                hint = where if run_dir else "give --out DIR to make a run resumable"
                print(f"{name}: {stopped}; {hint}", file=sys.stderr)
                return 128 + stopped.signum  # the shell's convention, as rnnlab train
            print(format_row(result), flush=True)
            if args.append_results:
                budget = (
                    f"{args.budget_minutes:g} min"
                    if args.budget_minutes
                    else _budget_of(result.config)
                )
                append_result(
                    result, args.append_results, command_line(), budget, commit, args.note or ""
                )
    finally:
        torch.set_num_threads(previous_threads)
    if skipped and len(skipped) == len(flags):
        raise skipped[-1]
    if args.quick:
        print(
            f"quick: {len(flags) - len(skipped)} tasks in {time.monotonic() - started:.1f} s"
            + (f"; {len(skipped)} skipped ({_skip_reasons(skipped)})" if skipped else "")
        )
    return 0


def _run_one(name: str, flags: dict, args: argparse.Namespace):
    """Evaluate (``--from-run``), resume (``--resume``) or run benchmark ``name``."""
    log = None if args.quick else sys.stderr
    if args.from_run:
        return evaluate_run(name, args.from_run, args.data_dir)
    if args.resume:
        if args.budget_minutes is not None:
            flags = {**flags, "max_minutes": args.budget_minutes}
        run_dir = Path(args.resume)
        config = resumed_config(run_dir, flags)
        return resume_benchmark(name, config, run_dir, log=log, progress=args.verbose)
    return run_benchmark(
        name,
        flags,
        budget_minutes=args.budget_minutes,
        quick=args.quick,
        log=log,
        progress=args.verbose,
    )


def _skip_line(name: str, missing: DatasetNotFound | MissingExtra, data_dir: str | None) -> str:
    """``skipped jsb: music/JSB_Chorales.mat not found in DIR or $RNNLAB_DATA_DIR; ...``, or
    the missing extra's message."""
    if isinstance(missing, MissingExtra):
        return f"skipped {name}: {missing}"
    where = f"{data_dir} or $RNNLAB_DATA_DIR" if data_dir else "--data-dir or $RNNLAB_DATA_DIR"
    return (
        f"skipped {name}: {missing.dataset}/{missing.filename} not found in {where}; "
        "rnnlab downloads it when online"
    )


def _skip_reasons(skipped: list[DatasetNotFound | MissingExtra]) -> str:
    """``no data``, ``no extra`` or both, for the ``--quick`` summary."""
    kinds = {"no extra" if isinstance(m, MissingExtra) else "no data" for m in skipped}
    return " or ".join(sorted(kinds))


def _budget_of(config: dict) -> str:
    parts = []
    if config.get("max_minutes"):
        parts.append(f"{config['max_minutes']:g} min")
    if config.get("max_steps"):
        parts.append(f"{config['max_steps']} steps")
    if config.get("epochs"):
        parts.append(f"{config['epochs']} epochs")
    return ", ".join(parts) or "none"
