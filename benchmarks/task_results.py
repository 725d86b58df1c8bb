"""Evaluate finished runs of the sequence tasks on their test split (best checkpoint).

    python benchmarks/task_results.py runs/names runs/sst5 ... [--split test] [--beam 5]

Prints one line per run: task, the settings that matter, and every test metric, next to the
published reference for the task (docs/tasks.md has the commands that made the runs).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402

from rnnlab.training.load import load_run  # noqa: E402

REFERENCE = {
    ("sst", 5): "Tai et al. 2015 (GloVe): LSTM 46.4, BiLSTM 49.1",
    ("sst", 2): "Tai et al. 2015 (GloVe): LSTM 84.9, BiLSTM 87.5",
    ("names-classify", None): "community reports 75-85% (LSTM/GRU, tutorial data with repeats)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--split", default="test")
    parser.add_argument("--beam", type=int, help="beam size for translate (the run's --beam)")
    args = parser.parse_args()
    for run in args.runs:
        overrides = {"beam": args.beam} if args.beam is not None else {}
        task, model, _ = load_run(run, **overrides)
        started = time.monotonic()
        with torch.no_grad():
            metrics = task.evaluate(model, args.split)
        c = task.config
        setting = (
            f"cell={c.cell} hidden={c.hidden} bidirectional={getattr(c, 'bidirectional', False)}"
        )
        if task.name == "sst":
            setting += f" classes={c.classes}"
        shown = " | ".join(f"{k} {v:.4f}" for k, v in metrics.items() if "/" not in k)
        seconds = time.monotonic() - started
        print(f"{run}: {task.name} {setting} | {args.split} {shown} ({seconds:.0f}s)")
        per_class = {k.split("/")[1]: v for k, v in metrics.items() if "/" in k}
        if per_class:
            print("  per class: " + ", ".join(f"{k} {v:.2f}" for k, v in per_class.items()))
        key = (task.name, getattr(c, "classes", None) if task.name == "sst" else None)
        if key in REFERENCE:
            print(f"  reference: {REFERENCE[key]}")


if __name__ == "__main__":
    main()
