"""Speed of rnnlab.LSTM/GRU/RNN against torch.nn.LSTM/GRU/RNN, measured in the same run.

For each layer type and shape, both modules get the same weights; then repetitions alternate
between them (torch, rnnlab, rnnlab, torch, ...) so that a change in machine load hits both, and
the table reports median times and their ratio (rnnlab / torch; target <= 1.05):

    PYTHONPATH=src python benchmarks/speed_layers.py            # the issue's two shapes, 1 layer
    PYTHONPATH=src python benchmarks/speed_layers.py --layers 2 --bidirectional --slow

"train" is one forward and backward pass (loss = output.sum()); "infer" is a forward pass under
torch.no_grad(). The "control" column times a second, identical torch module in the same
interleaving: its distance from 1.0 is the noise of the measurement on this machine. ``--slow``
also times rnnlab's layer-by-layer reference loop (fast=False).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

import rnnlab

SHAPES = [(100, 32, 128, 256), (25, 1, 65, 100)]  # (T, B, I, H)
KINDS = {"LSTM": (nn.LSTM, rnnlab.LSTM), "GRU": (nn.GRU, rnnlab.GRU), "RNN": (nn.RNN, rnnlab.RNN)}


def train_step(module: nn.Module, x: torch.Tensor) -> None:
    module.zero_grad(set_to_none=True)
    x.grad = None
    module(x)[0].sum().backward()


def infer_step(module: nn.Module, x: torch.Tensor) -> None:
    with torch.no_grad():
        module(x)


def time_once(step, module: nn.Module, x: torch.Tensor, inner: int) -> float:
    start = time.perf_counter()
    for _ in range(inner):
        step(module, x)
    return (time.perf_counter() - start) / inner


def interleaved_medians(step, modules: list[nn.Module], x, repeats: int) -> list[float]:
    """Median seconds per call of each module; the order alternates every repetition."""
    for module in modules:  # warm-up (allocator, oneDNN primitive caches)
        time_once(step, module, x, 2)
    # enough calls per timing that each one lasts about 20 ms
    inner = max(1, round(0.02 / time_once(step, modules[0], x, 3)))
    times: list[list[float]] = [[] for _ in modules]
    for rep in range(repeats):
        order = range(len(modules)) if rep % 2 == 0 else reversed(range(len(modules)))
        for i in order:
            times[i].append(time_once(step, modules[i], x, inner))
    return [statistics.median(t) for t in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--bidirectional", action="store_true")
    parser.add_argument("--repeats", type=int, default=21, help="timed repetitions per module")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--slow", action="store_true", help="also time fast=False")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(
        f"torch {torch.__version__}, {args.threads} threads, layers={args.layers}, "
        f"bidirectional={args.bidirectional}, median of {args.repeats} interleaved repetitions"
    )
    header = f"{'layer':5} {'T':>4} {'B':>3} {'I':>4} {'H':>4}  {'':5} "
    header += f"{'torch ms':>9} {'rnnlab ms':>9} {'ratio':>6} {'control':>7}"
    if args.slow:
        header += f" {'loop ms':>9} {'ratio':>6}"
    print(header)
    for kind in args.kinds:
        torch_cls, rnnlab_cls = KINDS[kind]
        for steps, batch, inputs, hidden in SHAPES:
            config = dict(num_layers=args.layers, bidirectional=args.bidirectional)
            reference = torch_cls(inputs, hidden, **config)
            control = torch_cls(inputs, hidden, **config)
            modules = [reference, rnnlab_cls(inputs, hidden, **config), control]
            if args.slow:
                modules.append(rnnlab_cls(inputs, hidden, **config, fast=False))
            for module in modules[1:]:
                module.load_state_dict(reference.state_dict())
            x = torch.randn(steps, batch, inputs, requires_grad=True)
            for label, step in (("train", train_step), ("infer", infer_step)):
                times = interleaved_medians(step, modules, x, args.repeats)
                row = (
                    f"{kind:5} {steps:4} {batch:3} {inputs:4} {hidden:4}  {label:5} "
                    f"{times[0] * 1e3:9.3f} {times[1] * 1e3:9.3f} {times[1] / times[0]:6.3f} "
                    f"{times[2] / times[0]:7.3f}"
                )
                if args.slow:
                    row += f" {times[3] * 1e3:9.3f} {times[3] / times[0]:6.3f}"
                print(row, flush=True)


if __name__ == "__main__":
    main()
