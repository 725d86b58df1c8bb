"""Forecast the next ``--horizon`` steps of a time series from a ``--context`` window.

The data (:mod:`rnnlab.data.series`) is a CSV file or a named series (``co2``, ``elnino``,
``sunspots``), split in time order by ``--splits`` (70/15/15). A window starts at an origin
``o``: the model (:class:`~rnnlab.models.forecaster.Forecaster`) reads ``y[o-C:o]`` and forecasts
``y[o:o+H]``. Training uses every origin whose forecast lies in the training part; validation and
test use every ``--stride``-th origin whose forecast lies in their part (rolling origin; the
context may reach back into the part before). Each series is a separate example.

Scaling: each window is standardised by its own context (``(y - mean) / std`` of ``y[o-C:o]``
of that series), so series of any magnitude and trend share one model; forecasts are mapped back
before any error is computed.

================  ===========================================================
``evaluate``      on the series' own scale: ``mae``, ``rmse``, ``mase`` (MASE,
                  scaled by the in-sample seasonal naive MAE of the training
                  part, period ``--period``); for probabilistic heads
                  ``coverage80`` (of the central 80% interval) and ``pinball``
                  (mean over 0.1, 0.5, 0.9), and ``crps`` for ``gaussian``;
                  ``loss`` is the head's loss on the scaled windows. On
                  ``"test"`` also ``naive_mase``, ``snaive_mase`` and
                  ``hw_mase`` (Holt-Winters), with ``_mae`` and ``_rmse``
                  beside them, on the same origins
================  ===========================================================
"""

from __future__ import annotations

import argparse
import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from rnnlab.data.series import Series, check_length, load_series, split_points
from rnnlab.errors import ConfigError, DataError
from rnnlab.models import forecast_baselines as baselines
from rnnlab.models import forecast_metrics as metrics
from rnnlab.models.forecaster import DECODERS, HEADS, Forecaster
from rnnlab.models.sequence import cell_options
from rnnlab.tasks.base import Task, register

LEVELS = (0.1, 0.5, 0.9)
"""The quantile levels of ``pinball`` and the bounds of the 80% interval."""
EVAL_BATCH = 512


def _names(text: str | None) -> list[str]:
    return [name.strip() for name in (text or "").split(",") if name.strip()]


@dataclass
class Forecast:
    """Forecasts from ``N`` origins on the series' own scale, each ``[N, H, S]``.

    ``lower`` and ``upper`` bound the central 80% interval (``None`` for the point head).
    """

    origins: np.ndarray
    point: np.ndarray
    lower: np.ndarray | None
    upper: np.ndarray | None
    quantiles: np.ndarray | None
    """``[N, H, S, 3]``: the forecast at :data:`LEVELS` (``None`` for the point head)."""
    std: np.ndarray | None
    """The Gaussian head's standard deviation (``None`` for the other heads)."""
    loss: float


@register("forecast")
class ForecastTask(Task):
    """A :class:`Forecaster` over ``--cell`` on a series from a CSV file or statsmodels."""

    metric, metric_mode = "mase", "min"
    defaults: ClassVar[dict[str, Any]] = {
        "hidden": 64,
        "batch_size": 64,
        "lr": 3e-3,
        "clip_norm": 1.0,
        "eval_every": 200,
        "cell": "gru",
    }
    unit = "windows"

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
        parser.add_argument(
            "--data", default="co2", help="forecast: a CSV file, or co2, elnino, sunspots (co2)"
        )
        parser.add_argument(
            "--horizon", type=int, default=12, help="forecast: steps to forecast (12)"
        )
        parser.add_argument(
            "--context", type=int, default=48, help="forecast: steps the model reads (48)"
        )
        parser.add_argument(
            "--splits", default="70/15/15", help="forecast: train/valid/test percentages in time"
        )
        parser.add_argument(
            "--time-column", help="forecast: the CSV's time column (the first column)"
        )
        parser.add_argument(
            "--value-columns",
            help="forecast: comma-separated series to forecast (every other column)",
        )
        parser.add_argument(
            "--covariates", help="forecast: comma-separated CSV columns known in advance (none)"
        )
        parser.add_argument(
            "--period",
            type=int,
            help="forecast: seasonal period in steps for seasonal naive, Holt-Winters and MASE "
            "(co2 52, elnino 12, sunspots 11; CSV 1)",
        )
        parser.add_argument(
            "--head", choices=HEADS, default="gaussian", help="forecast: output head (gaussian)"
        )
        parser.add_argument(
            "--decoder", choices=DECODERS, default="direct", help="forecast: decoding (direct)"
        )
        parser.add_argument(
            "--quantiles",
            default="0.1,0.5,0.9",
            help="forecast: levels of --head quantile (0.1,0.5,0.9)",
        )
        parser.add_argument(
            "--stride", type=int, default=1, help="forecast: steps between test origins (1)"
        )

    def __init__(self, config: argparse.Namespace, run_dir: Path | None = None):
        super().__init__(config, run_dir)
        c = config
        for name in ("horizon", "context", "stride"):
            if not isinstance(getattr(c, name), int) or getattr(c, name) < 1:
                raise ConfigError(f"--{name} must be a positive integer, got {getattr(c, name)!r}")
        if c.period is not None and c.period < 1:
            raise ConfigError(f"--period must be a positive integer, got {c.period}")
        try:
            self.quantiles = tuple(float(q) for q in _names(c.quantiles))
        except ValueError:
            raise ConfigError(
                f"--quantiles must be numbers like 0.1,0.5,0.9, got {c.quantiles!r}"
            ) from None
        if c.head == "quantile" and not all(q in self.quantiles for q in (0.1, 0.9)):
            raise ConfigError("--head quantile needs the levels 0.1 and 0.9 (the 80% interval)")
        self.covariate_names = _names(c.covariates)
        split_points(100, c.splits)  # a bad --splits is an error before any data is read
        if run_dir is None:
            self.series  # noqa: B018  (a new run reads and checks its data first)

    @functools.cached_property
    def series(self) -> Series:
        c = self.config
        series = load_series(
            c.data, c.time_column, _names(c.value_columns) or None, self.covariate_names, c.period
        )
        self.valid_start, self.test_start = split_points(len(series), c.splits)
        check_length(series, c.context, c.horizon, self.valid_start)
        if self.test_start + c.horizon > len(series):
            raise DataError(
                f"the test part ({len(series) - self.test_start} steps) is shorter than the "
                f"horizon {c.horizon}; give it more (--splits) or lower --horizon"
            )
        self.scale = metrics.seasonal_scale(series.values[: self.valid_start], series.period)
        return series

    def describe(self) -> str:
        s, c = self.series, self.config
        return (
            f"{c.data}: {len(s)} steps x {len(s.names)} series, {len(s.covariate_names)} "
            f"covariates, period {s.period}; context {c.context}, horizon {c.horizon}, "
            f"{c.head} head, {c.decoder} decoder"
        )

    def build_model(self) -> nn.Module:
        c = self.config
        return Forecaster(
            c.cell,
            len(self.covariate_names),
            c.hidden,
            c.horizon,
            num_layers=c.layers,
            head=c.head,
            decoder=c.decoder,
            quantiles=self.quantiles,
            dropout=c.dropout,
            cell_options={
                **cell_options(c.cell, getattr(c, "forget_bias", None)),
                **(c.cell_options or {}),
            },
        )

    # ------------------------------------------------------------------------- windows
    def origins(self, split: str) -> np.ndarray:
        """The forecast origins of ``"train"``, ``"valid"`` or ``"test"``."""
        series, c = self.series, self.config
        start, end = {
            "train": (c.context, self.valid_start),
            "valid": (max(self.valid_start, c.context), self.test_start),
            "test": (self.test_start, len(series)),
        }[split]
        stride = 1 if split == "train" else c.stride
        origins = np.arange(start, end - c.horizon + 1, stride)
        if len(origins) == 0:
            raise DataError(
                f"the {split} part holds no window of context {c.context} and horizon "
                f"{c.horizon}; change --splits, --context or --horizon"
            )
        return origins

    def windows(self, values: np.ndarray, covariates: np.ndarray, origins: np.ndarray):
        """Scaled model inputs of every (origin, series) pair, origin-major: ``(inputs
        [C, N*S, 1+K], future [H, N*S, K], target [H, N*S], loc [N*S], scale [N*S])``; the target
        is all zeros where it lies past the end of ``values``."""
        c = self.config
        steps = len(values)
        context = origins[:, None] + np.arange(-c.context, 0)[None, :]  # [N, C]
        ahead = origins[:, None] + np.arange(c.horizon)[None, :]  # [N, H]
        past = values[context]  # [N, C, S]
        loc = past.mean(axis=1)  # [N, S]
        scale = np.maximum(past.std(axis=1), 1e-3 * np.maximum(np.abs(loc), 1.0))
        padded = np.concatenate([values, np.zeros((c.horizon, values.shape[1]))])
        target = (padded[ahead] - loc[:, None, :]) / scale[:, None, :]  # [N, H, S]
        target[ahead >= steps] = 0.0
        covariates = np.concatenate([covariates, np.zeros((c.horizon, covariates.shape[1]))])
        n, s, k = len(origins), values.shape[1], covariates.shape[1]
        x = (past - loc[:, None, :]) / scale[:, None, :]  # [N, C, S]
        shifted = np.broadcast_to(covariates[context + 1][:, :, None, :], (n, c.context, s, k))
        inputs = np.concatenate([x[..., None], shifted], axis=3)  # [N, C, S, 1+K]
        future = np.broadcast_to(covariates[ahead][:, :, None, :], (n, c.horizon, s, k))

        def steps_first(a: np.ndarray) -> Tensor:  # [N, T, S, ...] -> [T, N*S, ...]
            a = np.moveaxis(a, 1, 0)
            return torch.from_numpy(np.array(a.reshape(a.shape[0], n * s, *a.shape[3:])))

        return (
            steps_first(inputs).float(),
            steps_first(future).float(),
            steps_first(target).float(),
            loc.reshape(-1),
            scale.reshape(-1),
        )

    @functools.cached_property
    def _train_windows(self) -> tuple[Tensor, Tensor, Tensor]:
        s = self.series
        inputs, future, target, _, _ = self.windows(s.values, s.covariates, self.origins("train"))
        return inputs, future, target

    def steps_per_epoch(self) -> int:
        return math.ceil(self._train_windows[0].shape[1] / self.config.batch_size)

    def train_batches(self, epoch: int, start: int = 0) -> Iterator[tuple[Tensor, ...]]:
        inputs, future, target = self._train_windows
        generator = torch.Generator().manual_seed(self.config.seed * 1_000_003 + epoch)
        order = torch.randperm(inputs.shape[1], generator=generator)
        size = self.config.batch_size
        for first in range(start * size, len(order), size):
            index = order[first : first + size]
            yield inputs[:, index], future[:, index], target[:, index]

    def loss(self, model: nn.Module, batch: tuple[Tensor, ...], state: Any):
        inputs, future, target = batch
        teacher = target if model.decoder == "autoregressive" else None
        loss = model.loss(model(inputs, future, teacher), target)
        return loss, None, {"count": inputs.shape[1]}

    # ------------------------------------------------------------------------- forecasts
    @torch.no_grad()
    def forecast(
        self, model: Forecaster, values: np.ndarray, covariates: np.ndarray, origins: np.ndarray
    ) -> Forecast:
        """Free-running forecasts of ``model`` from ``origins`` of ``values [T, S]``."""
        inputs, future, target, loc, scale = self.windows(values, covariates, origins)
        device = next(model.parameters()).device
        params = torch.cat(
            [
                model(
                    inputs[:, i : i + EVAL_BATCH].to(device),
                    future[:, i : i + EVAL_BATCH].to(device),
                )
                for i in range(0, inputs.shape[1], EVAL_BATCH)
            ],
            dim=1,
        ).cpu()
        loss = float(model.loss(params, target))
        shape = (len(origins), values.shape[1])

        def unscale(
            scaled: Tensor, shift: bool = True
        ) -> np.ndarray:  # [H, N*S, ...] -> [N, H, S, ...]
            a = scaled.double().numpy()
            a = a * scale.reshape(1, -1, *([1] * (a.ndim - 2)))
            if shift:
                a = a + loc.reshape(1, -1, *([1] * (a.ndim - 2)))
            a = a.reshape(a.shape[0], shape[0], shape[1], *a.shape[2:])  # [H, N, S, ...]
            return np.moveaxis(a, 0, 1)

        point = unscale(model.point(params))
        quantiles = std = None
        if model.head == "gaussian":
            mean, sd = model.gaussian(params)
            std = unscale(sd, shift=False)
            quantiles = metrics.gaussian_quantiles(unscale(mean), std, LEVELS)
        elif model.head == "quantile":
            ordered = unscale(params.sort(dim=-1).values)  # no crossing quantiles
            quantiles = ordered[..., [self.quantiles.index(q) for q in (0.1, 0.5, 0.9)]]
        lower = upper = None
        if quantiles is not None:
            lower, upper = quantiles[..., 0], quantiles[..., 2]
        return Forecast(origins, point, lower, upper, quantiles, std, loss)

    def forecast_end(
        self, model: Forecaster, data: str | None = None, future: bool = False
    ) -> tuple[Series, int, Forecast]:
        """``(series, origin, forecast)``: the forecast of the last ``--horizon`` steps of
        ``data`` (a CSV file or series name with the run's columns; default the run's series),
        or with ``future`` of the steps after its end."""
        c = self.config
        series = self.series
        if data is not None:
            series = load_series(
                data, c.time_column, _names(c.value_columns) or None, self.covariate_names, c.period
            )
        if future and self.covariate_names:
            raise ConfigError(
                "a forecast past the end needs the future covariates; drop --future, or add the "
                "future rows to the file and forecast them as its last --horizon steps"
            )
        origin = len(series) if future else len(series) - c.horizon
        if origin < c.context:
            raise DataError(
                f"the series has {len(series)} steps, fewer than context "
                f"{c.context}{'' if future else f' + horizon {c.horizon}'}"
            )
        return (
            series,
            origin,
            self.forecast(model, series.values, series.covariates, np.array([origin])),
        )

    def truth(self, origins: np.ndarray) -> np.ndarray:
        """``[N, H, S]``: the true values after each origin."""
        ahead = origins[:, None] + np.arange(self.config.horizon)[None, :]
        return self.series.values[ahead]

    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        if split not in ("valid", "test"):
            raise ConfigError(f"forecast evaluates valid or test, not {split!r}")
        s = self.series
        origins = self.origins(split)
        result = self.forecast(model, s.values, s.covariates, origins)
        truth = self.truth(origins)
        out = {"loss": result.loss, **self._errors(result.point, truth)}
        if result.quantiles is not None:
            out["coverage80"] = metrics.coverage(result.lower, result.upper, truth)
            out["pinball"] = metrics.pinball(result.quantiles, truth, LEVELS)
        if result.std is not None:
            mean = result.quantiles[..., 1]
            out["crps"] = metrics.gaussian_crps(mean, result.std, truth)
        if split == "test":
            for name, forecast in self._baselines().items():
                out.update({f"{name}_{k}": v for k, v in self._errors(forecast, truth).items()})
        return out

    def _errors(self, forecast: np.ndarray, truth: np.ndarray) -> dict[str, float]:
        return {
            "mae": metrics.mae(forecast, truth),
            "rmse": metrics.rmse(forecast, truth),
            "mase": metrics.mase(forecast, truth, self.scale),
        }

    @functools.cache  # noqa: B019  (one task per run; the baselines do not change)
    def _baselines(self) -> dict[str, np.ndarray]:
        """Naive, seasonal naive and Holt-Winters forecasts from the test origins."""
        s, h = self.series, self.config.horizon
        origins = self.origins("test")
        return {
            "naive": baselines.naive(s.values, origins, h),
            "snaive": baselines.seasonal_naive(s.values, origins, h, s.period),
            "hw": baselines.holt_winters(s.values, origins, h, s.period, self.test_start),
        }
