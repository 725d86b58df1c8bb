"""Training with glibc keeping freed memory (rnnlab.fast.heap) against glibc as it comes.

    PYTHONPATH=src python benchmarks/heap_speed.py [--rounds 3] [--steps 300]

Prints two ratios, each of the time with freed memory kept to the time without, in fresh
processes run alternately: the wall time of ``rnnlab train --max-steps STEPS`` (the quick start's
model on the embedded corpus; ``RNNLAB_MALLOC_TOP_PAD_MB=0`` turns the setting off), and the CPU
time of torch.nn.LSTM's training step (T=100, B=32, I=128, H=256, one thread) with its page faults.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

LSTM_STEP = """
import resource, sys, time, torch
from rnnlab.fast.heap import keep_freed_memory
keep_freed_memory(float(sys.argv[1]))
torch.set_num_threads(1)
lstm, x = torch.nn.LSTM(128, 256), torch.randn(100, 32, 128)
def step():
    y, _ = lstm(x)
    torch.autograd.grad(y.sum(), list(lstm.parameters()))
for _ in range(3):
    step()
faults, start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.process_time()
for _ in range(20):
    step()
elapsed = (time.process_time() - start) / 20
print(elapsed, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / 20)
"""


def environment(megabytes: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    return {**env, "RNNLAB_MALLOC_TOP_PAD_MB": str(megabytes), "OMP_NUM_THREADS": "1"}


def train_seconds(megabytes: int, steps: int) -> float:
    with tempfile.TemporaryDirectory() as runs:
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "rnnlab",
                "train",
                "--max-steps",
                str(steps),
                "--out",
                runs + "/r",
            ],
            env=environment(megabytes),
            check=True,
            capture_output=True,
        )
        return time.perf_counter() - start


def lstm_step(megabytes: int) -> tuple[float, float]:
    out = subprocess.run(
        [sys.executable, "-c", LSTM_STEP, str(megabytes)],
        env=environment(megabytes),
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return float(out[0]), float(out[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating pairs of processes")
    parser.add_argument("--steps", type=int, default=300, help="training steps of rnnlab train")
    args = parser.parse_args()
    kept_mb = 256
    train = {kept_mb: [], 0: []}
    step = {kept_mb: [], 0: []}
    for _ in range(args.rounds):
        for megabytes in (kept_mb, 0):
            train[megabytes].append(train_seconds(megabytes, args.steps))
            step[megabytes].append(lstm_step(megabytes))
    t_kept, t_default = (statistics.median(train[m]) for m in (kept_mb, 0))
    print(
        f"rnnlab train --max-steps {args.steps}: kept {t_kept:.1f} s, glibc default "
        f"{t_default:.1f} s (wall, medians of {args.rounds}): ratio {t_kept / t_default:.2f}"
    )
    (s_kept, f_kept), (s_default, f_default) = (
        (statistics.median(x[0] for x in step[m]), statistics.median(x[1] for x in step[m]))
        for m in (kept_mb, 0)
    )
    print(
        f"torch.nn.LSTM training step: kept {s_kept * 1e3:.1f} ms ({f_kept:.0f} page faults), "
        f"glibc default {s_default * 1e3:.1f} ms ({f_default:.0f} page faults) (CPU time): "
        f"ratio {s_kept / s_default:.2f}"
    )


if __name__ == "__main__":
    main()
