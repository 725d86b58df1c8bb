"""``rnnlab prepare``: tokenise a corpus once into a token file that ``rnnlab train`` streams.

Examples::

    rnnlab prepare --data input.txt --out prep                 # characters, 90/5/5
    rnnlab prepare --data a.txt b.txt --level word --splits 98/1/1 --out prep-words
    rnnlab train --data prep --max-steps 2000                  # charlm streams from prep
    rnnlab train --task wordlm --data prep-words

See :mod:`rnnlab.data.prepared` for the files it writes.
"""

from __future__ import annotations

import argparse

from rnnlab.data.prepared import LEVELS, prepare


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prepare",
        help="tokenise a corpus once into a memory-mapped token file for rnnlab train --data DIR",
    )
    parser.add_argument(
        "--data",
        nargs="+",
        required=True,
        metavar="PATH",
        help="UTF-8 text files, read in order as one text",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="new (or empty) directory")
    parser.add_argument(
        "--level", choices=LEVELS, default="char", help="tokens: char (default) or word"
    )
    parser.add_argument(
        "--splits", default="90/5/5", help="train/valid/test percentages by position (90/5/5)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    m = prepare(args.data, args.out, args.level, args.splits)
    sizes = "/".join(f"{end - begin:,}" for begin, end in m["splits"].values())
    rate = m["bytes"] / max(m["seconds"], 1e-9) / 1e6
    print(
        f"prepared {args.out}: {len(m['paths'])} file(s), {m['bytes']:,} bytes -> "
        f"{m['tokens']:,} {m['level']} tokens ({m['dtype']}), vocabulary {len(m['vocab']):,}, "
        f"{sizes} train/valid/test | {m['seconds']:.1f} s, {rate:.0f} MB/s"
    )
    return 0
