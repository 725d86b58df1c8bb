"""Forecast errors: MAE, RMSE, MASE, interval coverage, pinball loss and Gaussian CRPS.

Every function takes numpy arrays on the series' own scale. ``truth`` and point forecasts are
``[N, H, S]`` (``N`` forecast origins, ``H`` steps ahead, ``S`` series); quantile forecasts add a
last axis ``[N, H, S, Q]``.

MASE (Hyndman and Koehler 2006) divides each series' MAE by the in-sample MAE of the seasonal
naive forecast on the training part, ``mean |y_t - y_{t-m}|``, and averages over the series: below
1 is better than the seasonal naive forecast was in sample.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr, ndtri

from rnnlab.errors import DataError

Z80 = 1.2815515655446004
"""The 0.9 quantile of the standard normal: mean +- Z80 sigma is the central 80% interval."""


def mae(forecast: np.ndarray, truth: np.ndarray) -> float:
    return float(np.abs(forecast - truth).mean())


def rmse(forecast: np.ndarray, truth: np.ndarray) -> float:
    return float(np.sqrt(((forecast - truth) ** 2).mean()))


def seasonal_scale(train: np.ndarray, period: int) -> np.ndarray:
    """``[S]``: the in-sample seasonal naive MAE of each series of ``train [T, S]`` (period 1:
    the naive forecast's)."""
    if len(train) <= period:
        raise DataError(
            f"the training part ({len(train)} steps) is not longer than the seasonal period "
            f"{period}; MASE needs at least one season of history"
        )
    scale = np.abs(train[period:] - train[:-period]).mean(axis=0)
    if np.any(scale == 0):
        raise DataError("a series is constant over a season in training; MASE has no scale")
    return scale


def mase(forecast: np.ndarray, truth: np.ndarray, scale: np.ndarray) -> float:
    """Mean over series of MAE / ``scale`` (``[S]``, from :func:`seasonal_scale`)."""
    per_series = np.abs(forecast - truth).reshape(-1, truth.shape[-1]).mean(axis=0)
    return float((per_series / scale).mean())


def coverage(lower: np.ndarray, upper: np.ndarray, truth: np.ndarray) -> float:
    """Share of ``truth`` inside ``[lower, upper]``."""
    return float(((truth >= lower) & (truth <= upper)).mean())


def pinball(quantiles: np.ndarray, truth: np.ndarray, levels: tuple[float, ...]) -> float:
    """Mean quantile (pinball) loss of ``quantiles [..., Q]`` at ``levels`` (``Q`` values in
    ``(0, 1)``): ``max(q (y - f), (q - 1) (y - f))``."""
    q = np.asarray(levels, dtype=np.float64)
    error = truth[..., None] - quantiles
    return float(np.maximum(q * error, (q - 1.0) * error).mean())


def gaussian_crps(mean: np.ndarray, std: np.ndarray, truth: np.ndarray) -> float:
    """Mean continuous ranked probability score of the normal forecasts ``N(mean, std^2)``
    (Gneiting et al. 2005, closed form)."""
    z = (truth - mean) / std
    pdf = np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
    crps = std * (z * (2 * ndtr(z) - 1) + 2 * pdf - 1 / math.sqrt(math.pi))
    return float(crps.mean())


def gaussian_quantiles(mean: np.ndarray, std: np.ndarray, levels: tuple[float, ...]) -> np.ndarray:
    """``[..., Q]``: the quantiles at ``levels`` of ``N(mean, std^2)``."""
    z = ndtri(np.asarray(levels, dtype=np.float64))
    return mean[..., None] + std[..., None] * z
