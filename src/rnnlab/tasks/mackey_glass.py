"""Mackey-Glass one-step forecasting with an echo state network, fitted in closed form.

The protocol of ReservoirPy's README example (the published ESN number it reports, RMSE 0.0020):
``--series-length`` (2000) samples of Mackey-Glass with tau = 17 (:mod:`rnnlab.data.mackey_glass`),
inputs ``x_t = s_t`` and targets ``y_t = s_{t+1}``, the last ``--test-fraction`` (20%) of the
pairs for testing; a reservoir of ``--hidden`` (100) units, spectral radius 1.25, leak rate 0.3,
and a ridge-regression readout (ridge 1e-5) fitted after a washout of 100 steps. The test run
continues from the reservoir state after training. Computed in float64.

There is no gradient training: :meth:`MackeyGlassTask.fit` solves the readout in one linear
least-squares problem (``rnnlab bench mackey-glass`` calls it instead of the Trainer, whose
optimizer would have no parameters to move, so ``rnnlab train --task mackey-glass`` says so).

================  ============================================================
``evaluate``      ``loss`` (MSE), ``rmse``, ``nrmse`` (RMSE / standard deviation
                  of the split's targets), on ``"train"`` (after the washout) or
                  ``"test"``; there is no validation split
================  ============================================================
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from rnnlab.data.mackey_glass import mackey_glass
from rnnlab.errors import ConfigError
from rnnlab.models.esn import EchoState, EchoStateNetwork
from rnnlab.tasks.base import Task, register


@register("mackey-glass")
class MackeyGlassTask(Task):
    """One-step prediction of the Mackey-Glass series by an :class:`EchoStateNetwork`."""

    metric, metric_mode = "rmse", "min"
    defaults: ClassVar[dict[str, Any]] = {"hidden": 100, "cell": "esn"}
    closed_form: ClassVar[bool] = True
    """The model is fitted by :meth:`fit`; the Trainer refuses the task."""

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
        parser.add_argument(
            "--series-length", type=int, default=2000, help="mackey-glass: samples (2000)"
        )
        parser.add_argument(
            "--test-fraction",
            type=float,
            default=0.2,
            help="mackey-glass: last fraction of the series for testing (0.2)",
        )
        parser.add_argument(
            "--spectral-radius", type=float, default=1.25, help="ESN reservoir spectral radius"
        )
        parser.add_argument("--leak-rate", type=float, default=0.3, help="ESN leak rate (0.3)")
        parser.add_argument(
            "--input-scaling", type=float, default=1.0, help="ESN input weight scale (1.0)"
        )
        parser.add_argument(
            "--ridge", type=float, default=1e-5, help="ESN readout ridge penalty (1e-5)"
        )
        parser.add_argument(
            "--washout", type=int, default=100, help="ESN states dropped before the fit (100)"
        )

    def __init__(self, config: argparse.Namespace, run_dir: Path | None = None):
        super().__init__(config, run_dir)
        length, fraction = config.series_length, config.test_fraction
        if not 0.0 < fraction < 1.0:
            raise ConfigError(f"--test-fraction must be in (0, 1), got {fraction}")
        if not isinstance(length, int) or length < 3:
            raise ConfigError(f"--series-length must be at least 3, got {length!r}")
        series = mackey_glass(length)
        x, y = series[:-1, None, None], series[1:, None, None]  # [T, 1, 1]
        test = round(len(x) * fraction)
        if not 0 < test < len(x) - config.washout:
            raise ConfigError(
                f"a series of {length} samples leaves no training or test steps after a "
                f"washout of {config.washout} and a test fraction of {fraction}"
            )
        self.splits = {"train": (x[:-test], y[:-test]), "test": (x[-test:], y[-test:])}
        self.end_of_training: EchoState | None = None

    def describe(self) -> str:
        train, test = (len(self.splits[s][0]) for s in ("train", "test"))
        return f"Mackey-Glass tau=17: {train} training and {test} test steps"

    def build_model(self) -> nn.Module:
        c = self.config
        return EchoStateNetwork(
            1,
            1,
            c.hidden,
            spectral_radius=c.spectral_radius,
            leak_rate=c.leak_rate,
            input_scaling=c.input_scaling,
            seed=c.seed,
        ).double()

    def fit(self, model: EchoStateNetwork) -> tuple[float, int]:
        """Fit the readout on the training split; return the seconds taken (reservoir run plus
        solve) and the number of values fitted (readout weights and bias)."""
        device = model.weight_out.device
        x, y = (t.to(device) for t in self.splits["train"])
        start = time.perf_counter()
        self.end_of_training = model.fit(x, y, washout=self.config.washout, ridge=self.config.ridge)
        seconds = time.perf_counter() - start
        return seconds, model.weight_out.numel() + model.bias_out.numel()

    @torch.no_grad()
    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        if split not in self.splits:
            raise ConfigError(f"mackey-glass has the splits train and test, not {split!r}")
        if self.end_of_training is None:
            raise ConfigError("fit the model (MackeyGlassTask.fit) before evaluating it")
        device = model.weight_out.device
        x, y = (t.to(device) for t in self.splits[split])
        if split == "test":
            predictions, _ = model(x, self.end_of_training)
        else:
            predictions, _ = model(x)
            washout = self.config.washout
            predictions, y = predictions[washout:], y[washout:]
        return _errors(predictions, y)


def _errors(predictions: Tensor, targets: Tensor) -> dict[str, float]:
    mse = float(((predictions - targets) ** 2).mean())
    rmse = mse**0.5
    return {"loss": mse, "rmse": rmse, "nrmse": rmse / float(targets.std())}
