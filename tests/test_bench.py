"""``rnnlab bench``: the registry, settings resolution, the row, the results file, --quick."""

from __future__ import annotations

import importlib.util

import pytest

from rnnlab import tasks
from rnnlab.bench.entries import ENTRIES, get_entry
from rnnlab.bench.runner import (
    DEFAULT_BUDGET_MINUTES,
    HEADER,
    append_result,
    evaluate_run,
    format_row,
    resolve_settings,
    run_benchmark,
)
from rnnlab.cli.main import main
from rnnlab.errors import ConfigError

ALL = (
    "adding copy parity order selective-copy seq-mnist pmnist jsb nottingham piano muse "
    "ptb-char shakespeare mackey-glass forecast-co2 forecast-elnino"
).split()


def test_every_benchmark_of_the_issue_is_registered_on_a_real_task():
    assert list(ENTRIES) == ALL
    for entry in ENTRIES.values():
        assert entry.task in tasks.available()
        assert entry.split in ("valid", "test")
    with pytest.raises(ConfigError, match="unknown benchmark"):
        get_entry("nope")


def test_settings_resolution_and_budget():
    entry = get_entry("adding")
    settings = resolve_settings(entry, {"cell": "gru"})
    assert settings["length"] == 600 and settings["hidden"] == 130 and settings["cell"] == "gru"
    assert settings["max_minutes"] == DEFAULT_BUDGET_MINUTES
    quick = resolve_settings(entry, {"hidden": 4}, quick=True)
    assert quick["max_steps"] == 2 and quick["hidden"] == 4 and quick["length"] == 20
    budget = resolve_settings(entry, {}, budget_minutes=3.0, quick=True)
    assert budget["max_minutes"] == 3.0 and "max_steps" not in budget


def test_run_row_and_results_file(tmp_path):
    run_dir = tmp_path / "run"
    result = run_benchmark("parity", {"cell": "gru", "seed": 1, "out": str(run_dir)}, quick=True)
    assert result.steps == 2 and result.parameters > 0
    assert 0.0 <= result.metrics["accuracy"] <= 1.0
    assert result.evaluated == "best valid @ step 2"
    again = evaluate_run("parity", run_dir)
    assert again.metrics == result.metrics and again.steps == 2
    row = format_row(result)
    assert row.startswith("| parity | gru |") and row.count("|") == HEADER.count("|")
    path = tmp_path / "RESULTS.md"
    append_result(result, path, "rnnlab bench parity --quick", "2 steps", "abc1234")
    append_result(result, path, "rnnlab bench parity --quick", "2 steps", "abc1234")
    lines = path.read_text().splitlines()
    assert lines[0] == "# Benchmark results"
    rows = [line for line in lines if "| abc1234 |" in line]
    assert len(rows) == 2 and "`rnnlab bench parity --quick`" in rows[0]


def test_published_numbers_and_protocol_labels_are_printed():
    result = run_benchmark("adding", {}, quick=True)
    row = format_row(result)
    assert "| 0.164 | 5.3e-5 | 0.177 | 5.8e-5 |" in row
    assert "length=20 (published: 600)" in row


def test_bench_quick_runs_every_task(data_dir, capsys):
    assert main(["bench", "--quick", "--data-dir", str(data_dir)]) == 0
    captured = capsys.readouterr()
    out = captured.out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "---" not in line]
    ran = ALL
    if importlib.util.find_spec("statsmodels") is None:  # the forecast extra: skipped, said so
        ran = [name for name in ALL if not name.startswith("forecast-")]
        assert "skipped forecast-co2: " in captured.err and "rnnlab[forecast]" in captured.err
    assert [row.split("|")[1].strip() for row in rows[1:]] == ran
    assert "mnist-test-split" in out
    assert f"quick: {len(ran)} tasks" in out


def test_bench_errors_are_one_line(capsys):
    assert main(["bench"]) == 2
    assert "name a benchmark" in capsys.readouterr().err
    assert main(["bench", "nope", "--quick"]) == 2
