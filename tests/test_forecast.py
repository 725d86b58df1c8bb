"""Forecasting: CSV errors, metrics and baselines against hand computations, the forecaster's
decoders, and a tiny ``rnnlab train --task forecast`` + ``rnnlab predict`` through the CLI."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pytest
import torch

from rnnlab import tasks
from rnnlab.cli.main import main
from rnnlab.data.series import load_series, read_csv, split_points
from rnnlab.errors import DataError
from rnnlab.models import forecast_baselines as baselines
from rnnlab.models import forecast_metrics as metrics
from rnnlab.models.forecaster import Forecaster
from rnnlab.training.config import make_config
from rnnlab.training.trainer import Trainer


def seasonal_series(steps: int = 240, period: int = 12, seed: int = 0) -> np.ndarray:
    """A trend, a season and a little noise."""
    t = np.arange(steps)
    noise = np.random.default_rng(seed).normal(0, 0.1, steps)
    return 50 + 0.05 * t + 3 * np.sin(2 * np.pi * t / period) + noise


def write_csv(path, rows, header=("date", "demand")):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def series_csv(tmp_path):
    values = seasonal_series()
    rows = [
        (f"{2000 + i // 12}-{i % 12 + 1:02d}-01", f"{v:.4f}", i % 12) for i, v in enumerate(values)
    ]
    return write_csv(tmp_path / "series.csv", rows, ("date", "demand", "month"))


# ----------------------------------------------------------------------------- data
def test_read_csv_columns_and_covariates(series_csv):
    series = read_csv(series_csv, covariate_columns=["month"], period=12)
    assert series.names == ["demand"] and series.covariate_names == ["month"]
    assert series.values.shape == (240, 1) and series.covariates.shape == (240, 1)
    assert series.times[0] == "2000-01-01" and series.covariates[13, 0] == 1
    assert read_csv(series_csv).names == ["demand", "month"]  # every other column by default


@pytest.mark.parametrize(
    "rows, message",
    [
        ([(1, 1.0), (2, ""), (3, 2.0)], "missing value in column 'demand' at row 3"),
        ([(1, 1.0), (2, "n/a"), (3, 2.0)], "non-numeric value 'n/a' in column 'demand' at row 3"),
        ([(1, 1.0), (3, 2.0), (2, 2.0)], "time '2' at row 4 comes before the row above it"),
        ([("2020-01-01", 1.0), ("2020-01-01", 2.0)], "duplicated time '2020-01-01' at row 3"),
        ([("yesterday", 1.0)], "neither a number nor an ISO date"),
    ],
)
def test_bad_csv_is_one_data_error(tmp_path, rows, message):
    path = write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(DataError, match=message):
        read_csv(path)


def test_bad_csvs_through_the_cli_are_one_line(tmp_path, capsys):
    short = write_csv(tmp_path / "short.csv", [(i, float(i)) for i in range(20)])
    unsorted = write_csv(tmp_path / "unsorted.csv", [(i % 7, float(i)) for i in range(20)])
    for path, message in (
        (short, "shorter than context + horizon = 54"),
        (unsorted, "comes before the row above it; sort the rows by time"),
        (tmp_path / "none.csv", "no such series file"),
    ):
        code = main(
            [
                "train",
                "--task",
                "forecast",
                "--data",
                str(path),
                "--horizon",
                "6",
                "--out",
                str(tmp_path / "run"),
            ]
        )
        err = capsys.readouterr().err
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / "run").exists()


def test_named_series_ship_with_statsmodels():
    pytest.importorskip("statsmodels")
    co2 = load_series("co2")
    assert co2.period == 52 and len(co2) == 2284 and np.isfinite(co2.values).all()  # gaps filled
    elnino = load_series("elnino")
    assert elnino.period == 12 and len(elnino) == 61 * 12 and elnino.times[13] == "1951-02"
    sunspots = load_series("sunspots", period=10)
    assert sunspots.period == 10 and len(sunspots) == 309 and sunspots.times[0] == "1700"


def test_split_points_in_time_order():
    assert split_points(200, "70/15/15") == (140, 170)
    with pytest.raises(Exception, match="three train/valid/test percentages"):
        split_points(200, "70/30")


# ----------------------------------------------------------------------------- metrics
def test_metrics_against_hand_computations():
    truth = np.array([1.0, 2.0, 4.0]).reshape(1, 3, 1)
    forecast = np.array([2.0, 2.0, 1.0]).reshape(1, 3, 1)
    assert metrics.mae(forecast, truth) == pytest.approx(4 / 3)
    assert metrics.rmse(forecast, truth) == pytest.approx(math.sqrt(10 / 3))
    train = np.array([1.0, 3.0, 2.0, 6.0]).reshape(4, 1)  # |2-1| + |6-3| over 2, period 2
    scale = metrics.seasonal_scale(train, 2)
    assert scale[0] == 2.0
    assert metrics.mase(forecast, truth, scale) == pytest.approx(2 / 3)
    lower, upper = forecast - 1, forecast + 1
    assert metrics.coverage(lower, upper, truth) == pytest.approx(2 / 3)
    # pinball at 0.1 and 0.9 of a forecast 1 below and 1 above a truth of 0
    q = np.array([-1.0, 1.0]).reshape(1, 1, 1, 2)
    zero = np.zeros((1, 1, 1))
    assert metrics.pinball(q, zero, (0.1, 0.9)) == pytest.approx((0.1 + 0.1) / 2)


def test_gaussian_crps_matches_its_integral():
    mean, std, y = np.array([0.3]), np.array([1.7]), np.array([1.1])
    grid = np.linspace(-15, 15, 200001)
    from scipy.stats import norm

    cdf = norm.cdf(grid, mean[0], std[0])
    integral = np.trapezoid((cdf - (grid >= y[0])) ** 2, grid)
    assert metrics.gaussian_crps(mean, std, y) == pytest.approx(integral, rel=1e-4)
    levels = metrics.gaussian_quantiles(np.zeros(1), np.ones(1), (0.1, 0.9))
    assert levels[0, 1] == pytest.approx(metrics.Z80) and levels[0, 0] == pytest.approx(
        -metrics.Z80
    )


# ----------------------------------------------------------------------------- baselines
def test_naive_and_seasonal_naive_by_hand():
    values = np.arange(10.0).reshape(10, 1)
    origins = np.array([4, 6])
    assert baselines.naive(values, origins, 3)[:, :, 0].tolist() == [[3, 3, 3], [5, 5, 5]]
    # period 2, origin 4: steps 4, 5, 6 take 2, 3, 2 (the last season repeated)
    assert baselines.seasonal_naive(values, origins, 3, 2)[0, :, 0].tolist() == [2, 3, 2]
    with pytest.raises(DataError, match="a season"):
        baselines.seasonal_naive(values, np.array([1]), 3, 2)


def test_holt_winters_equals_statsmodels_forecast_from_each_origin():
    holt = pytest.importorskip("statsmodels.tsa.holtwinters")
    values = seasonal_series(120).reshape(-1, 1)
    origins = np.array([100, 110])
    ours = baselines.holt_winters(values, origins, 5, 12, fit_end=96)
    fitted = holt.ExponentialSmoothing(
        values[:96, 0],
        trend="add",
        seasonal="add",
        seasonal_periods=12,
        initialization_method="estimated",
    ).fit()
    p = fitted.params
    for n, origin in enumerate(origins):
        refit = holt.ExponentialSmoothing(
            values[:origin, 0],
            trend="add",
            seasonal="add",
            seasonal_periods=12,
            initialization_method="known",
            initial_level=p["initial_level"],
            initial_trend=p["initial_trend"],
            initial_seasonal=p["initial_seasons"],
        ).fit(
            optimized=False,
            smoothing_level=p["smoothing_level"],
            smoothing_trend=p["smoothing_trend"],
            smoothing_seasonal=p["smoothing_seasonal"],
        )
        np.testing.assert_allclose(ours[n, :, 0], refit.forecast(5), rtol=1e-9)


# ----------------------------------------------------------------------------- model
def test_autoregressive_teacher_forcing_on_own_forecasts_equals_free_running():
    torch.manual_seed(0)
    model = Forecaster(
        "lstm", covariates=2, hidden_size=8, horizon=5, decoder="autoregressive", head="quantile"
    ).eval()
    inputs, future = torch.randn(7, 3, 3), torch.randn(5, 3, 2)
    free = model(inputs, future)
    assert free.shape == (5, 3, 3)
    forced = model(inputs, future, teacher=model.point(free))
    torch.testing.assert_close(forced, free)
    direct = Forecaster("rnn", covariates=2, hidden_size=8, horizon=5, head="point")
    assert direct(inputs, future).shape == (5, 3, 1)


def test_gaussian_head_std_is_positive_and_loss_is_the_nll():
    model = Forecaster("gru", covariates=0, hidden_size=4, horizon=2)
    params = torch.tensor([[[0.0, -50.0]], [[1.0, 0.0]]])
    mean, std = model.gaussian(params)
    assert (std > 0).all() and mean.tolist() == [[0.0], [1.0]]
    target = torch.tensor([[0.0], [1.0]])
    expected = (torch.log(std) + 0.5 * math.log(2 * math.pi)).mean()
    torch.testing.assert_close(model.loss(params, target), expected)


# ----------------------------------------------------------------------------- task and CLI
TINY = {"hidden": 16, "context": 24, "horizon": 6, "eval_every": 1000, "batch_size": 32}


def test_forecast_task_learns_a_seasonal_series(series_csv, tmp_path):
    pytest.importorskip("statsmodels", reason="the Holt-Winters baseline: rnnlab[forecast]")
    config = make_config(
        "forecast",
        data=str(series_csv),
        value_columns="demand",
        period=12,
        max_steps=100,
        lr=1e-2,
        **TINY,
    )
    task = tasks.create("forecast", config)
    trainer = Trainer(task, config, tmp_path / "run", out=io.StringIO(), progress=False)
    trainer.fit()
    result = task.evaluate(trainer.model.eval(), "test")
    assert result["mase"] < result["naive_mase"]
    assert result["mase"] < 1.0  # better than the in-sample seasonal naive error
    assert 0 <= result["coverage80"] <= 1 and result["crps"] > 0
    assert {"snaive_mase", "hw_mase", "hw_mae", "naive_rmse"} <= set(result)


def test_train_and_predict_through_the_cli(series_csv, tmp_path, capsys):
    run = tmp_path / "run"
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]
    args = [
        "train",
        "--task",
        "forecast",
        "--data",
        str(series_csv),
        "--covariates",
        "month",
        "--value-columns",
        "demand",
        "--period",
        "12",
        "--decoder",
        "autoregressive",
        "--head",
        "quantile",
        "--max-steps",
        "4",
        "--out",
        str(run),
        *flags,
    ]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["predict", "--run", str(run), "--data", str(series_csv)]) == 0
    assert "forecast.csv" in capsys.readouterr().out
    with open(run / "forecast.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6 and rows[0]["time"] == "2019-07-01" and rows[-1]["truth"]
    assert float(rows[0]["lower80"]) <= float(rows[0]["forecast"]) <= float(rows[0]["upper80"])
    assert (run / "forecast.png").stat().st_size > 5000
    code = main(["predict", "--run", str(run), "--data", str(series_csv), "--future"])
    assert code == 2 and "needs the future covariates" in capsys.readouterr().err
    assert main(["predict", "--run", str(run), "hello"]) == 2


def test_bench_row_prints_rnnlab_beside_the_baselines():
    pytest.importorskip("statsmodels")
    from rnnlab.bench.runner import format_row, run_benchmark

    result = run_benchmark("forecast-elnino", {}, quick=True)
    row = format_row(result)
    assert row.startswith("| forecast-elnino | gru |") and "MASE " in row
    for label in ("seasonal naive MASE 0.8047", "Holt-Winters MASE", "80% interval coverage"):
        assert label in row
