"""Speed of the LSTM/GRU variants: forward+backward and inference time as a ratio to
torch.nn.LSTM of the same size, measured in the same run, beside the reference Python loop of the
same variant; and (``--table regularized``) of ``rnnlab.LSTM`` with recurrent dropout, zoneout
and DropConnect, whose training runs on the fused path, beside the same layer forced onto the
reference loop.

    PYTHONPATH=src python benchmarks/speed_variants.py [--repeats 7] [--threads 2]
        [--table variants|regularized|all] [--clock wall|cpu] [--malloc kept|default]

With ``--malloc kept`` (the default) glibc keeps freed memory in the process, as the ``rnnlab``
command has it (:func:`rnnlab.fast.heap.keep_freed_memory`): otherwise every side pays page faults
on the fresh memory of its [T, B, ...] tensors, and how many depends on what the process
allocated before (measured here: torch.nn.LSTM's own training step took 45 to 64 ms by the
allocation history alone, a third of it in the kernel). ``--malloc default`` measures glibc as it
comes.

Every configuration is timed once per round and the rounds are interleaved, so that a change in
the machine's load hits all of them alike; the table reports medians over the rounds.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import rnnlab
from rnnlab.fast.heap import DEFAULT_MB, keep_freed_memory

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
REGULARIZED = [
    {"recurrent_dropout": 0.25},
    {"zoneout_cell": 0.5, "zoneout_hidden": 0.05},
    {"recurrent_dropout": 0.25, "zoneout_cell": 0.5, "zoneout_hidden": 0.05},
    {"weight_drop": 0.5},
    {"recurrent_dropout": 0.25, "layer_norm": True},
]


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


def regularized_label(kwargs: dict) -> str:
    return "LSTM " + " ".join(f"{k}={v}" for k, v in kwargs.items())


def build_regularized(shape):
    """``rnnlab.LSTM`` with each of REGULARIZED, on its default path and forced onto the loop."""
    steps, batch, inputs, hidden = shape
    x = torch.randn(steps, batch, inputs)
    reference = torch.nn.LSTM(inputs, hidden)
    runners = {("torch.nn.LSTM", "-", t): make_runner(reference, x, t) for t in (True, False)}
    for kwargs in REGULARIZED:
        for path, fast in (("fast", True), ("loop", False)):
            layer = rnnlab.LSTM(inputs, hidden, fast=fast, **kwargs)
            for train in (True, False):
                module = _Mode(layer, train)
                runners[(regularized_label(kwargs), path, train)] = make_runner(module, x, train)
    return runners


def measure(runners, repeats: int, inner: int, clock=time.perf_counter) -> dict:
    """Median seconds per call of each runner over ``repeats`` interleaved rounds."""
    times: dict = {key: [] for key in runners}
    for run in runners.values():
        run()  # warm-up
    for _ in range(repeats):
        for key, run in runners.items():
            start = clock()
            for _ in range(inner):
                run()
            times[key].append((clock() - start) / inner)
    return {key: statistics.median(v) for key, v in times.items()}


def print_table(med: dict, shape, rows: list[str]) -> None:
    base = {train: med[("torch.nn.LSTM", "-", train)] for train in (True, False)}
    steps, batch, inputs, hidden = shape
    print(
        f"\nT={steps} B={batch} I={inputs} H={hidden}: torch.nn.LSTM train "
        f"{base[True] * 1e3:.3f} ms, inference {base[False] * 1e3:.3f} ms"
    )
    width = max(34, *(len(r) for r in rows))
    print(
        f"{'variant':{width}s} {'train fast':>10s} {'train loop':>10s} "
        f"{'infer fast':>10s} {'infer loop':>10s}"
    )
    for row in rows:
        cells = []
        for train in (True, False):
            for path in ("fast", "loop"):
                t = med.get((row, path, train))
                cells.append("-" if t is None else f"{t / base[train]:.2f}x")
        print(f"{row:{width}s} " + " ".join(f"{c:>10s}" for c in cells))


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
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall time, or this process's CPU time (steadier on a machine loaded by others)",
    )
    parser.add_argument(
        "--table",
        choices=("variants", "regularized", "all"),
        default="all",
        help="the cell variants, the regularised drop-in LSTM (first shape only), or both",
    )
    parser.add_argument(
        "--malloc",
        choices=("kept", "default"),
        default="kept",
        help="kept: glibc keeps freed memory, as the rnnlab command has it (no page faults)",
    )
    args = parser.parse_args()
    kept = args.malloc == "kept" and keep_freed_memory(DEFAULT_MB)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.clock} clock, "
        f"freed memory {'kept' if kept else 'returned (glibc default)'}, "
        f"medians of {args.repeats} interleaved rounds; ratio = time / torch.nn.LSTM time"
    )
    if args.table in ("variants", "all"):
        for shape in SHAPES:
            inner = args.inner or (3 if shape[0] > 1 else 200)
            med = measure(build(shape), args.repeats, inner, clock)
            print_table(med, shape, [label(name, kwargs) for name, kwargs in VARIANTS])
    if args.table in ("regularized", "all"):
        shape = SHAPES[0]
        med = measure(build_regularized(shape), args.repeats, args.inner or 3, clock)
        print("\nrnnlab.LSTM with recurrent dropout / zoneout (fast: its default path)")
        print_table(med, shape, [regularized_label(kwargs) for kwargs in REGULARIZED])


if __name__ == "__main__":
    main()
