"""Time series for forecasting: a CSV file, or a series that ships with statsmodels.

A CSV has a header row, a time column (``--time-column``, default the first column), one or more
value columns (the series to forecast; default every other column) and optional covariate
columns (``--covariates``: known in advance, such as calendar features). Times are numbers or ISO
dates and must increase strictly; every value must be a finite number. A problem is one
:class:`~rnnlab.errors.DataError` line naming the row and the column.

Named series (no download; ``pip install rnnlab[forecast]``):

=============  =======================================================  ======
``co2``        Mauna Loa CO2, weekly 1958-2001, gaps filled linearly    m = 52
``elnino``     Pacific sea surface temperature, monthly 1950-2010       m = 12
``sunspots``   yearly sunspot numbers 1700-2008                         m = 11
=============  =======================================================  ======

``m`` is the seasonal period used by seasonal naive, Holt-Winters and MASE.

Shapes: ``values`` float64 ``[T, S]`` (``S`` series), ``covariates`` float64 ``[T, K]``.
"""

from __future__ import annotations

import csv
import datetime
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnlab.errors import ConfigError, DataError, MissingExtra

SERIES_PERIODS = {"co2": 52, "elnino": 12, "sunspots": 11}


@dataclass
class Series:
    """One or more aligned series on a common time axis.

    Attributes:
        times: the time stamps as written (``[T]`` strings).
        values: the series to forecast, ``[T, S]``.
        names: the ``S`` value column names.
        covariates: inputs known in advance, ``[T, K]`` (``K`` may be 0).
        covariate_names: the ``K`` covariate column names.
        period: the seasonal period in steps (1: none).
    """

    times: list[str]
    values: np.ndarray
    names: list[str]
    covariates: np.ndarray
    covariate_names: list[str]
    period: int = 1

    def __len__(self) -> int:
        return len(self.times)


def _number(text: str, row: int, column: str, path: Path) -> float:
    if text.strip() == "" or text.strip().lower() in ("na", "nan", "null", "none"):
        raise DataError(
            f"{path}: missing value in column {column!r} at row {row}; fill or drop the row"
        )
    try:
        value = float(text)
    except ValueError:
        raise DataError(
            f"{path}: non-numeric value {text!r} in column {column!r} at row {row}; "
            "values and covariates must be numbers"
        ) from None
    if not math.isfinite(value):
        raise DataError(f"{path}: non-finite value {text!r} in column {column!r} at row {row}")
    return value


def _time_key(text: str, row: int, path: Path) -> float:
    """A sortable number for a time stamp: the number itself, or seconds of an ISO date."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        stamp = datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        raise DataError(
            f"{path}: time {text!r} at row {row} is neither a number nor an ISO date "
            "(2024-01-31 or 2024-01-31T12:00)"
        ) from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=datetime.timezone.utc)
    return stamp.timestamp()


def read_csv(
    path: str | Path,
    time_column: str | None = None,
    value_columns: list[str] | None = None,
    covariate_columns: list[str] | None = None,
    period: int = 1,
) -> Series:
    """Read a series from ``path`` (header row; rows in time order; see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no such series file: {path}; give a CSV file or one of {_named()}")
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if len(rows) < 2:
        raise DataError(f"{path}: needs a header row and at least one data row")
    header = [name.strip() for name in rows[0]]
    time_column = time_column or header[0]
    covariate_columns = list(covariate_columns or [])
    for column in [time_column, *(value_columns or []), *covariate_columns]:
        if column not in header:
            raise DataError(f"{path}: no column {column!r}; the header has {', '.join(header)}")
    if value_columns is None:
        value_columns = [c for c in header if c != time_column and c not in covariate_columns]
    if not value_columns:
        raise DataError(f"{path}: no value column besides the time column {time_column!r}")
    index = {name: i for i, name in enumerate(header)}
    times, keys, values, covariates = [], [], [], []
    for row_number, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise DataError(
                f"{path}: row {row_number} has {len(row)} fields, the header {len(header)}"
            )
        stamp = row[index[time_column]].strip()
        key = _time_key(stamp, row_number, path)
        if keys and key == keys[-1]:
            raise DataError(f"{path}: duplicated time {stamp!r} at row {row_number}")
        if keys and key < keys[-1]:
            raise DataError(
                f"{path}: time {stamp!r} at row {row_number} comes before the row above it; "
                "sort the rows by time"
            )
        times.append(stamp)
        keys.append(key)
        values.append([_number(row[index[c]], row_number, c, path) for c in value_columns])
        covariates.append([_number(row[index[c]], row_number, c, path) for c in covariate_columns])
    return Series(
        times=times,
        values=np.asarray(values, dtype=np.float64).reshape(len(times), len(value_columns)),
        names=list(value_columns),
        covariates=np.asarray(covariates, dtype=np.float64).reshape(len(times), -1),
        covariate_names=covariate_columns,
        period=period,
    )


def _named() -> str:
    return ", ".join(SERIES_PERIODS)


def _statsmodels_datasets():
    try:
        import statsmodels.datasets as datasets
    except ImportError:
        raise MissingExtra(
            "the named series come from statsmodels: pip install 'rnnlab[forecast]'"
        ) from None
    return datasets


def named_series(name: str) -> Series:
    """One of the series shipped with statsmodels (see the module docstring)."""
    if name not in SERIES_PERIODS:
        raise DataError(f"unknown series {name!r}; choose a CSV file or one of {_named()}")
    datasets = _statsmodels_datasets()
    if name == "co2":
        frame = datasets.co2.load_pandas().data
        values = frame["co2"].interpolate(limit_direction="both").to_numpy()
        times = [stamp.strftime("%Y-%m-%d") for stamp in frame.index]
    elif name == "elnino":
        frame = datasets.elnino.load_pandas().data
        months = frame.columns[1:]
        values = frame[months].to_numpy().reshape(-1)
        times = [f"{int(year)}-{m:02d}" for year in frame["YEAR"] for m in range(1, 13)]
    else:
        frame = datasets.sunspots.load_pandas().data
        values = frame["SUNACTIVITY"].to_numpy()
        times = [str(int(year)) for year in frame["YEAR"]]
    return Series(
        times=times,
        values=np.asarray(values, dtype=np.float64).reshape(-1, 1),
        names=[name],
        covariates=np.zeros((len(times), 0)),
        covariate_names=[],
        period=SERIES_PERIODS[name],
    )


def load_series(
    data: str,
    time_column: str | None = None,
    value_columns: list[str] | None = None,
    covariate_columns: list[str] | None = None,
    period: int | None = None,
) -> Series:
    """A named series (``co2``, ...) or a CSV file; ``period`` overrides the seasonal period."""
    if data in SERIES_PERIODS:
        if value_columns or covariate_columns or time_column:
            raise ConfigError(
                f"the series {data!r} has no columns to choose; drop the column flags"
            )
        series = named_series(data)
        if period is not None:
            series.period = period
        return series
    return read_csv(data, time_column, value_columns, covariate_columns, period or 1)


def split_points(length: int, splits: str) -> tuple[int, int]:
    """``(valid_start, test_start)`` of a chronological ``"70/15/15"`` split of ``length`` steps."""
    try:
        parts = [float(p) for p in splits.split("/")]
    except ValueError:
        parts = []
    if len(parts) != 3 or any(p < 0 for p in parts) or parts[0] <= 0 or sum(parts) <= 0:
        raise ConfigError(f"--splits must be three train/valid/test percentages, got {splits!r}")
    total = sum(parts)
    valid_start = round(length * parts[0] / total)
    test_start = round(length * (parts[0] + parts[1]) / total)
    return valid_start, test_start


def check_length(series: Series, context: int, horizon: int, train_end: int) -> None:
    """A ``DataError`` unless the series, and its training part ``[0, train_end)``, are at least
    ``context + horizon`` steps long."""
    needed = context + horizon
    if len(series) < needed:
        raise DataError(
            f"the series has {len(series)} steps, shorter than context + horizon = {needed}; "
            "lower --context or --horizon"
        )
    if train_end < needed:
        raise DataError(
            f"the training part has {train_end} steps, fewer than context + "
            f"horizon = {needed}; lower --context or --horizon, or give training more (--splits)"
        )
