"""Speed of the LSTM/GRU variants: forward+backward and inference time as a ratio to
torch.nn.LSTM of the same size, measured in the same run, beside the reference Python loop of the
same variant.

    PYTHONPATH=src python benchmarks/speed_variants.py [--repeats 7] [--threads 2]

Every configuration is timed once per round and the rounds are interleaved, so that a change in
the machine's load hits all of them alike; the table reports medians over the rounds.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import rnnlab

VARIANTS = [
    ("lstm", {}),
    ("lstm", {"peephole": True}),
    ("lstm", {"coupled": True}),
    ("lstm", {"layer_norm": True}),
    ("lstm", {"batch_norm": True}),
    ("lstm", {"weight_norm": True}),
    ("lstm", {"layer_norm": True, "peephole": True}),
    ("gru", {}),
    ("gru", {"layer_norm": True}),
    ("gru", {"batch_norm": True}),
    ("gru", {"weight_norm": True}),
]
SHAPES = [(100, 32, 128, 256), (1, 1, 65, 512)]


def label(name: str, kwargs: dict) -> str:
    return name + "".join(f" {k}" for k in kwargs) if kwargs else name + " (plain)"


def make_runner(module, x, train: bool):
    """A closure running one forward (and backward when ``train``)."""
    params = [p for p in module.parameters() if p.requires_grad]

    def run():
        if train:
            y, _ = module(x)
            grads = torch.autograd.grad(y.sum(), params)
            del grads
        else:
            with torch.no_grad():
                module(x)

    return run


def build(shape, batch_norm_eval=True):
    steps, batch, inputs, hidden = shape
    x = torch.randn(steps, batch, inputs)
    runners = {}
    reference = torch.nn.LSTM(inputs, hidden)
    for train in (True, False):
        runners[("torch.nn.LSTM", "-", train)] = make_runner(reference, x, train)
    for name, kwargs in VARIANTS:
        cell = rnnlab.cells.create(name, input_size=inputs, hidden_size=hidden, **kwargs)
        if kwargs.get("batch_norm"):
            rnnlab.Recurrent(cell)(torch.randn(steps, max(batch, 2), inputs))
        for path, fast in (("fast", True), ("loop", False)):
            rnn = rnnlab.Recurrent(cell, fast=fast)
            for train in (True, False):
                if train and batch == 1 and kwargs.get("batch_norm"):
                    continue  # batch statistics need more than one sequence
                cell.train(train or not kwargs.get("batch_norm"))
                module = _Mode(rnn, train or not kwargs.get("batch_norm"))
                runners[(label(name, kwargs), path, train)] = make_runner(module, x, train)
    return runners


class _Mode(torch.nn.Module):
    """Puts the wrapped module in train or eval mode before each call (batch norm differs)."""

    def __init__(self, module, training: bool):
        super().__init__()
        self.module, self.mode = module, training

    def forward(self, x):
        self.module.train(self.mode)
        return self.module(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="interleaved rounds (median)")
    parser.add_argument("--inner", type=int, default=0, help="calls per timing (0: auto)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, medians of "
        f"{args.repeats} interleaved rounds; ratio = time / torch.nn.LSTM time"
    )
    for shape in SHAPES:
        runners = build(shape)
        inner = args.inner or (3 if shape[0] > 1 else 200)
        times: dict = {key: [] for key in runners}
        for run in runners.values():
            run()  # warm-up
        for _ in range(args.repeats):
            for key, run in runners.items():
                start = time.perf_counter()
                for _ in range(inner):
                    run()
                times[key].append((time.perf_counter() - start) / inner)
        med = {key: statistics.median(v) for key, v in times.items()}
        base = {train: med[("torch.nn.LSTM", "-", train)] for train in (True, False)}
        steps, batch, inputs, hidden = shape
        print(
            f"\nT={steps} B={batch} I={inputs} H={hidden}: torch.nn.LSTM train "
            f"{base[True] * 1e3:.3f} ms, inference {base[False] * 1e3:.3f} ms"
        )
        print(
            f"{'variant':34s} {'train fast':>10s} {'train loop':>10s} "
            f"{'infer fast':>10s} {'infer loop':>10s}"
        )
        for name, kwargs in VARIANTS:
            row = label(name, kwargs)
            cells = []
            for train in (True, False):
                for path in ("fast", "loop"):
                    t = med.get((row, path, train))
                    cells.append("-" if t is None else f"{t / base[train]:.2f}x")
            print(f"{row:34s} " + " ".join(f"{c:>10s}" for c in cells))


if __name__ == "__main__":
    main()
