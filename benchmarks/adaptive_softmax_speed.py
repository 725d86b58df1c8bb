"""Training-step time of the word-level PTB language model with an adaptive softmax decoder, as
a ratio to the same model with a full softmax (the reference) measured in the same run.

The model is ``wordlm``'s default shape (2 x 200 LSTM, 20 streams of 35 words, vocabulary
10,000); each configuration takes the same real PTB batches, Adam, forward and backward. Repeats
alternate between the configurations, and the median is reported::

    OMP_NUM_THREADS=1 python benchmarks/adaptive_softmax_speed.py --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rnnlab.tasks import create  # noqa: E402
from rnnlab.training import make_config  # noqa: E402

CONFIGS = {
    "full softmax (reference)": {},
    "tied full softmax": {"tie_weights": True},
    "adaptive 2000": {"adaptive_softmax": [2000]},
    "adaptive 2000,6000": {"adaptive_softmax": [2000, 6000]},
}


def step_seconds(task, options: dict, batches: list, seed: int) -> float:
    """Median seconds per training step over ``batches`` after two warm-up steps."""
    torch.manual_seed(seed)
    config = task.config
    for key, value in {"tie_weights": False, "adaptive_softmax": None, **options}.items():
        setattr(config, key, value)
    model = task.build_model().train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    times = []
    for i, (x, y) in enumerate(batches):
        start = time.perf_counter()
        loss, _ = model.loss(x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if i >= 2:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="directory with the PTB files")
    parser.add_argument("--steps", type=int, default=12, help="steps per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = create("wordlm", make_config("wordlm", data_dir=args.data_dir))
    batches = [b for _, b in zip(range(args.steps + 2), task.train_batches(0))]
    seconds: dict[str, list[float]] = {name: [] for name in CONFIGS}
    for repeat in range(args.repeats):
        for name, options in CONFIGS.items():
            seconds[name].append(step_seconds(task, options, batches, seed=repeat))
    reference = statistics.median(seconds["full softmax (reference)"])
    words = batches[0][1].numel()
    print(f"wordlm 2x200, batch {tuple(batches[0][1].shape)}, {args.threads} thread(s)")
    print(f"{'decoder':<28} {'ms/step':>8} {'words/s':>8} {'ratio':>6}")
    for name, values in seconds.items():
        median = statistics.median(values)
        print(f"{name:<28} {median * 1e3:>8.1f} {words / median:>8.0f} {median / reference:>6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
