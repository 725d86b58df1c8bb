"""``rnnlab bench``: train one benchmark task and print its result beside the published numbers.

Examples::

    rnnlab bench adding --cell gru --budget-minutes 15
    rnnlab bench jsb --cell lstm --hidden 200 --layers 2 --append-results
    rnnlab bench pmnist --mnist-protocol test-split --forget-bias 10
    rnnlab bench --quick                 # every task for 2 steps of a tiny model (a smoke test);
                                         # a task whose dataset is missing is skipped
    rnnlab bench --list                  # the tasks, their metric and the published numbers

Prints a Markdown table: task, cell, parameters, steps, minutes, the result (metric, split and
protocol labels), the published LSTM / GRU / RNN / TCN numbers and notes. Training progress
goes to stderr, and so does one ``skipped TASK: ...`` line for each task of ``--quick`` whose
dataset is neither on disk nor downloadable; ``--quick`` exits 0 when at least one task ran.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from rnnlab import tasks
from rnnlab.bench.entries import COLUMNS, ENTRIES
from rnnlab.bench.runner import (
    HEADER,
    RESULTS,
    RULE,
    append_result,
    command_line,
    evaluate_run,
    format_row,
    git_commit,
    run_benchmark,
)
from rnnlab.errors import ConfigError, DatasetNotFound
from rnnlab.training.config import add_generic_arguments, given

_NOT_FOR_BENCH = {"task", "resume", "help"}


def _copy_flags(group: argparse._ArgumentGroup, source: argparse.ArgumentParser, known) -> None:
    """Add ``source``'s optional flags to ``group`` (default ``None``), skipping known ones."""
    for action in source._actions:
        if action.dest in _NOT_FOR_BENCH or not action.option_strings:
            continue
        if any(flag in known for flag in action.option_strings):
            continue
        action.default = None
        group._add_action(action)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="run a benchmark task and print the result beside the published numbers",
        description="Train a benchmark task within a budget and print one table row: task, "
        "cell, parameters, steps, minutes, result, and the published "
        + "/".join(COLUMNS)
        + " numbers. Tasks: "
        + ", ".join(ENTRIES),
    )
    parser.add_argument("bench_task", nargs="?", metavar="TASK", help="the benchmark to run")
    parser.add_argument("--quick", action="store_true", help="every task (or TASK) for 2 steps")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument(
        "--from-run",
        metavar="DIR",
        help="evaluate the run in DIR (from --out) instead of training a new one",
    )
    parser.add_argument(
        "--budget-minutes", type=float, help="training time budget (default 10 minutes)"
    )
    parser.add_argument("--threads", type=int, help="torch CPU threads (--quick: 1)")
    parser.add_argument(
        "--append-results",
        nargs="?",
        const=RESULTS,
        metavar="FILE",
        help=f"append the row with date, commit, machine, command and budget ({RESULTS})",
    )
    parser.add_argument("--note", help="a remark stored with --append-results (machine load)")
    parser.add_argument("--verbose", action="store_true", help="show training progress bars")
    generic = argparse.ArgumentParser(add_help=False)
    add_generic_arguments(generic)
    _copy_flags(parser.add_argument_group("training"), generic, parser._option_string_actions)
    group = parser.add_argument_group("task flags")
    for name in dict.fromkeys(entry.task for entry in ENTRIES.values()):
        scratch = argparse.ArgumentParser(add_help=False)
        tasks.get(name).add_arguments(scratch)
        _copy_flags(group, scratch, parser._option_string_actions)
    parser.set_defaults(func=run)


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
    if args.list:
        return _list()
    if not args.quick and not args.bench_task:
        raise ConfigError("name a benchmark (rnnlab bench --list) or use --quick")
    if args.from_run and not args.bench_task:
        raise ConfigError("--from-run needs the benchmark's name: rnnlab bench TASK --from-run DIR")
    names = [args.bench_task] if args.bench_task else list(ENTRIES)
    for name in names:
        if name not in ENTRIES:
            raise ConfigError(f"unknown benchmark {name!r}; choose one of: {', '.join(ENTRIES)}")
    flags = {
        key: value
        for key, value in given(args).items()
        if key
        not in {
            "bench_task",
            "from_run",
            "quick",
            "list",
            "budget_minutes",
            "threads",
            "append_results",
            "note",
            "verbose",
        }
    }
    threads = args.threads or (1 if args.quick else None)
    previous_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    commit = git_commit()
    started = time.monotonic()
    print(HEADER)
    print(RULE, flush=True)
    skipped: list[DatasetNotFound] = []
    try:
        for name in names:
            if args.from_run:
                result = evaluate_run(name, args.from_run, args.data_dir)
            else:
                try:
                    result = run_benchmark(
                        name,
                        flags,
                        budget_minutes=args.budget_minutes,
                        quick=args.quick,
                        log=None if args.quick else sys.stderr,
                        progress=args.verbose,
                    )
                except DatasetNotFound as missing:
                    if not args.quick or args.bench_task:
                        raise
                    print(_skip_line(name, missing, args.data_dir), file=sys.stderr, flush=True)
                    skipped.append(missing)
                    continue
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
    if skipped and len(skipped) == len(names):
        raise skipped[-1]
    if args.quick:
        print(
            f"quick: {len(names) - len(skipped)} tasks in {time.monotonic() - started:.1f} s"
            + (f"; {len(skipped)} skipped (no data)" if skipped else "")
        )
    return 0


def _skip_line(name: str, missing: DatasetNotFound, data_dir: str | None) -> str:
    """``skipped jsb: music/JSB_Chorales.mat not found in DIR or $RNNLAB_DATA_DIR; ...``."""
    where = f"{data_dir} or $RNNLAB_DATA_DIR" if data_dir else "--data-dir or $RNNLAB_DATA_DIR"
    return (
        f"skipped {name}: {missing.dataset}/{missing.filename} not found in {where}; "
        "rnnlab downloads it when online"
    )


def _budget_of(config: dict) -> str:
    parts = []
    if config.get("max_minutes"):
        parts.append(f"{config['max_minutes']:g} min")
    if config.get("max_steps"):
        parts.append(f"{config['max_steps']} steps")
    if config.get("epochs"):
        parts.append(f"{config['epochs']} epochs")
    return ", ".join(parts) or "none"
