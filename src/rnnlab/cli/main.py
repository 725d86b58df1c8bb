"""Entry point of the ``rnnlab`` command.

Every module in ``rnnlab.cli`` other than this one is a subcommand: it defines
``register(subparsers)``, which adds its parser and sets ``func`` to a callable taking the parsed
arguments and returning an exit code. A subcommand whose flags depend on its arguments (``train
--task X``) also sets ``own_flags=True``: the arguments its parser did not know arrive in
``args.rest`` and it parses them itself with a :class:`Parser`. Errors the user can fix
(``RnnlabError``) and argparse's errors are printed as one line on stderr with exit code 2;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import pkgutil
import sys
import traceback

import rnnlab.cli
from rnnlab.errors import ConfigError, RnnlabError
from rnnlab.fast.heap import keep_freed_memory
from rnnlab.training import distributed


class UsageError(ConfigError):
    """A command line argparse cannot parse: one line and where to read the usage."""

    def __init__(self, message: str, hint: str):
        super().__init__(f"{message}; see {hint}")


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are a :class:`UsageError` (``see PROG --help``, or
    ``hint``) instead of the usage printed and the process ended."""

    def __init__(self, *args, hint: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.hint = hint

    def error(self, message: str):
        raise UsageError(message, self.hint or f"{self.prog} --help")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
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
    try:
        args, rest = parser.parse_known_args(argv)
        if rest and not getattr(args, "own_flags", False):
            command = f"rnnlab {args.command}" if args.command else "rnnlab"
            raise UsageError(f"unrecognized arguments: {' '.join(rest)}", f"{command} --help")
    except UsageError as error:
        print(f"rnnlab: error: {error}", file=sys.stderr)
        return 2
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if getattr(args, "own_flags", False):
        args.rest = rest
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
