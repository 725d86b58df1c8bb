"""``rnnlab plot``: draw a run's ``metrics.jsonl`` to one PNG.

Example::

    rnnlab plot --run runs/20261122-031500            # writes runs/20261122-031500/metrics.png

Panels (each only when the run logged it): training and validation loss; validation bpc (char
LM) or perplexity (``exp(loss)``, other tasks); learning rate; clip rate (per log window);
gradient norms (global and per layer, log scale).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from rnnlab.errors import CheckpointError
from rnnlab.training import checkpoint, metrics_log


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("plot", help="draw a run's training curves to a PNG")
    parser.add_argument("--run", required=True, metavar="DIR", help="run directory")
    parser.add_argument("--out", metavar="PNG", help="image to write (DIR/metrics.png)")
    parser.set_defaults(func=run)


def read_metrics(run_dir: Path) -> list[dict]:
    """The records of ``run_dir``'s log (``metrics_log.read_records``: a non-finite value is
    ``nan``, a line cut short by a killed process is left out)."""
    path = run_dir / checkpoint.METRICS
    if not path.is_file():
        raise CheckpointError(f"{run_dir} has no {checkpoint.METRICS}; pass a run directory")
    records = metrics_log.read_records(path)
    if not records:
        raise CheckpointError(f"{path} is empty; train for at least --log-every steps first")
    return records


def _series(records: list[dict], split: str, key: str) -> tuple[list[int], list[float]]:
    """``(steps, values)`` of ``key`` in ``split``'s records; a resumed run's later lines
    replace the earlier ones of the same step."""
    by_step = {r["step"]: _number(r[key]) for r in records if r.get("split") == split and key in r}
    steps = sorted(by_step)
    return steps, [by_step[s] for s in steps]


def _number(value) -> float:
    """A logged value as a float (``nan``, a gap in the curve, when it is not a number)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    return float(value)


def plot_metrics(records: list[dict], out: Path, title: str) -> list[str]:
    """Draw the panels to ``out``; return their titles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = []

    def loss(ax):
        ax.plot(*_series(records, "train", "loss"), label="train")
        ax.plot(*_series(records, "valid", "loss"), "o-", label="valid")
        ax.set_ylabel("loss (nats)")
        ax.legend()

    panels.append(("loss", loss))
    if _series(records, "valid", "bpc")[0]:
        panels.append(("valid bpc", lambda ax: ax.plot(*_series(records, "valid", "bpc"), "o-")))
    elif _series(records, "valid", "loss")[0]:

        def perplexity(ax):
            steps, values = _series(records, "valid", "loss")
            ax.plot(steps, [math.exp(min(v, 50.0)) for v in values], "o-")

        panels.append(("valid perplexity", perplexity))
    if _series(records, "train", "lr")[0]:
        panels.append(("learning rate", lambda ax: ax.plot(*_series(records, "train", "lr"))))
    if _series(records, "train", "clipped")[0]:

        def clip_rate(ax):
            steps, values = _series(records, "train", "clipped")
            ax.plot(steps, [100 * v for v in values])
            ax.set_ylabel("% of steps clipped")

        panels.append(("clip rate", clip_rate))
    norm_keys = sorted(
        {k for r in records for k in r if k == "grad_norm" or k.startswith("grad_norm/")}
    )
    if norm_keys:

        def norms(ax):
            for key in norm_keys:
                ax.plot(*_series(records, "train", key), label=key.replace("grad_norm/", ""))
            ax.set_yscale("log")
            ax.legend(fontsize="small")

        panels.append(("gradient norms", norms))

    columns = 2
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(11, 3.2 * rows), squeeze=False)
    for ax, (name, draw) in zip(axes.flat, panels, strict=False):
        draw(ax)
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return [name for name, _ in panels]


def run(args: argparse.Namespace) -> int:
    run_dir = Path(args.run)
    out = Path(args.out) if args.out else run_dir / "metrics.png"
    names = plot_metrics(read_metrics(run_dir), out, str(run_dir))
    print(f"wrote {out}: {', '.join(names)}")
    return 0
