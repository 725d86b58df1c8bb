"""``rnnlab bench TASK``: per-task flags (shared with ``rnnlab train``), ``--config FILE``,
``--resume DIR`` and the recipe files of ``benchmarks/configs/``."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

import rnnlab.bench.runner
import rnnlab.cli.bench
from rnnlab.bench.entries import ENTRIES, BenchEntry, get_entry
from rnnlab.bench.runner import resolve_settings
from rnnlab.cli.bench import _with_config_file, bench_parser, parse
from rnnlab.cli.main import main
from rnnlab.cli.train import task_parser
from rnnlab.errors import ConfigError
from rnnlab.training.config import make_config
from rnnlab.training.trainer import Trainer

CONFIGS = Path(__file__).resolve().parents[1] / "benchmarks" / "configs"
RECIPES = {
    "pmnist_lstm.yaml": "pmnist",
    "seq_mnist_lstm.yaml": "seq-mnist",
    "copy_lstm.yaml": "copy",
    "ptb_char_lstm.yaml": "ptb-char",
}


def test_help_shows_the_generic_flags_and_only_the_tasks_own(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "copy", "--help"])
    shown = capsys.readouterr().out
    assert "task copy:" in shown and "--kernel-size" in shown and "--length" in shown
    assert "--mnist-protocol" not in shown and "--resume DIR" in shown and "--config" in shown
    assert "--task" not in shown


def _flags(parser) -> dict:
    return {o: (a.dest, a.choices, a.type) for a in parser._actions for o in a.option_strings}


def test_every_benchmark_takes_exactly_its_tasks_flags_with_their_meaning():
    own = _flags(bench_parser(None)).keys() - _flags(task_parser("charlm")).keys()
    for name, entry in ENTRIES.items():
        bench, train = _flags(bench_parser(name)), _flags(task_parser(entry.task))
        for flag in ("--task", "--config", "--resume"):  # bench's own --config and --resume
            train.pop(flag)
        assert train.items() <= bench.items(), name
        assert bench.keys() - train.keys() == own | {"--config", "--resume"}, name


def test_a_flag_of_another_task_is_one_line_naming_the_task(capsys):
    assert main(["bench", "adding", "--mnist-protocol", "test-split", "--quick"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "rnnlab: error: --mnist-protocol is not an option of task adding (tasks that take it: "
        "pmnist, seq-mnist); see rnnlab bench adding --help"
    ]
    assert main(["bench", "adding", "--nope"]) == 2
    assert "unrecognized arguments: --nope" in capsys.readouterr().err


def test_two_tasks_meanings_of_one_flag_both_parse(monkeypatch):
    tree = BenchEntry("tree", "sst-tree", "accuracy", "accuracy")
    monkeypatch.setattr(rnnlab.cli.bench, "ENTRIES", {**ENTRIES, "tree": tree})
    assert parse(["tree", "--model", "tree-lstm"])[1] == {"tree": {"model": "tree-lstm"}}
    assert parse(["adding", "--model", "tcn"])[1] == {"adding": {"model": "tcn"}}
    with pytest.raises(ConfigError, match="invalid choice: 'tree-lstm'"):
        parse(["adding", "--model", "tree-lstm"])


def test_quick_over_every_task_gives_each_the_flags_it_takes():
    args, flags = parse(["--quick", "--model", "tcn", "--length", "7", "--hidden", "5"])
    assert args.quick and list(flags) == list(ENTRIES)
    assert flags["adding"] == {"model": "tcn", "length": 7, "hidden": 5}
    assert flags["jsb"] == {"model": "tcn", "hidden": 5}
    assert flags["mackey-glass"] == {"hidden": 5}
    for stray in (["--nope"], ["tcn"], ["--length", "3", "nope"]):
        with pytest.raises(ConfigError, match="unrecognized arguments"):
            parse(["--quick", *stray])
    assert parse(["--verbose", "adding", "--length", "3"])[1] == {"adding": {"length": 3}}


def test_config_file_with_flags_overriding_it(tmp_path, capsys):
    path = tmp_path / "run.yaml"
    path.write_text("cell: gru\nhidden: 5\nlength: 12\nseq-len: 3\n")
    out = tmp_path / "run"
    argv = ["bench", "adding", "--config", str(path), "--quick", "--hidden", "6"]
    assert main([*argv, "--out", str(out)]) == 0
    assert "| adding | gru |" in capsys.readouterr().out
    saved = json.loads((out / "config.json").read_text())
    assert (saved["cell"], saved["hidden"], saved["length"]) == ("gru", 6, 12)
    path.write_text("mnist-protocol: test-split\n")
    assert main(["bench", "adding", "--config", str(path), "--quick"]) == 2
    assert "--mnist-protocol is not an option of task adding" in capsys.readouterr().err
    path.write_text("task: copy\n")
    with pytest.raises(ConfigError, match="benchmark adding trains task adding"):
        _with_config_file("adding", str(path), {})
    assert main(["bench", "--quick", "--config", str(path)]) == 2
    assert "--config needs the benchmark's name" in capsys.readouterr().err


def test_resume_continues_a_stopped_run_to_a_larger_budget(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["bench", "parity", "--quick", "--out", str(out)]) == 0
    assert "| parity | lstm | " in capsys.readouterr().out
    assert main(["bench", "parity", "--resume", str(out), "--max-steps", "5", "--verbose"]) == 0
    captured = capsys.readouterr()
    row = next(line for line in captured.out.splitlines() if line.startswith("| parity"))
    assert row.split("|")[4].strip() == "5" and "best valid @ step" in row
    assert "resumed at step 2" in captured.err and "% of 5 steps" in captured.err  # the bar
    assert json.loads((out / "checkpoints" / "last" / "meta.json").read_text())["step"] == 5
    assert (out / "checkpoints" / "best" / "meta.json").is_file()
    # a budget of hours is taken as given (and both budgets bound the run)
    argv = ["bench", "parity", "--resume", str(out), "--budget-minutes", "300", "--max-steps", "6"]
    assert main(argv) == 0
    saved = json.loads((out / "config.json").read_text())
    assert (saved["max_minutes"], saved["max_steps"]) == (300.0, 6)
    assert "| parity | lstm | " in capsys.readouterr().out


def test_resume_keeps_the_runs_settings(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["bench", "parity", "--quick", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["bench", "parity", "--resume", str(out), "--hidden", "9"]) == 2
    assert "cannot change 'hidden'" in capsys.readouterr().err
    assert main(["bench", "adding", "--resume", str(out)]) == 2
    assert "is a run of task 'parity'" in capsys.readouterr().err


@pytest.mark.parametrize("filename", sorted(RECIPES))
def test_the_recipe_files_parse_for_their_benchmark(filename):
    name = RECIPES[filename]
    entry = get_entry(name)
    flags = _with_config_file(name, str(CONFIGS / filename), {})
    config = make_config(entry.task, **resolve_settings(entry, flags))
    assert config.cell == "lstm" and config.clip_norm and config.max_minutes <= 90
    assert "chrono" in config.cell_options or "forget_bias" in config.cell_options
    assert parse([name, "--config", str(CONFIGS / filename)])[0].config


def test_a_stopped_run_says_how_to_resume_and_resumes(tmp_path, monkeypatch, capsys):
    class StopsAfterOneStep(Trainer):
        def _budget_spent(self) -> bool:
            if self.step == 1 and not self.stop_requested:
                os.kill(os.getpid(), signal.SIGTERM)  # as `kill PID` would
            return super()._budget_spent()

    out = tmp_path / "run"
    monkeypatch.setattr(rnnlab.bench.runner, "Trainer", StopsAfterOneStep)
    argv = ["bench", "parity", "--quick", "--max-steps", "4", "--out", str(out)]
    assert main(argv) == 128 + signal.SIGTERM
    captured = capsys.readouterr()
    assert (
        f"parity: stopped at step 1 (saved); continue with: rnnlab bench parity --resume {out}"
        in (captured.err)
    )
    assert "| parity |" not in captured.out  # no row for an unfinished run
    monkeypatch.undo()
    assert main(["bench", "parity", "--resume", str(out)]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| parity"))
    assert row.split("|")[4].strip() == "4"  # continued to the run's own budget
