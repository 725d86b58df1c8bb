"""Every task owns its flags: ``rnnlab train --task X`` takes the generic flags and X's, with X's
meaning and default; another task's flag, in a command line, a config file or a resumed run, is
one line naming the task. Argparse errors of every subcommand are one line and a ``--help``
hint."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rnnlab import tasks
from rnnlab.cli.main import main
from rnnlab.cli.train import parse, task_parser
from rnnlab.errors import CheckpointError, ConfigError
from rnnlab.training.config import (
    GENERIC_DEFAULTS,
    make_config,
    task_argument_defaults,
)
from rnnlab.training.config_file import load_config_file
from rnnlab.training.progress import advance, budget_bar, budget_label

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--hidden", "10", "--embed", "4", "--seq-len", "8", "--batch-size", "4"]
VALID_TEXT = {"splits": "80/10/10", "adaptive_softmax": "2000"}
"""Values for flags whose type checks the text (any text fits the others)."""


def own_actions(name: str) -> list[argparse.Action]:
    scratch = argparse.ArgumentParser(add_help=False)
    tasks.get(name).add_arguments(scratch)
    return [a for a in scratch._actions if a.option_strings]


def example(action: argparse.Action) -> tuple[list[str], object]:
    """Command-line words giving ``action`` a value other than its default, and that value."""
    flag = action.option_strings[0]
    if action.nargs == 0:
        return [flag], True
    if action.choices:
        value = next(c for c in reversed(list(action.choices)) if c != action.default)
        return [flag, str(value)], value
    text = VALID_TEXT.get(action.dest, {int: "3", float: "0.5"}.get(action.type, "word"))
    return [flag, text], action.type(text) if callable(action.type) else text


def error_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(err) == 1 and err[0].startswith("rnnlab: error:"), err
    return err[0]


@pytest.mark.parametrize("name", tasks.available())
def test_every_flag_of_every_task_parses_to_that_tasks_meaning_and_default(name):
    defaults = task_argument_defaults(tasks.get(name))
    assert make_config(name).task == name
    for action in own_actions(name):
        words, value = example(action)
        args, _, chosen = parse(["--task", name, *words])
        assert chosen == name and getattr(args, action.dest) == value, words
        assert getattr(make_config(name, **{action.dest: value}), action.dest) == value
        expected = tasks.get(name).defaults.get(action.dest, defaults[action.dest])
        assert getattr(make_config(name), action.dest) == expected  # the task's own default


@pytest.mark.parametrize("name", tasks.available())
def test_a_tasks_defaults_are_settings_it_takes(name):
    own = task_argument_defaults(tasks.get(name))
    assert set(tasks.get(name).defaults) <= set(GENERIC_DEFAULTS) | set(own)


def test_one_flag_can_mean_different_things_in_different_tasks():
    for model in ("tree-lstm", "child-sum", "recursive"):
        assert parse(["--task", "sst-tree", "--model", model])[0].model == model
    assert parse(["--task", "adding", "--model", "tcn"])[0].model == "tcn"
    assert make_config("sst-tree").model == "tree-lstm"
    assert make_config("adding").model == "recurrent"
    assert (make_config("sst").min_freq, make_config("translate").min_freq) == (1, 2)
    assert (make_config("moving-digits").kernel_size, make_config("adding").kernel_size) == (
        3,
        None,
    )


def test_train_alone_is_the_char_lm():
    args, _, name = parse([])
    assert name == "charlm" and args.task is None
    assert parse(["--splits", "80/10/10"])[0].splits == "80/10/10"


@pytest.mark.parametrize(
    "words, message",
    [
        (["--kernel-size", "3"], "--kernel-size is not an option of task charlm"),
        (["--pooling", "mean"], "--pooling is not an option of task charlm"),
        (["--task", "sst-tree", "--data", "x.txt"], "--data is not an option of task sst-tree"),
        (["--task", "wordlm", "--splits=90/5/5"], "--splits is not an option of task wordlm"),
        (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
        (["--task", "nope"], "unknown task 'nope'"),
        (["--splits", "90/20/0"], "sums to 110, not 100"),
        (["--hidden", "many"], "argument --hidden: invalid int value"),
    ],
)
def test_bad_flags_are_one_line_before_any_run_exists(tmp_path, capsys, words, message):
    out = tmp_path / "run"
    assert main(["train", *TINY, *words, "--out", str(out)]) == 2
    line = error_line(capsys)
    assert message in line and (line.endswith("--help") or "available tasks" in line)
    assert not out.exists()


@pytest.mark.parametrize("name", tasks.available())
def test_help_shows_the_generic_flags_and_only_the_tasks_own(name, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["train", "--task", name, "--help"])
    assert stopped.value.code == 0
    shown = capsys.readouterr().out
    own = {a.option_strings[0] for a in own_actions(name)}
    others = {a.option_strings[0] for t in tasks.available() for a in own_actions(t)} - own
    assert all(f" {flag}" in shown for flag in own | {"--hidden", "--max-steps", "--config"})
    taken = set(task_parser(name)._option_string_actions)
    assert own <= taken and not taken & others


def test_config_files_follow_the_same_ownership(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"task": "sst-tree", "model": "child-sum", "hidden": 8}))
    args, parser, name = parse(["--config", str(path)])  # the file chooses the task
    assert name == "sst-tree"
    settings = load_config_file(path, parser, GENERIC_DEFAULTS, name)
    assert settings == {"task": "sst-tree", "model": "child-sum", "hidden": 8}
    path.write_text(json.dumps({"kernel_size": 3}))
    with pytest.raises(ConfigError, match="--kernel-size is not an option of task charlm"):
        load_config_file(path, task_parser("charlm"), GENERIC_DEFAULTS, "charlm")


def test_config_file_with_another_tasks_setting_is_one_line(tmp_path, capsys):
    path = tmp_path / "run.yaml"
    path.write_text("pooling: mean\n", encoding="utf-8")
    pytest.importorskip("yaml")
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "run")]) == 2
    assert "--pooling is not an option of task charlm" in error_line(capsys)


def test_resume_follows_the_same_ownership(tmp_path, text_file, capsys):
    run = tmp_path / "run"
    args = ["--data", str(text_file), *TINY, "--max-steps", "2", "--eval-every", "100"]
    assert main(["train", *args, "--splits", "80/20/0", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--pooling", "mean"]) == 2
    assert "--pooling is not an option of task charlm" in error_line(capsys)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "kernel_size": 3}))
    assert main(["train", "--resume", str(run), "--max-steps", "3"]) == 2
    line = error_line(capsys)
    assert "config.json has 'kernel_size'" in line and "not an option of task charlm" in line
    with pytest.raises(CheckpointError, match="not an option of task charlm"):
        make_config("charlm", base={**config, "kernel_size": 3})


def test_translate_without_sacrebleu_is_named_before_any_work(tmp_path, capsys, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "sacrebleu" else real(name)
    )
    out = tmp_path / "run"
    assert (
        main(["train", "--task", "translate", "--data-dir", str(tmp_path), "--out", str(out)]) == 2
    )
    assert "task translate needs sacrebleu: pip install 'rnnlab[translate]'" in error_line(capsys)
    assert not out.exists()


def test_other_subcommands_errors_are_one_line_with_a_hint(capsys):
    assert main(["eval"]) == 2
    assert error_line(capsys).endswith("see rnnlab eval --help")
    assert main(["sample", "--run", "x", "--bogus"]) == 2
    assert "unrecognized arguments: --bogus; see rnnlab sample --help" in error_line(capsys)
    assert main(["nonsense"]) == 2
    assert error_line(capsys).endswith("see rnnlab --help")


def test_argparse_errors_are_one_line_in_a_real_process():
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "rnnlab", "train", "--kernel-size", "3"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("rnnlab: error: --kernel-size is not an option of task charlm (")
    assert line.endswith("; see rnnlab train --task charlm --help")


def test_progress_bar_shows_the_share_of_the_budget():
    assert budget_label(1000, 5.0, None) == "1,000 steps or 5 min"
    assert budget_label(None, None, 1) == "1 epoch"
    assert budget_label(None, None, None) == ""
    bar = budget_bar("5 min", 0, 0.0)
    advance(bar, 12, 0.4, "loss 1.500")
    assert bar.n == pytest.approx(0.4)
    assert str(bar).startswith(" 40% of 5 min |") and "step 12 | loss 1.500" in str(bar)
    advance(bar, 40, 1.3, "loss 1.200")  # a budget overrun stops at 100%
    assert str(bar).startswith("100% of 5 min")
    bar.close()
    counter = budget_bar("", 7, 0.0)
    advance(counter, 8, 0.0, "loss 2.000")
    assert counter.n == 8
    counter.close()
