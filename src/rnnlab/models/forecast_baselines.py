"""The forecasts a forecaster would otherwise use: naive, seasonal naive and Holt-Winters.

Each forecasts ``horizon`` steps from every origin ``t`` in ``origins`` using only the history
``values[:t]``: the result is ``[N, H, S]`` for ``values [T, S]`` and ``N`` origins.

- naive: the last value, ``y_{t-1}``, at every step ahead.
- seasonal naive: the value one season earlier, ``y_{t+h-m(floor(h/m)+1)}`` for ``h = 0..H-1``.
- Holt-Winters (statsmodels' ``ExponentialSmoothing``): additive trend and, for ``m > 1``,
  additive seasonality. Its smoothing parameters and initial states are fitted once on
  ``values[:fit_end]`` (the data before the test part); the fitted recursions then run over the
  whole series, so each origin's forecast uses the states after ``y_{t-1}`` (the forecast a model
  refitted at each origin with fixed parameters would give).
"""

from __future__ import annotations

import warnings

import numpy as np

from rnnlab.errors import DataError, MissingExtra


def naive(values: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    return np.repeat(values[origins - 1][:, None, :], horizon, axis=1)


def seasonal_naive(
    values: np.ndarray, origins: np.ndarray, horizon: int, period: int
) -> np.ndarray:
    h = np.arange(horizon)
    index = origins[:, None] + h[None, :] - period * (h // period + 1)[None, :]
    if index.min() < 0:
        raise DataError(f"seasonal naive needs a season ({period} steps) of history at each origin")
    return values[index]


def _exponential_smoothing():
    try:
        from statsmodels.tsa.holtwinters import ExponentialSmoothing
    except ImportError:
        raise MissingExtra(
            "the Holt-Winters baseline needs statsmodels: pip install 'rnnlab[forecast]'"
        ) from None
    return ExponentialSmoothing


def holt_winters(
    values: np.ndarray, origins: np.ndarray, horizon: int, period: int, fit_end: int
) -> np.ndarray:
    """Holt-Winters forecasts (see the module docstring); every origin needs a season of
    history."""
    if origins.min() < period:
        raise DataError(f"Holt-Winters needs a season ({period} steps) of history at each origin")
    smoothing = _exponential_smoothing()
    seasonal = "add" if period > 1 else None
    shape = {"trend": "add", "seasonal": seasonal, "seasonal_periods": period if seasonal else None}
    h = np.arange(1, horizon + 1)
    last = origins - 1  # the index of the last observation before each origin
    forecasts = np.empty((len(origins), horizon, values.shape[1]))
    with warnings.catch_warnings():  # convergence chatter of the optimizer
        warnings.simplefilter("ignore")
        for s in range(values.shape[1]):
            fitted = smoothing(
                values[:fit_end, s], initialization_method="estimated", **shape
            ).fit()
            p = fitted.params
            known = {"initial_level": p["initial_level"], "initial_trend": p["initial_trend"]}
            if seasonal:
                known["initial_seasonal"] = p["initial_seasons"]
            fixed = {
                "smoothing_level": p["smoothing_level"],
                "smoothing_trend": p["smoothing_trend"],
            }
            if seasonal:
                fixed["smoothing_seasonal"] = p["smoothing_seasonal"]
            run = smoothing(
                values[: origins.max(), s], initialization_method="known", **known, **shape
            ).fit(optimized=False, **fixed)
            level, trend = np.asarray(run.level), np.asarray(run.trend)
            forecast = level[last][:, None] + h[None, :] * trend[last][:, None]
            if seasonal:
                season = np.asarray(run.season)
                forecast += season[last[:, None] - period + (h[None, :] - 1) % period + 1]
            forecasts[:, :, s] = forecast
    return forecasts
