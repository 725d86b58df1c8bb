"""Every registered cell passes check_cell (a new cell is covered by being registered), and a cell
of another package joins the registry, and the CLI, through the ``rnnlab.cells`` entry points."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest
import torch

import rnnlab
from rnnlab.cells import base
from rnnlab.cli.main import main
from rnnlab.errors import ConfigError
from rnnlab.layers import Bidirectional, Recurrent, Stack
from rnnlab.testing import check_cell

SIZES = {"input_size": 2, "hidden_size": 2}
# Cells that need more than two sizes to be built, with the arguments check_cell gets for them.
OPTIONS: dict[str, tuple[dict, dict]] = {
    "clockwork": ({"num_modules": 2}, {}),
    "conv-lstm": (
        {"input_size": 1, "hidden_size": 1, "kernel_size": 1, "frame_size": (2, 2)},
        {"input_shape": (1, 2, 2)},
    ),
}


def one_name_per_cell() -> list[str]:
    """The first registered name of each cell class (aliases run the same code)."""
    names: dict[type, str] = {}
    for name in rnnlab.cells.available():
        names.setdefault(rnnlab.cells.get(name), name)
    return sorted(names.values())


@pytest.mark.parametrize("name", one_name_per_cell())
def test_every_registered_cell_passes_check_cell(name):
    kwargs, check = OPTIONS.get(name, ({}, {}))
    cell = rnnlab.cells.create(name, **{**SIZES, **kwargs})
    ran = check_cell(cell, steps=3, batch=2, **check)
    assert ran[0] == "gradcheck" and ran[-1] == "masking"


def test_check_cell_covers_a_fused_unroll():
    ran = check_cell(rnnlab.cells.create("mingru", **SIZES), steps=3, batch=2)
    assert "fast path == reference loop" in ran


def entry_points_of(monkeypatch, *entries: metadata.EntryPoint) -> None:
    """Installed entry points are ``entries``; the registry reads them afresh, then forgets."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    monkeypatch.setattr(
        metadata, "entry_points", lambda group=None: [e for e in entries if e.group == group]
    )
    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))
    monkeypatch.setattr(base, "_entry_points_read", False)


def entry(name: str, value: str) -> metadata.EntryPoint:
    return metadata.EntryPoint(name, value, base.ENTRY_POINT_GROUP)


def test_a_cell_from_an_entry_point_trains_from_the_cli(monkeypatch, tmp_path, capsys):
    from user_cells import LeakyCell

    entry_points_of(monkeypatch, entry("leaky", "user_cells:LeakyCell"))
    assert "leaky" in rnnlab.cells.available()
    cell = rnnlab.cells.create("leaky", input_size=3, hidden_size=4)
    assert isinstance(cell, LeakyCell)
    assert check_cell(cell) == ["gradcheck", "masking"]
    x = torch.randn(6, 2, 3)
    both = Bidirectional(cell, rnnlab.cells.create("leaky", input_size=3, hidden_size=4))
    assert both(x)[0].shape == (6, 2, 8)
    second = rnnlab.cells.create("leaky", input_size=4, hidden_size=4)
    assert Stack([Recurrent(cell), Recurrent(second)])(x)[0].shape == (6, 2, 4)

    text = tmp_path / "text.txt"
    text.write_text("a leaky unit learns a little text.\n" * 20)
    args = ["--data", str(text), "--cell", "leaky", "--hidden", "8", "--embed", "4"]
    args += ["--seq-len", "8", "--batch-size", "4", "--max-steps", "2", "--eval-every", "2"]
    assert main(["train", *args, "--out", str(tmp_path / "run")]) == 0
    assert '"cell": "leaky"' in (tmp_path / "run" / "config.json").read_text()


@pytest.mark.parametrize(
    "value,message",
    [
        ("user_cells_missing:LeakyCell", "failed to import"),
        ("user_cells:torch", "is not a subclass of rnnlab.cells.Cell"),
    ],
)
def test_a_broken_entry_point_is_one_line(monkeypatch, value, message):
    entry_points_of(monkeypatch, entry("leaky", value))
    with pytest.raises(ConfigError, match=message):
        rnnlab.cells.available()


def test_an_entry_point_cannot_take_a_builtin_name(monkeypatch):
    entry_points_of(monkeypatch, entry("lstm", "user_cells:LeakyCell"))
    with pytest.raises(ConfigError, match="'lstm' is taken"):
        rnnlab.cells.get("lstm")
