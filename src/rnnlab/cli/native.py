"""``rnnlab native``: build (or load) the native step kernels of the fused LSTM/GRU variant paths
now, instead of at their first use, and say whether they are ready.

Example::

    rnnlab native     # native step kernels: ready (1.2 s to build or load)
"""

from __future__ import annotations

import argparse
import sys

from rnnlab.fast import native


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "native", help="build the native step kernels of the fused LSTM/GRU variants now"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if native.kernels() is None:
        reason = "disabled by RNNLAB_NATIVE=0" if native.disabled() else "see the warning above"
        print(f"native step kernels: not available ({reason})", file=sys.stderr)
        return 1
    print(f"native step kernels: ready ({native.build_seconds():.1f} s to build or load)")
    return 0
