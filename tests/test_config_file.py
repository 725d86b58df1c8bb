"""``rnnlab train --config FILE``: YAML/TOML/JSON, flags override the file, clear errors, and a
run's config.json reproduces the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import load_file

from rnnlab.cli.main import main

TEXT = "It is a truth universally acknowledged, that a single man in possession.\n" * 20


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    path = tmp_path / "text.txt"
    path.write_text(TEXT)
    return path


def saved_config(run: Path) -> dict:
    return json.loads((run / "config.json").read_text())


@pytest.mark.parametrize("suffix", [".yaml", ".toml"])
def test_flags_override_the_file(tmp_path, text_file, capsys, suffix):
    settings = {"hidden": 12, "lr": 0.01, "seq-len": 8, "batch_size": 4, "clip-norm": "auto"}
    path = tmp_path / f"run{suffix}"
    if suffix == ".yaml":
        path.write_text("".join(f"{k}: {v}\n" for k, v in settings.items()))
    else:
        path.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items()))
    run = tmp_path / "run"
    args = ["train", "--config", str(path), "--data", str(text_file), "--embed", "4"]
    args += ["--lr", "0.02", "--max-steps", "2", "--splits", "80/20/0", "--out", str(run)]
    assert main(args) == 0
    config = saved_config(run)
    assert config["hidden"] == 12 and config["seq_len"] == 8  # from the file
    assert config["lr"] == 0.02 and config["max_steps"] == 2  # the flags win
    assert config["clip_norm"] == "auto"


def test_a_runs_config_json_reproduces_it(tmp_path, text_file, capsys):
    first, second = tmp_path / "first", tmp_path / "second"
    args = ["--data", str(text_file), "--hidden", "10", "--embed", "4", "--seq-len", "8"]
    args += ["--batch-size", "4", "--max-steps", "4", "--splits", "80/20/0"]
    assert main(["train", *args, "--out", str(first)]) == 0
    config_file = str(first / "config.json")
    assert main(["train", "--config", config_file, "--out", str(second)]) == 0
    assert {k: v for k, v in saved_config(second).items() if k != "out"} == {
        k: v for k, v in saved_config(first).items() if k != "out"
    }
    a = load_file(str(first / "checkpoints" / "last" / "model.safetensors"))
    b = load_file(str(second / "checkpoints" / "last" / "model.safetensors"))
    assert all((a[k] == b[k]).all() for k in a)


@pytest.mark.parametrize(
    "content, message",
    [
        ("hiden: 12\n", "unknown setting 'hiden'; did you mean hidden?"),
        ("hidden: twelve\n", "config setting 'hidden' must be an integer, got 'twelve' (str)"),
        ("lr: [1, 2]\n", "config setting 'lr' must be a number"),
        ("clip-norm: often\n", "config setting 'clip-norm': expected a number or auto"),
        ("- hidden\n", "must hold a mapping"),
        ("cell-option: 3\n", "config setting 'cell-option' must be a mapping, got 3"),
        ("cell_options: [1]\n", "config setting 'cell_options' must be a mapping"),
        ("hidden: [\n", "is not valid YAML"),
    ],
)
def test_bad_files_are_one_line_errors(tmp_path, capsys, content, message):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_config_that_is_not_utf8_is_one_line(tmp_path, capsys):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("hidden: 12  # caf\xe9\n".encode("latin-1"))
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "is not UTF-8 text" in err and len(err.strip().splitlines()) == 1


def test_a_yaml_config_without_pyyaml_names_the_package(tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "yaml", None)  # import yaml now raises ModuleNotFoundError
    path = tmp_path / "run.yaml"
    path.write_text("hidden: 12\n")
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "needs PyYAML: pip install pyyaml" in err and len(err.strip().splitlines()) == 1
