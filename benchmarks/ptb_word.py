"""Word-level PTB: a Zaremba-small-shaped LSTM (2 x 200) for a fixed CPU budget, without
regularisation and with each regulariser, beside Zaremba et al.'s published perplexities.

Each configuration trains with ``rnnlab``'s Trainer and the ``wordlm`` task (Adam 2e-3, 35 steps,
20 streams, clip 5) for ``--minutes`` of training, then the final model is evaluated on the whole
validation and test sets. Run configurations in separate processes (the machine is shared) and
print the table from their JSON results::

    export OMP_NUM_THREADS=1
    for c in none dropout variational; do
        python benchmarks/ptb_word.py --config $c --minutes 3 --json runs/ptb_$c.json &
    done; wait
    python benchmarks/ptb_word.py --table runs/ptb_*.json

``--config all`` runs every configuration one after the other in this process.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rnnlab.tasks import create  # noqa: E402
from rnnlab.training import Trainer, make_config  # noqa: E402

CONFIGS: dict[str, dict] = {
    "none": {},
    "dropout": {"dropout": 0.5},
    "variational": {"variational_dropout": 0.3},
    "recurrent": {"recurrent_dropout": 0.25},
    "weight-drop": {"weight_drop": 0.5},
    "embedding": {"embedding_dropout": 0.1, "dropout": 0.3},
    "zoneout": {"zoneout_cell": 0.5, "zoneout_hidden": 0.05},
    "weight-noise": {"weight_noise": 0.01},
    "ar-tar": {"ar": 2.0, "tar": 1.0},
    "spectral-norm": {"spectral_norm": 1.0},
    "tied+dropout": {"dropout": 0.5, "tie_weights": True},
    "tuned": {"dropout": 0.3, "tie_weights": True, "lr": 5e-3, "schedule": "cosine"},
    "adaptive": {"adaptive_softmax": [2000], "dropout": 0.35, "lr": 5e-3, "schedule": "cosine"},
}
"""Name -> the regularisation settings it adds to the shared model."""

PUBLISHED = (
    ("Zaremba et al. 2014, small (2x200, no regularisation)", 120.7, 114.5),
    ("Zaremba et al. 2014, medium (2x650, dropout 0.5)", 86.2, 82.7),
)


def run(
    name: str, minutes: float, data_dir: str | None, seed: int, eval_every: int | None = None
) -> dict:
    with tempfile.TemporaryDirectory() as out:
        config = make_config(
            "wordlm",
            data_dir=data_dir,
            max_minutes=minutes,
            eval_every=eval_every or 10**9,
            sample_every=10**9,
            seed=seed,
            out=out,
            **CONFIGS[name],
        )
        task = create("wordlm", config)
        trainer = Trainer(task, config, Path(out) / "run", progress=False)
        start = time.monotonic()
        valid = trainer.fit()  # the final model's validation metrics
        train_seconds = time.monotonic() - start
        model = trainer.model.eval()
        with torch.no_grad():
            test = task.evaluate(model, "test")
    return {
        "config": name,
        "settings": CONFIGS[name],
        "minutes": minutes,
        "steps": trainer.step,
        "seconds": round(train_seconds, 1),
        "valid_ppl": valid["ppl"],
        "test_ppl": test["ppl"],
    }


def table(results: list[dict]) -> str:
    lines = [
        f"{'configuration':<56} {'steps':>6} {'valid ppl':>10} {'test ppl':>9}",
        "-" * 84,
    ]
    for r in results:
        flags = ", ".join(f"{k}={v}" for k, v in r["settings"].items()) or "no regularisation"
        label = f"{r['config']} ({flags}), {r['minutes']:g} min"
        lines.append(f"{label:<56} {r['steps']:>6} {r['valid_ppl']:>10.1f} {r['test_ppl']:>9.1f}")
    for label, valid, test in PUBLISHED:
        lines.append(f"{label:<56} {'':>6} {valid:>10.1f} {test:>9.1f}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help=f"one of {', '.join(CONFIGS)}, or all")
    parser.add_argument("--minutes", type=float, default=3.0, help="training budget per config")
    parser.add_argument("--data-dir", default=None, help="folder with ptb/ptb.*.txt")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--eval-every", type=int, help="also validate every N steps and print it (default: off)"
    )
    parser.add_argument("--json", help="write the result(s) to this file")
    parser.add_argument("--table", nargs="+", metavar="JSON", help="print the table of results")
    args = parser.parse_args()
    if args.table:
        results = []
        for path in args.table:
            data = json.loads(Path(path).read_text())
            results += data if isinstance(data, list) else [data]
        order = list(CONFIGS)
        results.sort(key=lambda r: order.index(r["config"]))
        print(table(results))
        return 0
    if args.config is None or (args.config != "all" and args.config not in CONFIGS):
        parser.error(f"--config must be one of {', '.join(CONFIGS)}, or all")
    names = list(CONFIGS) if args.config == "all" else [args.config]
    results = [run(n, args.minutes, args.data_dir, args.seed, args.eval_every) for n in names]
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    return 0 if all(math.isfinite(r["test_ppl"]) for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
