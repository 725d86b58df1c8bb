"""A recurrent forecaster over any registered cell: encode a context window, forecast H steps.

The input at step ``i`` is the value just seen and the covariates of the step being forecast,
``x_i = (y_i, c_{i+1})``; the recurrent layers' output at step ``i`` forecasts ``y_{i+1}``.

- ``decoder="direct"``: one linear head reads the last context output and the ``H`` steps of
  future covariates and emits all ``H`` steps at once (multi-output).
- ``decoder="autoregressive"``: the same layers continue past the context, one step at a time;
  each step's input is the previous value: the true one when ``teacher`` is given (teacher
  forcing, in training), else the model's own point forecast (free running).

Heads (``P`` parameters per step): ``point`` (1, trained with the absolute error), ``gaussian``
(mean and standard deviation, trained with the negative log-likelihood) and ``quantile`` (one
output per level, trained with the pinball loss).

Shapes (``C`` context steps, ``H`` horizon, ``B`` batch, ``K`` covariates):

====================================  =================================================
``inputs``                            ``[C, B, 1 + K]``: ``(y_i, c_{i+1})``
``future``                            ``[H, B, K]``: ``c`` of the ``H`` forecast steps
``teacher`` (optional)                ``[H, B]``: the true values, for teacher forcing
``forward(inputs, future, teacher)``  ``[H, B, P]``: the head's parameters per step
====================================  =================================================
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnlab.cells import create
from rnnlab.errors import ConfigError
from rnnlab.layers.unroll import Recurrent
from rnnlab.validation import check_positive

HEADS = ("point", "gaussian", "quantile")
DECODERS = ("direct", "autoregressive")
MIN_STD = 1e-3
"""The smallest standard deviation the Gaussian head predicts (in scaled units)."""


class Forecaster(nn.Module):
    """Recurrent layers of one registered cell with a forecasting head.

    Example::

        model = Forecaster("gru", covariates=0, hidden_size=64, horizon=12, head="gaussian")
        params = model(torch.randn(36, 8, 1), torch.zeros(12, 8, 0))   # [12, 8, 2]
        mean, std = model.gaussian(params)                              # [12, 8] each

    Args:
        cell: registered cell name (``rnnlab.cells.available()``).
        covariates: ``K``, covariates per step (0 for none).
        hidden_size: units per layer.
        horizon: ``H``, steps forecast.
        num_layers: stacked recurrent layers.
        head: ``point``, ``gaussian`` or ``quantile``.
        decoder: ``direct`` or ``autoregressive``.
        quantiles: the levels of the ``quantile`` head, increasing, in ``(0, 1)``.
        dropout: dropout on every recurrent layer's outputs.
        cell_options: extra keyword arguments for every cell.
    """

    def __init__(
        self,
        cell: str,
        covariates: int,
        hidden_size: int,
        horizon: int,
        num_layers: int = 1,
        head: str = "gaussian",
        decoder: str = "direct",
        quantiles: tuple[float, ...] = (0.1, 0.5, 0.9),
        dropout: float = 0.0,
        cell_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        check_positive(hidden_size=hidden_size, horizon=horizon, num_layers=num_layers)
        if head not in HEADS:
            raise ConfigError(f"unknown head {head!r}; choose one of {', '.join(HEADS)}")
        if decoder not in DECODERS:
            raise ConfigError(f"unknown decoder {decoder!r}; choose one of {', '.join(DECODERS)}")
        if head == "quantile" and (
            not quantiles
            or any(not 0.0 < q < 1.0 for q in quantiles)
            or list(quantiles) != sorted(set(quantiles))
        ):
            raise ConfigError(f"quantiles must increase within (0, 1), got {list(quantiles)}")
        self.covariates, self.horizon = covariates, horizon
        self.head, self.decoder, self.quantiles = head, decoder, tuple(quantiles)
        self.params_per_step = {"point": 1, "gaussian": 2, "quantile": len(quantiles)}[head]
        size = 1 + covariates
        layers = []
        for _ in range(num_layers):
            layer = Recurrent(
                create(cell, input_size=size, hidden_size=hidden_size, **(cell_options or {}))
            )
            layers.append(layer)
            size = layer.output_size
        self.layers = nn.ModuleList(layers)
        self.dropout = nn.Dropout(dropout)
        if decoder == "direct":
            self.readout = nn.Linear(size + horizon * covariates, horizon * self.params_per_step)
        else:
            self.readout = nn.Linear(size, self.params_per_step)

    def _run(self, x: Tensor, states: list[Any] | None) -> tuple[Tensor, list[Any]]:
        states = states or [None] * len(self.layers)
        new_states = []
        for layer, state in zip(self.layers, states):
            x, state = layer(x, state)
            x = self.dropout(x)
            new_states.append(state)
        return x, new_states

    def forward(self, inputs: Tensor, future: Tensor, teacher: Tensor | None = None) -> Tensor:
        outputs, states = self._run(inputs, None)
        batch = inputs.shape[1]
        if self.decoder == "direct":
            features = torch.cat([outputs[-1], future.transpose(0, 1).reshape(batch, -1)], dim=1)
            params = self.readout(features).view(batch, self.horizon, self.params_per_step)
            return params.transpose(0, 1)
        first = self.readout(outputs[-1:])  # [1, B, P]: the forecast of the first step
        if teacher is not None:  # teacher forcing: all later steps in one pass
            later = torch.cat([teacher[:-1, :, None], future[1:]], dim=2)
            outputs, _ = self._run(later, states)
            return torch.cat([first, self.readout(outputs)])
        params = [first]
        for h in range(1, self.horizon):
            previous = self.point(params[-1])[:, :, None]
            outputs, states = self._run(torch.cat([previous, future[h : h + 1]], dim=2), states)
            params.append(self.readout(outputs))
        return torch.cat(params)

    def point(self, params: Tensor) -> Tensor:
        """``[..., P] -> [...]``: the mean (Gaussian), the median (quantiles: the level nearest
        0.5) or the point forecast."""
        if self.head == "quantile":
            middle = min(range(len(self.quantiles)), key=lambda i: abs(self.quantiles[i] - 0.5))
            return params[..., middle]
        return params[..., 0]

    def gaussian(self, params: Tensor) -> tuple[Tensor, Tensor]:
        """The Gaussian head's ``(mean, std)``, each ``params.shape[:-1]``."""
        return params[..., 0], F.softplus(params[..., 1]) + MIN_STD

    def loss(self, params: Tensor, target: Tensor) -> Tensor:
        """Mean loss of ``params [H, B, P]`` for ``target [H, B]`` (scaled units)."""
        if self.head == "point":
            return (params[..., 0] - target).abs().mean()
        if self.head == "gaussian":
            mean, std = self.gaussian(params)
            z = (target - mean) / std
            return (0.5 * z**2 + std.log() + 0.5 * math.log(2 * math.pi)).mean()
        levels = params.new_tensor(self.quantiles)
        error = target[..., None] - params
        return torch.maximum(levels * error, (levels - 1) * error).mean()
