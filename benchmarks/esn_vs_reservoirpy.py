"""Echo state network on Mackey-Glass: rnnlab vs ReservoirPy, side by side in one run.

The setting is ReservoirPy's README example: 2000 samples of Mackey-Glass (tau=17), one-step
forecasting, the last 20% for testing, 100 units, spectral radius 1.25, leak rate 0.3, ridge 1e-5,
washout (warmup) 100; the test run continues from the state after training. Both libraries run on
the same two series (ReservoirPy's generator, exactly the README's, and rnnlab's) with the same
reservoir seeds; the table gives the mean test RMSE and the median fit time (reservoir run plus
readout solve) over the seeds, and the ratio of fit times.

    pip install "rnnlab[bench]"          # ReservoirPy
    python benchmarks/esn_vs_reservoirpy.py [--seeds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import torch

from rnnlab.data.mackey_glass import mackey_glass
from rnnlab.models.esn import EchoStateNetwork

UNITS, SPECTRAL_RADIUS, LEAK_RATE, RIDGE, WARMUP, TEST_FRACTION = 100, 1.25, 0.3, 1e-5, 100, 0.2


def split(series: np.ndarray):
    """ReservoirPy's ``to_forecasting(X, test_size=0.2)``: x = X[:-1], y = X[1:], last 20% test."""
    x, y = series[:-1].reshape(-1, 1), series[1:].reshape(-1, 1)
    test = round(len(x) * TEST_FRACTION)
    return x[:-test], x[-test:], y[:-test], y[-test:]


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


def run_rnnlab(series: np.ndarray, seed: int) -> tuple[float, float]:
    x_train, x_test, y_train, y_test = (torch.from_numpy(a) for a in split(series))
    esn = EchoStateNetwork(
        1, 1, UNITS, spectral_radius=SPECTRAL_RADIUS, leak_rate=LEAK_RATE, seed=seed
    ).double()
    start = time.perf_counter()
    state = esn.fit(x_train, y_train, washout=WARMUP, ridge=RIDGE)
    fit_time = time.perf_counter() - start
    with torch.no_grad():
        predictions, _ = esn(x_test, state)
    return rmse(predictions.numpy(), y_test.numpy()), fit_time


def run_reservoirpy(series: np.ndarray, seed: int) -> tuple[float, float]:
    from reservoirpy import ESN

    x_train, x_test, y_train, y_test = split(series)
    esn = ESN(units=UNITS, sr=SPECTRAL_RADIUS, lr=LEAK_RATE, ridge=RIDGE, seed=seed)
    start = time.perf_counter()
    esn.fit(x_train, y_train, warmup=WARMUP)
    fit_time = time.perf_counter() - start
    return rmse(esn.run(x_test), y_test), fit_time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="reservoir seeds per library")
    args = parser.parse_args()
    try:
        import reservoirpy
        from reservoirpy.datasets import mackey_glass as reservoirpy_mackey_glass
    except ImportError:
        print(
            "ReservoirPy is missing: pip install 'rnnlab[bench]' (or pip install reservoirpy)",
            file=sys.stderr,
        )
        return 2
    torch.set_num_threads(1)
    series = {
        "reservoirpy": reservoirpy_mackey_glass(2000)[:, 0],
        "rnnlab": mackey_glass(2000).numpy(),
    }
    runners = {"rnnlab": run_rnnlab, f"ReservoirPy {reservoirpy.__version__}": run_reservoirpy}
    for runner in runners.values():  # warm up imports and caches
        runner(series["rnnlab"], 0)
    print(
        f"ESN {UNITS} units, sr {SPECTRAL_RADIUS}, leak {LEAK_RATE}, ridge {RIDGE}, "
        f"warmup {WARMUP}; {args.seeds} seeds; torch threads 1"
    )
    print(f"{'series':<12} {'library':<18} {'test RMSE':>10} {'fit ms':>8} {'fit ratio':>9}")
    for series_name, values in series.items():
        reference_time = None
        for library, runner in runners.items():
            results = [runner(values, seed) for seed in range(args.seeds)]
            error = statistics.mean(r[0] for r in results)
            fit_time = statistics.median(r[1] for r in results)
            reference_time = reference_time or fit_time
            print(
                f"{series_name:<12} {library:<18} {error:>10.5f} {fit_time * 1e3:>8.1f} "
                f"{fit_time / reference_time:>9.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
