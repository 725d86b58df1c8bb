"""``rnnlab predict``: run a trained model on inputs given on the command line.

What an input is depends on the run's task (its ``predict``): a surname for
``names-classify`` (prints the three likeliest languages), a sentence for ``sst`` (the
sentiment) and ``translate`` (the German translation), a language for ``names-generate``
(three generated surnames).

A ``forecast`` run takes a series instead (``--data``: a CSV file with the run's columns or a
series name; default the run's own): it forecasts the file's last ``--horizon`` steps (or with
``--future`` the steps after its end) and writes ``forecast.csv`` (series, step, time, forecast,
the 80% interval, truth) and ``forecast.png`` (history, truth, forecast and interval) into
``--out`` (the run directory).

Examples::

    rnnlab predict --run runs/names Nguyen Schmidt "O'Neill"
    rnnlab predict --run runs/mt --beam 5 "a man is riding a bike."
    rnnlab predict --run runs/co2 --data series.csv --out forecasts
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import torch

from rnnlab.errors import ConfigError
from rnnlab.tasks.base import Task
from rnnlab.tasks.forecast import ForecastTask
from rnnlab.training.load import load_run


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="classify, tag, translate or forecast with a trained run",
        description="Run a trained model (its best checkpoint) on the given inputs, one output "
        "line per input; a forecast run forecasts a series (--data) into a CSV and a PNG.",
    )
    parser.add_argument("--run", required=True, metavar="DIR", help="the run directory")
    parser.add_argument("--checkpoint", choices=("best", "last"), help="which checkpoint (best)")
    parser.add_argument("--device", help="cpu, cuda, ... (the run's device)")
    parser.add_argument("--beam", type=int, help="beam size for decoding tasks (the run's)")
    parser.add_argument(
        "--data", help="forecast runs: a CSV file or series name to forecast (the run's)"
    )
    parser.add_argument(
        "--future",
        action="store_true",
        help="forecast runs: forecast the steps after the series' end (default: its last "
        "--horizon steps, beside the truth)",
    )
    parser.add_argument(
        "--out", metavar="DIR", help="forecast runs: folder for forecast.csv and .png (--run)"
    )
    parser.add_argument("inputs", nargs="*", metavar="TEXT", help="inputs to the model")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    overrides = {"beam": args.beam} if args.beam is not None else {}
    task, model, _ = load_run(args.run, args.checkpoint, args.device, **overrides)
    if isinstance(task, ForecastTask):
        if args.inputs:
            raise ConfigError("a forecast run takes a series (--data FILE), not text inputs")
        return _forecast(task, model, args)
    if args.data is not None or args.future or args.out is not None:
        raise ConfigError(f"--data, --future and --out are for forecast runs, not {task.name!r}")
    if type(task).predict is Task.predict:
        raise ConfigError(f"task {task.name!r} has no predict; use `rnnlab sample` instead")
    if not args.inputs:
        raise ConfigError("give the inputs to predict: rnnlab predict --run DIR TEXT ...")
    with torch.no_grad():
        for line in task.predict(model, list(args.inputs)):
            print(line)
    return 0


def _forecast(task: ForecastTask, model, args: argparse.Namespace) -> int:
    series, origin, forecast = task.forecast_end(model, args.data, args.future)
    out = Path(args.out or args.run)
    out.mkdir(parents=True, exist_ok=True)
    horizon = forecast.point.shape[1]
    steps = origin + np.arange(horizon)
    known = steps < len(series)
    times = [
        series.times[t] if ok else f"{series.times[-1]}+{t - len(series) + 1}"
        for t, ok in zip(steps, known)
    ]
    with open(out / "forecast.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["series", "step", "time", "forecast", "lower80", "upper80", "truth"])
        for s, name in enumerate(series.names):
            for h in range(horizon):
                bounds = ("", "")
                if forecast.lower is not None:
                    bounds = (f"{forecast.lower[0, h, s]:.6g}", f"{forecast.upper[0, h, s]:.6g}")
                truth = f"{series.values[steps[h], s]:.6g}" if known[h] else ""
                writer.writerow(
                    [name, h + 1, times[h], f"{forecast.point[0, h, s]:.6g}", *bounds, truth]
                )
    _plot(series, origin, forecast, out / "forecast.png", task.config.context)
    what = "the steps after the end" if args.future else f"the last {horizon} steps"
    print(
        f"forecast of {what} of {len(series.names)} series: {out / 'forecast.csv'}, "
        f"{out / 'forecast.png'}"
    )
    return 0


def _plot(series, origin: int, forecast, path: Path, context: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    horizon = forecast.point.shape[1]
    count = len(series.names)
    figure, axes = plt.subplots(count, 1, figsize=(9, 3 * count), squeeze=False)
    first = max(0, origin - max(context, 3 * horizon))
    history = np.arange(first, origin)
    ahead = origin + np.arange(horizon)
    known = ahead < len(series)
    for s, axis in enumerate(axes[:, 0]):
        axis.plot(history, series.values[first:origin, s], color="black", lw=1, label="history")
        if known.any():
            axis.plot(
                ahead[known], series.values[ahead[known], s], color="tab:green", lw=1, label="truth"
            )
        axis.plot(ahead, forecast.point[0, :, s], color="tab:blue", lw=1.5, label="forecast")
        if forecast.lower is not None:
            axis.fill_between(
                ahead,
                forecast.lower[0, :, s],
                forecast.upper[0, :, s],
                color="tab:blue",
                alpha=0.2,
                label="80% interval",
            )
        axis.set_title(series.names[s], fontsize=10)
        axis.set_xlabel("step")
        axis.legend(fontsize=8, loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
