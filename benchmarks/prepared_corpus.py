"""Prepared corpora: ``rnnlab prepare`` throughput and training memory against corpus size.

For each size it writes a corpus of random words (ASCII, in a temporary directory, removed at
the end), prepares it at the character level (in this process, timed) and trains the default
char-LM model a few steps from it in a fresh ``rnnlab train --data DIR`` process, whose peak
resident memory (``ru_maxrss`` from ``wait4``) it prints. ``MB/CPU-s`` divides by the
preparing process's CPU time: on a shared machine it shows what a core of its own would do.
Flat memory means the training process does not hold the corpus::

    PYTHONPATH=src python benchmarks/prepared_corpus.py --sizes 10,200 --steps 20
    PYTHONPATH=src python benchmarks/prepared_corpus.py --sizes 10,2000   # the issue's sizes
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rnnlab.data.prepared import prepare

SRC = Path(__file__).resolve().parents[1] / "src"
WORDS = "the of and to in is was for on that with as by at from his her an which or".split()


def write_corpus(path: Path, megabytes: int) -> None:
    """``megabytes`` MB of random words and newlines (a 1 MB block written over and over)."""
    rng = random.Random(0)
    words = WORDS + ["".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=6)) for _ in range(500)]
    block = " ".join(
        rng.choice(words) + ("\n" if rng.random() < 0.08 else "") for _ in range(200_000)
    )
    block = block.encode()[: 1 << 20]
    with open(path, "wb") as f:
        for _ in range(megabytes * 10**6 // len(block)):
            f.write(block)
        f.write(block[: megabytes * 10**6 % len(block)])


def train_rss_mb(data: Path, run: Path, steps: int) -> float:
    """Peak resident memory (MB) of ``rnnlab train --data DATA`` for ``steps`` steps."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "rnnlab", "train", "--data", str(data), "--out", str(run)]
    command += ["--max-steps", str(steps), "--eval-every", "100000", "--sample-every", "100000"]
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"training failed: {child.stderr.read().decode()[-2000:]}")
    return usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10,200", help="corpus sizes in MB (10,200)")
    parser.add_argument("--steps", type=int, default=20, help="training steps per size (20)")
    args = parser.parse_args()
    print(
        f"{'corpus':>9} | {'prepare':>9} | {'MB/s':>6} | {'MB/CPU-s':>8} | {'train peak RSS':>14}"
    )
    with tempfile.TemporaryDirectory(prefix="prepared-bench-") as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            text, prep = Path(tmp) / f"{size}.txt", Path(tmp) / f"prep-{size}"
            write_corpus(text, size)
            started, cpu = time.perf_counter(), time.process_time()
            # almost all training text: the final validation pass stays short at every size
            prepare([text], prep, splits="99.98/0.01/0.01")
            seconds = time.perf_counter() - started
            cpu = time.process_time() - cpu
            text.unlink()
            rss = train_rss_mb(prep, Path(tmp) / f"run-{size}", args.steps)
            rates = f"{size / seconds:>6.0f} | {size / cpu:>8.0f}"
            print(f"{size:>6} MB | {seconds:>7.1f} s | {rates} | {rss:>11.0f} MB")
            for file in prep.iterdir():
                file.unlink()


if __name__ == "__main__":
    main()
