"""Entry point of the ``rnnlab`` command.

Every module in ``rnnlab.cli`` other than this one is a subcommand: it defines
``register(subparsers)``, which adds its parser and sets ``func`` to a callable taking the parsed
arguments and returning an exit code. Errors the user can fix (``RnnlabError``) are printed as one
line on stderr with exit code 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import pkgutil
import sys
import traceback

import rnnlab.cli
from rnnlab.errors import RnnlabError
from rnnlab.fast.heap import keep_freed_memory
from rnnlab.training import distributed


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnnlab", description="Recurrent neural networks: train, sample, evaluate, analyse."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in sorted(m.name for m in pkgutil.iter_modules(rnnlab.cli.__path__)):
        if module != "main":
            importlib.import_module(f"rnnlab.cli.{module}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv``); returns the exit code.

    After a distributed run it first collects what may still refer to the torn-down process
    group (DDP's reducer, finished collectives), while the interpreter is whole, so that the
    process then ends normally, ``atexit`` handlers included, and no gloo thread meets a
    finalizing interpreter (see :func:`rnnlab.training.distributed.torn_down`)."""
    code = _run(argv)
    if distributed.torn_down():
        gc.collect()
    return code


def _run(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        keep_freed_memory()  # no page faults on every step's fresh memory (rnnlab.fast.heap)
        return int(args.func(args) or 0)
    except (RnnlabError, OSError) as error:  # OSError: disk full, read-only folder, permission
        if args.debug:
            traceback.print_exc()
        else:
            print(f"rnnlab: error: {_one_line(error)}", file=sys.stderr)
        return 2


def _one_line(error: Exception) -> str:
    if isinstance(error, OSError) and not isinstance(error, RnnlabError):
        where = f" {error.filename}" if error.filename else ""
        reason = error.strerror or error
        return f"cannot write or read{where}: {reason}; free space or fix permissions"
    return str(error)


if __name__ == "__main__":
    sys.exit(main())
