"""The benchmark entries: for each ``rnnlab bench`` task, the Task that runs it, its default
settings (the papers' sizes), the number it reports and the published numbers beside it.

Published numbers come from ``shared/reference/published-results.md``: Bai, Kolter and Koltun
(2018), Table 1 (read in the paper, [V]); Pascanu, Mikolov and Bengio (2013) for Piano-midi and
MuseData [V]; secondary sources are marked as such and [M] marks a number recalled from secondary
sources and not verified, which is printed with its mark.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rnnlab.errors import ConfigError

COLUMNS = ("LSTM", "GRU", "RNN", "TCN")
BAI = "Bai et al. 2018, Table 1 [V]"


@dataclass(frozen=True)
class BenchEntry:
    """One benchmark.

    Attributes:
        name: the ``rnnlab bench`` task name.
        task: the registered Task that trains it.
        metric: the key of the task's ``evaluate`` result that is reported.
        label: how the metric is printed (``"MSE"``, ``"accuracy"``, ``"NLL"``, ...).
        scale: factor applied before printing (100 for accuracies in percent).
        split: the split reported (``"test"``, or ``"valid"`` where the reference reports it).
        settings: default flags (the papers' settings where they give them).
        tcn_settings: flags replacing ``settings`` under ``--model tcn`` (the TCN's own sizes in
            the reference implementation, locuslab/TCN).
        quick: flags of ``--quick`` (a few steps of a tiny model).
        published: column -> published value as printed (``COLUMNS`` and ``"other"``).
        source: where the published numbers come from.
        protocol: flags whose values the published numbers assume (e.g. ``{"length": 600}``).
        note: what to say beside the row (protocol differences).
        also: further metrics printed after the result, key -> label (``{"nrmse": "NRMSE"}``).
    """

    name: str
    task: str
    metric: str
    label: str
    scale: float = 1.0
    split: str = "test"
    settings: dict[str, Any] = field(default_factory=dict)
    tcn_settings: dict[str, Any] = field(default_factory=dict)
    quick: dict[str, Any] = field(default_factory=dict)
    published: dict[str, str] = field(default_factory=dict)
    source: str = BAI
    protocol: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    also: dict[str, str] = field(default_factory=dict)


QUICK = {"hidden": 8, "layers": 1, "batch_size": 4, "max_steps": 2, "eval_every": 1000}
QUICK_DATA = {**QUICK, "eval_examples": 4}
MNIST_QUICK = {**QUICK_DATA, "mnist_protocol": "test-split"}
MUSIC_QUICK = {**QUICK, "eval_examples": 2}
CHAR_QUICK = {**QUICK, "embed": 8, "seq_len": 16, "batch_size": 16}

ENTRIES: dict[str, BenchEntry] = {}


def _add(entry: BenchEntry) -> None:
    ENTRIES[entry.name] = entry


_add(
    BenchEntry(
        "adding",
        "adding",
        "mse",
        "MSE",
        settings={"length": 600, "hidden": 130, "clip_norm": 5.0, "batch_size": 32},
        tcn_settings={"hidden": 30, "layers": 8, "kernel_size": 7, "lr": 4e-3},
        quick={**QUICK, "length": 20, "eval_examples": 8},
        published={"LSTM": "0.164", "GRU": "5.3e-5", "RNN": "0.177", "TCN": "5.8e-5"},
        protocol={"length": 600},
        note="predicting 1 scores 0.167",
    )
)
_add(
    BenchEntry(
        "copy",
        "copy",
        "loss",
        "loss",
        settings={"length": 1000, "hidden": 50, "dropout": 0.05, "clip_norm": 1.0},
        tcn_settings={"hidden": 10, "layers": 8, "kernel_size": 8, "dropout": 0.0, "lr": 5e-4},
        quick={**QUICK, "length": 10, "eval_examples": 8},
        published={"LSTM": "0.0204", "GRU": "0.0197", "RNN": "0.0202", "TCN": "3.5e-5"},
        protocol={"length": 1000},
        note="memoryless baseline 10 log 8 / (T + 20) = 0.0204 at T = 1000",
    )
)
_add(
    BenchEntry(
        "parity",
        "parity",
        "accuracy",
        "accuracy",
        scale=100.0,
        settings={"length": 20, "hidden": 64, "clip_norm": 1.0},
        quick={**QUICK, "length": 8, "eval_examples": 8},
        source="no published reference; chance is 50%",
    )
)
_add(
    BenchEntry(
        "order",
        "order",
        "accuracy",
        "accuracy",
        scale=100.0,
        settings={"length": 100, "hidden": 64, "clip_norm": 1.0},
        quick={**QUICK, "length": 20, "eval_examples": 8},
        source="Hochreiter and Schmidhuber 1997 report LSTM solving it; chance is 25%",
    )
)
_add(
    BenchEntry(
        "selective-copy",
        "selective-copy",
        "accuracy",
        "accuracy",
        scale=100.0,
        settings={"length": 200, "hidden": 128, "clip_norm": 1.0},
        quick={**QUICK, "length": 16, "eval_examples": 8},
        published={"other": "minGRU 99.5, minLSTM 96.0 (3 layers, their setup)"},
        source="Feng et al. 2024 [V, secondary]; a different sequence length and vocabulary",
    )
)
_add(
    BenchEntry(
        "seq-mnist",
        "seq-mnist",
        "accuracy",
        "accuracy",
        scale=100.0,
        settings={
            "hidden": 130,
            "optimizer": "rmsprop",
            "lr": 1e-3,
            "clip_norm": 1.0,
            "batch_size": 64,
        },
        quick=MNIST_QUICK,
        published={"LSTM": "87.2", "GRU": "96.2", "RNN": "21.5", "TCN": "99.0"},
        protocol={"mnist_protocol": "standard"},
        note="mnist-test-split results are on 2,000 held-out test images, not the paper's split",
    )
)
_add(
    BenchEntry(
        "pmnist",
        "pmnist",
        "accuracy",
        "accuracy",
        scale=100.0,
        settings={
            "hidden": 130,
            "optimizer": "rmsprop",
            "lr": 1e-3,
            "clip_norm": 1.0,
            "batch_size": 64,
        },
        quick=MNIST_QUICK,
        published={"LSTM": "85.7", "GRU": "87.3", "RNN": "25.3", "TCN": "97.2"},
        protocol={"mnist_protocol": "standard"},
        note="the paper's LSTM used forget bias 10 (--forget-bias 10); mnist-test-split results "
        "are on 2,000 held-out test images, not the paper's split",
    )
)
for _name, _notes in (("jsb", "8.45 8.43 8.91 8.10"), ("nottingham", "3.29 3.46 4.05 3.07")):
    _add(
        BenchEntry(
            _name,
            _name,
            "nll",
            "NLL",
            quick=MUSIC_QUICK,
            published=dict(zip(COLUMNS, _notes.split())),
        )
    )
_add(
    BenchEntry(
        "piano",
        "piano",
        "nll",
        "NLL",
        quick=MUSIC_QUICK,
        published={"RNN": "7.46", "other": "RNN: SGD 7.56, +clipping 7.53, +regulariser 7.46"},
        source="Pascanu et al. 2013 [V] (Bai et al. do not report Piano-midi)",
    )
)
_add(
    BenchEntry(
        "muse",
        "muse",
        "nll",
        "NLL",
        quick=MUSIC_QUICK,
        published={"RNN": "6.97", "other": "RNN: SGD 7.11, +clipping 7.00, +regulariser 6.97"},
        source="Pascanu et al. 2013 [V] (Bai et al. do not report MuseData)",
    )
)
_add(
    BenchEntry(
        "ptb-char",
        "ptb-char",
        "bpc",
        "bpc",
        quick={**CHAR_QUICK, "eval_examples": 2000},
        published={"LSTM": "1.36", "GRU": "1.37", "RNN": "1.48", "TCN": "1.31"},
    )
)
_add(
    BenchEntry(
        "shakespeare",
        "charlm",
        "loss",
        "loss",
        split="valid",
        settings={"data": "tinyshakespeare", "splits": "90/10/0"},
        quick={**CHAR_QUICK, "splits": "98/2/0"},
        published={
            "other": "nanoGPT 6-layer transformer 1.4697 (A100), CPU config 1.88 [V]; "
            "minGRU 1.548, minLSTM 1.555 [V, secondary]"
        },
        source="nanoGPT shakespeare_char (90/10 split, nats per character)",
    )
)
_add(
    BenchEntry(
        "mackey-glass",
        "mackey-glass",
        "rmse",
        "RMSE",
        quick={"hidden": 20, "series_length": 400, "washout": 50},
        published={
            "other": "ESN: ReservoirPy README RMSE 0.0020 (this protocol, 100 units) [V]; "
            "Jaeger 2001 NRMSE84 2.8e-4 (400 units, 84-step free run) [V]"
        },
        source="ReservoirPy README; Jaeger 2001",
        protocol={"hidden": 100, "series_length": 2000},
        note="echo state network, readout fitted in closed form (ridge regression)",
        also={"nrmse": "NRMSE"},
    )
)

FORECAST_ALSO = {
    "snaive_mase": "seasonal naive MASE",
    "hw_mase": "Holt-Winters MASE",
    "naive_mase": "naive MASE",
    "mae": "MAE",
    "coverage80": "80% interval coverage",
    "crps": "CRPS",
}

for _series, _horizon, _context in (("co2", 52, 104), ("elnino", 12, 48)):
    _add(
        BenchEntry(
            f"forecast-{_series}",
            "forecast",
            "mase",
            "MASE",
            settings={"data": _series, "horizon": _horizon, "context": _context},
            quick=QUICK,
            source="baselines fitted in the same run on the same test origins (no published "
            "number)",
            note=f"statsmodels {_series}, horizon {_horizon}, rolling origin over the test 15%; "
            "MASE below 1 beats in-sample seasonal naive",
            also=FORECAST_ALSO,
        )
    )


def get_entry(name: str) -> BenchEntry:
    try:
        return ENTRIES[name]
    except KeyError:
        raise ConfigError(
            f"unknown benchmark {name!r}; choose one of: {', '.join(ENTRIES)}"
        ) from None
