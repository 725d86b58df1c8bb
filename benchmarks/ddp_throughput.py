"""Training throughput of 1 process vs N data-parallel processes (torchrun, gloo on CPU).

Both runs train the same model with the same global batch; each process uses one thread
(``OMP_NUM_THREADS=1``). Throughput is the mean ``chars_per_s`` of the logged windows after the
first (warm-up) one, read from each run's ``metrics.jsonl``::

    PYTHONPATH=src python benchmarks/ddp_throughput.py --nproc 2 --max-steps 60
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def throughput(run: Path) -> float:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rates = [r["chars_per_s"] for r in records if r["split"] == "train"][1:]
    return sum(rates) / len(rates)


def train(nproc: int, run: Path, flags: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    if nproc == 1:
        command = [sys.executable, "-m", "rnnlab", "train"]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc)]
        command += ["-m", "rnnlab", "train"]
    command += [*flags, "--out", str(run)]
    print("$ OMP_NUM_THREADS=1 " + " ".join(command[1:]), flush=True)
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    return throughput(run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--max-steps", type=int, default=60)
    parser.add_argument("--log-every", type=int, default=10)
    args, extra = parser.parse_known_args()
    flags = ["--max-steps", str(args.max_steps), "--log-every", str(args.log_every)]
    flags += ["--eval-every", "100000", "--sample-every", "100000", *extra]
    with tempfile.TemporaryDirectory() as tmp:
        one = train(1, Path(tmp) / "one", flags)
        many = train(args.nproc, Path(tmp) / "many", flags)
    print(f"1 process: {one:,.0f} chars/s")
    print(f"{args.nproc} processes: {many:,.0f} chars/s ({many / one:.2f}x)")


if __name__ == "__main__":
    main()
