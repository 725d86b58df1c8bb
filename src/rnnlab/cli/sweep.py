"""``rnnlab sweep``: hyperparameter search on Optuna (docs/sweep.md).

Examples::

    rnnlab sweep benchmarks/configs/greff_jsb.yaml --out sweeps/greff-jsb   # run or resume
    rnnlab sweep benchmarks/configs/greff_jsb.yaml --out sweeps/greff-jsb --workers 2
    rnnlab sweep report sweeps/greff-jsb      # table, Welch's t-tests, importances, plots
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rnnlab.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sweep",
        help="hyperparameter search on Optuna; `sweep report DIR` summarises one",
        description="Run or resume the sweep of FILE (YAML, TOML or JSON; docs/sweep.md), or "
        "`rnnlab sweep report DIR` to report on a sweep directory.",
    )
    parser.add_argument("target", nargs="+", metavar="FILE | report DIR")
    parser.add_argument("--out", metavar="DIR", help="the sweep directory (sweeps/<name>)")
    parser.add_argument("--workers", type=int, default=1, help="local worker processes (1)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rnnlab.sweep.run import require_optuna

    require_optuna()
    if args.target[0] == "report":
        if len(args.target) != 2:
            raise ConfigError("usage: rnnlab sweep report DIR")
        from rnnlab.sweep.report import build_report

        print(build_report(Path(args.target[1])), end="")
        return 0
    if len(args.target) != 1:
        raise ConfigError("give one sweep FILE (or: rnnlab sweep report DIR)")
    if args.workers < 1:
        raise ConfigError(f"--workers must be positive, got {args.workers}")
    from rnnlab.sweep.run import run_sweep
    from rnnlab.sweep.spec import load_spec

    spec = load_spec(args.target[0])
    directory = Path(args.out or Path("sweeps") / spec.name)
    return run_sweep(spec, directory, args.workers)
