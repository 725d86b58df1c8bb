"""``rnnlab sweep``: the sweep file's checks, a tiny real sweep on the adding problem that
completes, prunes, resumes (also after its worker is killed) and reports, and the trainer's
settings a sweep uses (``on_validate``, ``momentum``, ``input_noise``)."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from rnnlab import tasks
from rnnlab.cli.main import main
from rnnlab.errors import ConfigError
from rnnlab.sweep import load_spec
from rnnlab.sweep.run import open_study, trial_settings
from rnnlab.training.config import make_config
from rnnlab.training.trainer import Trainer, add_input_noise, build_optimizer

optuna = pytest.importorskip("optuna")

TINY = """\
name: tiny
task: adding
fixed: {length: 6, hidden: 4, batch_size: 8, eval_examples: 16, eval_every: 2, seed: 1}
space:
  cell_option.variant: {categorical: [vanilla, nfg]}
  lr: {log_uniform: [1.0e-3, 1.0e-1]}
  momentum: {uniform: [0.0, 0.9]}
  input_noise: {uniform: [0.0, 0.1]}
  hidden: {int: [3, 6]}
fixed_optimizer: sgd
sampler: random
pruner: median
trials: TRIALS
BUDGET
heartbeat_seconds: 1
"""


def sweep_file(tmp_path: Path, trials: int, budget: str = "steps_per_trial: 4") -> Path:
    text = TINY.replace("fixed_optimizer: sgd\n", "").replace("TRIALS", str(trials))
    text = text.replace("{length: 6,", "{optimizer: sgd, length: 6,").replace("BUDGET", budget)
    path = tmp_path / "tiny.yaml"
    path.write_text(text)
    return path


def states(directory: Path, path: Path) -> list[str]:
    study = open_study(load_spec(path), directory, create=False)
    return [t.state.name for t in study.get_trials(deepcopy=False)]


def test_a_sweep_completes_resumes_and_reports(tmp_path, capsys):
    path, out = sweep_file(tmp_path, 3), tmp_path / "sweep"
    assert main(["sweep", str(path), "--out", str(out)]) == 0
    assert len(states(out, path)) == 3 and set(states(out, path)) <= {"COMPLETE", "PRUNED"}
    assert (out / "trials" / "0000" / "config.json").is_file()  # a normal run directory
    assert main(["sweep", str(path), "--out", str(out)]) == 0  # done: no new trial
    assert len(states(out, path)) == 3
    path = sweep_file(tmp_path, 4)  # more trials: the study continues
    assert main(["sweep", str(path), "--out", str(out)]) == 0
    assert len(states(out, path)) == 4
    capsys.readouterr()
    assert main(["sweep", "report", str(out)]) == 0
    report = capsys.readouterr().out
    assert "## best trials" in report and "p vs vanilla" in report
    assert "## importances (fANOVA)" in report
    for name in ("report.md", "history.png", "box_cell_option_variant.png"):
        assert (out / "report" / name).is_file()


def test_pruning_stops_a_trial_early(tmp_path):
    """With the median pruner, a trial far worse than the earlier ones at a validation stops."""
    path, out = sweep_file(tmp_path, 4, "steps_per_trial: 8"), tmp_path / "sweep"
    spec = load_spec(path)
    out.mkdir()
    study = open_study(spec, out)
    for value in (0.1, 0.1):  # two finished trials that reached 0.1 by step 2
        trial = optuna.trial.create_trial(
            params={"cell_option.variant": "vanilla", "lr": 0.01, "momentum": 0.5},
            distributions={
                "cell_option.variant": optuna.distributions.CategoricalDistribution(
                    ["vanilla", "nfg"]
                ),
                "lr": optuna.distributions.FloatDistribution(1e-3, 1e-1, log=True),
                "momentum": optuna.distributions.FloatDistribution(0.0, 0.9),
            },
            value=value,
            intermediate_values={2: 1e-6, 4: 1e-6, 6: 1e-6},
        )
        study.add_trial(trial)
    assert main(["sweep", str(path), "--out", str(out)]) == 0
    pruned = [t for t in study.get_trials() if t.state.name == "PRUNED"]
    assert pruned and all(max(t.intermediate_values) < 8 for t in pruned)


def test_a_killed_workers_trial_is_retried_from_its_run(tmp_path):
    path, out = sweep_file(tmp_path, 1, "minutes_per_trial: 0.08"), tmp_path / "sweep"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    worker = subprocess.Popen(
        [sys.executable, "-m", "rnnlab", "sweep", str(path), "--out", str(out)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    run = out / "trials" / "0000"
    deadline = time.monotonic() + 120
    while not (run / "checkpoints").is_dir() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    assert states(out, path) == ["RUNNING"]
    time.sleep(2.5)  # the heartbeat's grace period (2 x heartbeat_seconds)
    assert main(["sweep", str(path), "--out", str(out)]) == 0
    study = open_study(load_spec(path), out, create=False)
    failed, retried = study.get_trials()
    assert failed.state.name == "FAIL" and retried.state.name == "COMPLETE"
    assert retried.user_attrs["run_dir"] == str(run) and retried.params == failed.params
    assert "resumed at step" in (out / "trials" / "0001.log").read_text()


@pytest.mark.parametrize(
    "change,message",
    [
        (("trials: 3", "trials: 0"), "trials must be a positive number"),
        (("steps_per_trial: 4", ""), "give minutes_per_trial or steps_per_trial"),
        (("hidden: {int: [3, 6]}", "hidden: {int: [6, 3]}"), "needs low < high"),
        (("hidden: {int: [3, 6]}", "hiddn: {int: [3, 6]}"), "'hiddn' is not a setting"),
        (("pruner: median", "pruner: hyperband"), "pruner 'hyperband' unknown"),
        (("sampler: random", "smapler: random"), "unknown key 'smapler'"),
        (("lr: {log_uniform", "lr: {loguniform"), "lr needs one of categorical"),
    ],
)
def test_sweep_file_errors(tmp_path, change, message):
    path = sweep_file(tmp_path, 3)
    path.write_text(path.read_text().replace(*change))
    with pytest.raises(ConfigError, match=message):
        load_spec(path)


def test_another_sweep_in_the_same_directory_is_refused(tmp_path, capsys):
    path, out = sweep_file(tmp_path, 1), tmp_path / "sweep"
    assert main(["sweep", str(path), "--out", str(out)]) == 0
    path.write_text(path.read_text().replace("length: 6", "length: 7"))
    assert main(["sweep", str(path), "--out", str(out)]) == 2
    assert "holds a sweep with another 'fixed'" in capsys.readouterr().err


def small_trainer(tmp_path, **settings):
    config = make_config(
        "adding",
        length=6,
        hidden=4,
        batch_size=8,
        eval_examples=16,
        eval_every=2,
        max_steps=8,
        out=str(tmp_path / "run"),
        **settings,
    )
    task = tasks.create("adding", config)
    return config, task


def test_on_validate_can_stop_a_run(tmp_path):
    config, task = small_trainer(tmp_path)
    seen = []
    trainer = Trainer(
        task,
        config,
        config.out,
        out=io.StringIO(),
        progress=False,
        on_validate=lambda step, metrics: seen.append((step, metrics["mse"])) or step >= 4,
    )
    trainer.fit()
    assert [step for step, _ in seen] == [2, 4] and trainer.step == 4
    assert trainer.stop_signal is None


def test_momentum_and_input_noise_settings(tmp_path):
    params = [torch.nn.Parameter(torch.zeros(2))]
    assert build_optimizer("sgd", params, 0.1, momentum=0.3).param_groups[0]["momentum"] == 0.3
    assert build_optimizer("sgd", params, 0.1).param_groups[0]["momentum"] == 0.9
    with pytest.raises(ConfigError, match="momentum is a setting of sgd"):
        build_optimizer("adam", params, 0.1, momentum=0.3)
    config, task = small_trainer(tmp_path, optimizer="sgd", momentum=0.2, input_noise=0.5)
    trainer = Trainer(task, config, config.out, out=io.StringIO(), progress=False)
    assert trainer.optimizer.param_groups[0]["momentum"] == 0.2
    model = torch.nn.Identity()
    add_input_noise(model, 0.5)
    x = torch.zeros(3, 4)
    assert model(x).std() > 0.1
    assert torch.equal(model.eval()(x), x)
    with pytest.raises(ConfigError, match="real-valued inputs"):
        model.train()(torch.zeros(3, dtype=torch.long))


def test_a_stopped_trial_is_resumed_by_the_next_session(tmp_path):
    """SIGTERM saves the trial and ends the sweep with 128 + 15; the next session resumes it."""
    path, out = sweep_file(tmp_path, 1, "minutes_per_trial: 0.08"), tmp_path / "sweep"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    worker = subprocess.Popen(
        [sys.executable, "-m", "rnnlab", "sweep", str(path), "--out", str(out)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    log = out / "trials" / "0000.log"
    deadline = time.monotonic() + 120
    while not (log.is_file() and "model:" in log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.2)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait() == 128 + signal.SIGTERM
    assert main(["sweep", str(path), "--out", str(out)]) == 0
    study = open_study(load_spec(path), out, create=False)
    stopped, resumed = study.get_trials()
    assert stopped.state.name == "FAIL" and stopped.user_attrs["interrupted"]
    assert resumed.state.name == "COMPLETE" and resumed.user_attrs["resumes"] == 0
    assert resumed.user_attrs["run_dir"] == str(out / "trials" / "0000")


def test_without_optuna_the_command_names_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna raises ImportError
    assert main(["sweep", str(sweep_file(tmp_path, 1))]) == 2
    assert "pip install 'rnnlab[sweep]'" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["greff_chars", "greff_chars_small"])
def test_the_greff_character_sweep_files_are_valid_studies(name):
    root = Path(__file__).resolve().parents[1]
    spec = load_spec(root / "benchmarks" / "configs" / f"{name}.yaml")
    variants = spec.space["cell_option.variant"]["categorical"]
    assert spec.task == "charlm" and spec.reference == "vanilla" and len(variants) == 9
    assert "input_noise" not in spec.space and spec.steps_per_trial
    for number, variant in enumerate(variants):
        params = {"cell_option.variant": variant, "lr": 0.1, "momentum": 0.5, "hidden": 20}
        config = make_config(spec.task, **trial_settings(spec, params, number))
        assert config.cell_options == {"variant": variant} and config.data == "tinyshakespeare"
        assert config.max_steps == spec.steps_per_trial and config.input_noise == 0.0
