"""``rnnlab bench --quick`` runs what it can: a task whose dataset is missing is skipped with one
line, the table holds every task that ran, and the exit code is 0 when one ran."""

from __future__ import annotations

import urllib.request

import pytest

import rnnlab.cli.bench
from rnnlab.bench.entries import ENTRIES
from rnnlab.cli.main import main


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No $RNNLAB_DATA_DIR, an empty download cache, and every download failing."""

    def refuse(url, filename):
        raise OSError("offline")

    monkeypatch.delenv("RNNLAB_DATA_DIR", raising=False)
    monkeypatch.setenv("RNNLAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(urllib.request, "urlretrieve", refuse)
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


def _rows(out: str) -> list[str]:
    lines = [line for line in out.splitlines() if line.startswith("| ") and "---" not in line]
    return [line.split("|")[1].strip() for line in lines[1:]]


def test_quick_skips_the_tasks_whose_data_is_missing(offline, data_dir, monkeypatch, capsys):
    (offline / "music").symlink_to(data_dir / "music")  # a subset: music, no mnist
    subset = {name: ENTRIES[name] for name in ("adding", "pmnist", "jsb")}
    monkeypatch.setattr(rnnlab.cli.bench, "ENTRIES", subset)
    assert main(["bench", "--quick", "--data-dir", str(offline)]) == 0
    out, err = capsys.readouterr()
    assert _rows(out) == ["adding", "jsb"]
    assert err.strip().splitlines() == [
        f"skipped pmnist: mnist/t10k-images-idx3-ubyte.gz not found in {offline} or "
        "$RNNLAB_DATA_DIR; rnnlab downloads it when online"
    ]
    assert "quick: 2 tasks" in out and "1 skipped (no data)" in out


def test_quick_with_no_data_runs_the_synthetic_tasks(offline, monkeypatch, capsys):
    subset = {name: ENTRIES[name] for name in ("jsb", "parity", "shakespeare")}
    monkeypatch.setattr(rnnlab.cli.bench, "ENTRIES", subset)
    assert main(["bench", "--quick"]) == 0
    out, err = capsys.readouterr()
    assert _rows(out) == ["parity"]
    assert [line.split(":")[0] for line in err.strip().splitlines()] == [
        "skipped jsb",
        "skipped shakespeare",
    ]
    assert "not found in --data-dir or $RNNLAB_DATA_DIR" in err


def test_nothing_ran_or_a_named_task_is_one_error_line(offline, capsys):
    for argv in (["bench", "jsb", "--quick"], ["bench", "jsb", "--max-steps", "1"]):
        assert main([*argv, "--data-dir", str(offline)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("rnnlab: error: could not download")
