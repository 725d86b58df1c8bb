"""``rnnlab prepare``: tokenise a corpus once into a token file that ``rnnlab train`` streams.

Examples::

    rnnlab prepare --data input.txt --out prep                 # characters, 90/5/5
    rnnlab prepare --data a.txt b.txt --level word --splits 98/1/1 --out prep-words
    rnnlab train --data prep --max-steps 2000                  # charlm streams from prep
    rnnlab train --task wordlm --data prep-words
    rnnlab prepare --verify prep                               # tokens.bin against its sha256

See :mod:`rnnlab.data.prepared` for the files it writes.
"""

from __future__ import annotations

import argparse

from rnnlab.data.prepared import LEVELS, prepare, verify
from rnnlab.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prepare",
        help="tokenise a corpus once into a memory-mapped token file for rnnlab train --data DIR",
    )
    parser.add_argument(
        "--data",
        nargs="+",
        metavar="PATH",
        help="UTF-8 text files, read in order as one text",
    )
    parser.add_argument("--out", metavar="DIR", help="new (or empty) directory")
    parser.add_argument(
        "--level", choices=LEVELS, default="char", help="tokens: char (default) or word"
    )
    parser.add_argument(
        "--splits", default="90/5/5", help="train/valid/test percentages by position (90/5/5)"
    )
    parser.add_argument(
        "--verify",
        metavar="DIR",
        help="instead: check that DIR's tokens.bin matches the sha256 in its prepared.json",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.verify is not None:
        if args.data or args.out:
            raise ConfigError("--verify DIR takes no --data or --out; give one or the other")
        corpus = verify(args.verify)
        print(
            f"verified {args.verify}: {corpus.tokens:,} {corpus.level} tokens match "
            f"tokens_sha256 {corpus.manifest['tokens_sha256'][:16]}..."
        )
        return 0
    if not args.data or args.out is None:
        raise ConfigError("rnnlab prepare needs --data PATH... and --out DIR (or --verify DIR)")
    m = prepare(args.data, args.out, args.level, args.splits)
    sizes = "/".join(f"{end - begin:,}" for begin, end in m["splits"].values())
    rate = m["bytes"] / max(m["seconds"], 1e-9) / 1e6
    print(
        f"prepared {args.out}: {len(m['paths'])} file(s), {m['bytes']:,} bytes -> "
        f"{m['tokens']:,} {m['level']} tokens ({m['dtype']}), vocabulary {len(m['vocab']):,}, "
        f"{sizes} train/valid/test | {m['seconds']:.1f} s, {rate:.0f} MB/s"
    )
    return 0
