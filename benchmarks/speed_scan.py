"""Training-step time of minGRU / minLSTM (log-space parallel scan) vs torch.nn.GRU and LSTM.

One training step = forward over ``[T, B, H]`` inputs, a sum loss, backward, SGD update, at the
same hidden size for every model. Times are medians over ``--repeats`` steps after one warm-up
step; the ratio column is the time relative to torch.nn.GRU at the same T (below 1 = faster).
The minGRU reference loop (``Recurrent(fast=False)``, one step at a time) is timed up to
``--max-loop-steps``.

    python benchmarks/speed_scan.py [--batch 16] [--hidden 256] [--steps 256 1024 4096]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

import rnnlab


class Wrapped(nn.Module):
    """torch.nn.GRU / LSTM and rnnlab.Recurrent behind one call: ``x -> outputs``."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)[0]


def step_time(model: nn.Module, x: torch.Tensor, repeats: int) -> float:
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    times = []
    for i in range(repeats + 1):
        start = time.perf_counter()
        optimizer.zero_grad()
        model(x).square().mean().backward()
        optimizer.step()
        if i:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--steps", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-loop-steps", type=int, default=1024)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.manual_seed(0)
    hidden, device = args.hidden, torch.device(args.device)
    models = {
        "torch.nn.GRU": nn.GRU(hidden, hidden),
        "torch.nn.LSTM": nn.LSTM(hidden, hidden),
        "minGRU (scan)": rnnlab.Recurrent(
            rnnlab.cells.create("mingru", input_size=hidden, hidden_size=hidden)
        ),
        "minLSTM (scan)": rnnlab.Recurrent(
            rnnlab.cells.create("minlstm", input_size=hidden, hidden_size=hidden)
        ),
    }
    loop = rnnlab.Recurrent(models["minGRU (scan)"].cell, fast=False)
    print(
        f"batch {args.batch}, input = hidden = {hidden}, {args.device}, "
        f"torch threads {torch.get_num_threads()}, median of {args.repeats} steps"
    )
    print(f"{'T':>5} {'model':<22} {'step ms':>10} {'vs GRU':>7}")
    for steps in args.steps:
        x = torch.randn(steps, args.batch, hidden, device=device)
        runs = dict(models)
        if steps <= args.max_loop_steps:
            runs["minGRU (loop)"] = loop
        reference = None
        for name, module in runs.items():
            seconds = step_time(Wrapped(module).to(device), x, args.repeats)
            reference = reference or seconds
            print(
                f"{steps:>5} {name:<22} {seconds * 1e3:>10.1f} {seconds / reference:>7.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
