"""rnnlab's per-step product (native_gemm.cpp) against oneDNN's, one thread, CPU time.

    PYTHONPATH=src python benchmarks/panel_product_speed.py [--rounds 5]

For each shape ``x [M, K] @ W.T`` (W ``[N, K]``) of a recurrent step, prints the time of
``torch.ops.rnnlab_native.panel_product`` with W packed once, of oneDNN's matmul with W
reordered once (``torch.ops.mkldnn._linear_pointwise``, as rnnlab's loops called it before), and
their ratio. Needs the native kernels and an AVX-512 CPU.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from rnnlab.fast import native
from rnnlab.fast.onednn import _LINEAR

SHAPES = [  # (M, K, N): batch, state size, gate width
    (1, 256, 1024),
    (4, 256, 1024),
    (8, 256, 1024),
    (16, 256, 1024),
    (32, 256, 1024),
    (64, 256, 1024),
    (32, 1024, 256),  # the backward's product of an LSTM with H=256
    (32, 512, 2048),
    (8, 512, 2048),
]


def best_microseconds(run, rounds: int, calls: int = 300) -> float:
    for _ in range(20):
        run()
    times = []
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(calls):
            run()
        times.append((time.process_time() - start) / calls * 1e6)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (the best is kept)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    ops = native.kernels()
    if ops is None or not ops.panel_gemm_covers(torch.zeros(64, 4)):
        sys.exit("the panel product needs the native kernels and an AVX-512 CPU")
    print(f"torch {torch.__version__}, 1 thread, CPU time, best of {args.rounds} rounds")
    print(f"{'M':>4} {'K':>5} {'N':>5} {'rnnlab us':>10} {'oneDNN us':>10} {'ratio':>6}")
    for m, k, n in SHAPES:
        x, w = torch.randn(m, k), torch.randn(n, k)
        panels, reordered = ops.pack_panels(w), torch.ops.mkldnn._reorder_linear_weight(w, m)
        ours = best_microseconds(lambda x=x, p=panels: ops.panel_product(x, p), args.rounds)
        theirs = best_microseconds(
            lambda x=x, w=reordered: _LINEAR(x, w, None, "none", [], ""), args.rounds
        )
        print(f"{m:>4} {k:>5} {n:>5} {ours:>10.1f} {theirs:>10.1f} {ours / theirs:>6.2f}")


if __name__ == "__main__":
    main()
