"""Curriculum learning: the schedules' lengths, synthetic batches and LM chunks at those lengths,
exact resume in the middle of a curriculum, and bad flags."""

from __future__ import annotations

import io
import json

import pytest
import torch
from safetensors.torch import load_file

from conftest import torchrun_two
from rnnlab import tasks
from rnnlab.cli.main import main
from rnnlab.errors import ConfigError
from rnnlab.training import Trainer, make_config
from rnnlab.training.curriculum import Curriculum

SYNTHETIC = ("adding", "copy", "parity", "order", "selective-copy")
EXTRA_STEPS = {"adding": 0, "copy": 20, "parity": 0, "order": 0, "selective-copy": 8}
"""Input steps beyond ``--length`` (copy: 10 data + 10 markers; selective-copy: 8 markers)."""


def lm_config(text_file, **kw):
    settings = dict(
        data=str(text_file),
        hidden=12,
        embed=6,
        seq_len=8,
        batch_size=4,
        eval_every=5,
        sample_every=1000,
        log_every=1,
        max_steps=10,
        curriculum="step",
        curriculum_start=2,
        curriculum_every=7,
    )
    settings.update(kw)
    return make_config("charlm", **settings)


def adding_config(**kw):
    settings = dict(
        length=24,
        hidden=8,
        batch_size=4,
        eval_examples=16,
        eval_every=4,
        sample_every=1000,
        log_every=1,
        max_steps=12,
        curriculum="step",
        curriculum_start=6,
        curriculum_every=3,
    )
    settings.update(kw)
    return make_config("adding", **settings)


def train(config, run_dir, resume=False):
    task = tasks.create(config.task, config, run_dir if resume else None)
    trainer = Trainer(task, config, run_dir, resume=resume, out=io.StringIO(), progress=False)
    trainer.fit()
    return trainer


def records(run_dir, split):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["split"] == split]


# ----------------------------------------------------------------------------- schedules
def test_step_schedule_gives_each_stage_exactly_every_steps():
    curriculum = Curriculum("step", 25, 200, factor=2.0, every=100)
    assert curriculum.lengths() == [25, 50, 100, 200]
    used = []
    for step in range(1, 501):
        used.append(curriculum.length)  # the length the batch of this step is drawn at
        curriculum.after_step(step)
    assert used == [25] * 100 + [50] * 100 + [100] * 100 + [200] * 200


def test_stages_grow_by_the_factor_at_least_one_step_and_end_at_the_full_length():
    assert Curriculum("step", 3, 10, factor=1.2).lengths() == [3, 4, 5, 6, 7, 8, 10]
    assert Curriculum("step", 5, 100, factor=3.0).lengths() == [5, 15, 45, 100]
    assert Curriculum("step", 7, 7).lengths() == [7]


def test_plateau_lengthens_after_patience_validations_without_improvement():
    curriculum = Curriculum("plateau", 10, 40, factor=2.0, patience=2)
    values = [1.0, 0.9, 0.95, 0.92, 0.93, 0.91, 0.94, 0.91, 0.5, 0.4]
    lengths = []
    for step, value in enumerate(values, start=1):
        curriculum.after_validation(step, value, "min")
        lengths.append(curriculum.length)
    # 0.95, 0.92 do not beat 0.9: lengthen. New stage: 0.93 best, 0.91 better, 0.94 and 0.91 do
    # not beat it: lengthen to the full length, where it stays.
    assert lengths == [10, 10, 10, 20, 20, 20, 20, 40, 40, 40]
    assert curriculum.done


def test_plateau_threshold_ignores_small_improvements():
    curriculum = Curriculum("plateau", 4, 16, patience=1, threshold=0.1)
    assert not curriculum.after_validation(1, 2.0, "min")
    assert not curriculum.after_validation(2, 1.7, "min")  # better than 2.0 - 0.2: new best
    assert curriculum.after_validation(3, 1.6, "min")  # not better than 1.7 - 0.17
    assert curriculum.length == 8


def test_plateau_with_higher_is_better_and_repeated_validations():
    curriculum = Curriculum("plateau", 4, 16, factor=2.0, patience=1)
    assert not curriculum.after_validation(10, 0.5, "max")
    assert not curriculum.after_validation(20, 0.6, "max")
    assert not curriculum.after_validation(20, 0.1, "max")  # step 20 again: not counted
    assert curriculum.length == 4
    assert curriculum.after_validation(30, 0.6, "max")  # no improvement on 0.6
    assert curriculum.length == 8
    assert not curriculum.after_step(1000)  # a plateau curriculum ignores steps


def test_curriculum_state_round_trips():
    curriculum = Curriculum("plateau", 4, 16, patience=3)
    for step, value in [(1, 1.0), (2, 1.5), (3, 1.2)]:
        curriculum.after_validation(step, value, "min")
    curriculum.position = 17
    copy = Curriculum("plateau", 4, 16, patience=3)
    copy.load_state_dict(curriculum.state_dict())
    assert (
        copy.state_dict()
        == curriculum.state_dict()
        == {
            "stage": 0,
            "bad_validations": 2,
            "stage_best": 1.0,
            "validated_step": 3,
            "position": 17,
        }
    )


# ----------------------------------------------------------------------------- synthetic tasks
@pytest.mark.parametrize("name", SYNTHETIC)
def test_synthetic_training_batches_follow_the_schedule_and_evaluation_is_full(name):
    config = make_config(
        name,
        length=40,
        hidden=8,
        batch_size=4,
        eval_examples=8,
        curriculum="step",
        curriculum_start=10,
        curriculum_every=2,
    )
    task = tasks.create(name, config)
    assert task.curriculum.lengths() == [10, 20, 40]
    batches = task.train_batches(0)
    seen = []
    for step in range(1, 7):
        x, _ = next(batches)
        seen.append(x.shape[0] - EXTRA_STEPS[name])
        task.curriculum.after_step(step)
    assert seen == [10, 10, 20, 20, 40, 40]
    for split in ("valid", "test"):
        assert {x.shape[0] for x, _ in task.stream.eval_batches(split)} == {40 + EXTRA_STEPS[name]}
    # at the full length the batches are exactly those of a run without curriculum
    plain = tasks.create(name, make_config(name, length=40, batch_size=4, eval_examples=8))
    x, y = next(task.train_batches(0, start=5))
    x0, y0 = next(plain.train_batches(0, start=5))
    assert torch.equal(x, x0) and torch.equal(y, y0)


def test_default_start_is_a_quarter_of_the_length_but_at_least_the_task_minimum():
    task = tasks.create("adding", make_config("adding", length=200, curriculum="step"))
    assert task.curriculum.lengths() == [50, 100, 200]
    assert task.curriculum.every == 500 and task.config.curriculum_every == 500
    task = tasks.create("order", make_config("order", length=20, curriculum="plateau"))
    assert task.curriculum.lengths() == [10, 20]
    assert task.config.curriculum_patience == 2


def test_training_logs_the_length_it_trained_at(tmp_path):
    trainer = train(adding_config(), tmp_path / "run")
    rows = records(tmp_path / "run", "train")
    assert [r["train_length"] for r in rows] == [6] * 3 + [12] * 3 + [24] * 6
    assert trainer.curriculum.length == 24


def test_plateau_run_lengthens_exactly_after_validations_without_improvement(tmp_path):
    config = adding_config(
        curriculum="plateau",
        curriculum_every=None,
        curriculum_patience=1,
        curriculum_start=3,
        eval_every=2,
        max_steps=24,
        lr=0.05,
    )
    train(config, tmp_path / "run")
    replay = Curriculum("plateau", 3, 24, factor=2.0, patience=1)
    expected = {}
    for row in records(tmp_path / "run", "valid"):
        replay.after_validation(row["step"], row["mse"], "min")
        expected[row["step"]] = replay.length
    lengths = {r["step"]: r["train_length"] for r in records(tmp_path / "run", "train")}
    for step in range(3, 25):  # step s trains at the length after the last validation before s
        last_validation = max(v for v in expected if v < step)
        assert lengths[step] == expected[last_validation], step
    assert len(set(lengths.values())) > 1  # the test exercises at least one lengthening


# ----------------------------------------------------------------------------- language models
def test_lm_chunks_of_changing_length_cover_the_streams_contiguously(text_file):
    task = tasks.create("charlm", lm_config(text_file, curriculum_start=1, curriculum_every=3))
    streams = task._train_batches().streams  # [B, L]
    xs, ys, lengths = [], [], []
    for step, (x, y) in enumerate(task.train_batches(0), start=1):
        xs.append(x)
        ys.append(y)
        lengths.append(x.shape[0])
        task.curriculum.after_step(step)
        if step == 10:  # any change of length, even a shorter one, is covered exactly
            task.curriculum.stage = 0
    x, y = torch.cat(xs), torch.cat(ys)
    assert torch.equal(x, streams[:, :-1].t()) and torch.equal(y, streams[:, 1:].t())
    assert lengths[:12] == [1, 1, 1, 2, 2, 2, 4, 4, 4, 8, 1, 8]
    assert task.curriculum.position == streams.shape[1] - 1
    next(task.train_batches(1))  # a new epoch starts at the beginning of the streams
    assert task.curriculum.position == task.curriculum.length


def test_lm_position_in_steps_survives_a_resume(text_file):
    config = lm_config(text_file, curriculum_start=3, curriculum_every=4)
    task = tasks.create("charlm", config)
    batches = task.train_batches(0)
    first = []
    for step in range(1, 10):
        first.append(next(batches))
        task.curriculum.after_step(step)
    state = task.curriculum.state_dict()
    assert state["position"] == 4 * 3 + 4 * 6 + 8  # steps 1-4 at 3, 5-8 at 6, step 9 at 8
    again = tasks.create("charlm", config)
    again.curriculum.load_state_dict(state)
    rest = list(again.train_batches(0, start=9))
    x = torch.cat([x for x, _ in first + rest])
    assert torch.equal(x, task._train_batches().streams[:, :-1].t())


def test_lm_evaluation_and_sampling_use_the_full_seq_len(text_file):
    task = tasks.create("charlm", lm_config(text_file))
    assert task.curriculum.length == 2 and task.config.seq_len == 8
    assert task.steps_per_epoch() == -(-(121 - 1) // 2)  # 486 characters / 4 streams = 121


def weights(run_dir):
    return load_file(str(run_dir / "checkpoints" / "last" / "model.safetensors"))


@pytest.mark.parametrize(
    "kind",
    [
        dict(curriculum="step"),
        dict(
            curriculum="plateau",
            curriculum_every=None,
            curriculum_patience=1,
            curriculum_threshold=0.05,
            eval_every=3,
        ),
    ],
)
def test_lm_resume_in_the_middle_of_a_curriculum_is_exact(text_file, tmp_path, kind):
    # chunks of 2, 4 then 8 steps; the resume at step 10 falls in the stage of 4 and the two
    # epochs (120 steps per stream) end inside the 40 steps
    straight = train(lm_config(text_file, max_steps=40, **kind), tmp_path / "a")
    train(lm_config(text_file, max_steps=10, **kind), tmp_path / "b")
    resumed = train(lm_config(text_file, max_steps=40, **kind), tmp_path / "b", resume=True)
    a, b = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.curriculum.state_dict() == straight.curriculum.state_dict()
    assert straight.epoch == 2
    lengths = [r["train_length"] for r in records(tmp_path / "a", "train")]
    assert lengths == [r["train_length"] for r in records(tmp_path / "b", "train")]
    assert lengths[9] == 4 and lengths[-1] == 8


def test_synthetic_resume_in_the_middle_of_a_curriculum_is_exact(tmp_path):
    train(adding_config(max_steps=12), tmp_path / "a")
    train(adding_config(max_steps=5), tmp_path / "b")
    train(adding_config(max_steps=12), tmp_path / "b", resume=True)
    a, b = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)


# ----------------------------------------------------------------------------- command line
def test_train_config_json_reproduces_the_curriculum(tmp_path, text_file, capsys):
    common = ["--data", str(text_file), "--hidden", "8", "--embed", "4", "--batch-size", "4"]
    args = [*common, "--seq-len", "8", "--max-steps", "3", "--eval-every", "3"]
    curriculum = ["--curriculum", "plateau", "--curriculum-start", "2", "--curriculum-factor", "3"]
    assert main(["train", *args, *curriculum, "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "curriculum plateau: length 2 -> 6 -> 8" in out
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert config["curriculum_patience"] == 2  # the default, filled in
    copy = ["--config", str(tmp_path / "a" / "config.json"), "--out", str(tmp_path / "b")]
    assert main(["train", *copy]) == 0
    again = json.loads((tmp_path / "b" / "config.json").read_text())
    keys = [k for k in config if k.startswith("curriculum")]
    assert len(keys) == 6 and all(again[k] == config[k] for k in keys)
    assert main(["train", "--resume", str(tmp_path / "a"), "--max-steps", "4"]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(tmp_path / "a"), "--curriculum", "step"]) == 2
    assert "cannot change 'curriculum'" in capsys.readouterr().err


def test_bench_takes_the_curriculum_flags(capsys):
    args = ["bench", "adding", "--length", "12", "--hidden", "4", "--max-steps", "2"]
    extra = ["--eval-examples", "8", "--curriculum", "step", "--curriculum-every", "1"]
    assert main([*args, *extra]) == 0
    assert "| adding |" in capsys.readouterr().out


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--curriculum", "linear"], "unknown curriculum 'linear'; choose step or plateau"),
        (["--curriculum-start", "4"], "--curriculum-start needs --curriculum step or"),
        (["--curriculum-patience", "2"], "--curriculum-patience needs --curriculum plateau"),
        (["--curriculum-every", "2"], "--curriculum-every needs --curriculum step"),
        (["--curriculum", "step", "--curriculum-patience", "2"], "is for --curriculum plateau"),
        (["--curriculum", "plateau", "--curriculum-every", "9"], "is for --curriculum step"),
        (["--curriculum", "step", "--curriculum-threshold", "0.1"], "is for --curriculum plat"),
        (["--curriculum-threshold", "0.1"], "--curriculum-threshold needs --curriculum plateau"),
        (["--curriculum", "plateau", "--curriculum-threshold", "1"], "must be in [0, 1), got 1"),
        (["--curriculum", "step", "--curriculum-factor", "1"], "--curriculum-factor must be > 1"),
        (["--curriculum", "step", "--curriculum-every", "0"], "--curriculum-every must be posit"),
        (["--curriculum", "step", "--curriculum-start", "0"], "--curriculum-start must be posit"),
        (["--curriculum", "step", "--curriculum-start", "1"], "between 2 and --length 24, got 1"),
        (["--curriculum", "step", "--curriculum-start", "30"], "between 2 and --length 24"),
        (["--task", "order", "--curriculum", "step", "--curriculum-start", "5"], "between 10 and"),
    ],
)
def test_bad_curriculum_flags_exit_2_with_one_line(tmp_path, capsys, flags, message):
    args = ["train", "--task", "adding", "--length", "24", "--hidden", "4", "--max-steps", "1"]
    assert main([*args, "--out", str(tmp_path / "run"), *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rnnlab: error:"), err
    assert message in err[0]
    assert not (tmp_path / "run").exists()


def test_charlm_start_beyond_seq_len_is_a_config_error(text_file):
    with pytest.raises(ConfigError, match="between 1 and --seq-len 8, got 9"):
        tasks.create("charlm", lm_config(text_file, curriculum_start=9))


def test_a_task_without_curriculum_refuses_the_flag(tmp_path, data_dir, capsys):
    args = ["train", "--task", "names-classify", "--data-dir", str(data_dir), "--max-steps", "1"]
    assert main([*args, "--curriculum", "step", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "rnnlab: error: task 'names-classify' has no curriculum; --curriculum works with the "
        "synthetic tasks and the language models"
    ]
    assert not (tmp_path / "run").exists()


def test_two_gloo_processes_follow_the_one_process_curriculum(tmp_path, text_file):
    """Every rank draws the same chunk lengths and keeps the same stream position."""
    text_file.write_text(text_file.read_text() * 4)
    settings = ["--hidden", "12", "--embed", "6", "--seq-len", "8", "--batch-size", "4"]
    settings += ["--log-every", "1", "--eval-every", "3", "--max-steps", "6"]
    settings += ["--curriculum", "step", "--curriculum-start", "2", "--curriculum-every", "2"]
    done = torchrun_two(["train", "--data", str(text_file), *settings], tmp_path / "two")
    assert done.returncode == 0, done.stderr  # all of it: the cause is early
    assert main(["train", "--data", str(text_file), "--out", str(tmp_path / "one"), *settings]) == 0
    one, two = records(tmp_path / "one", "train"), records(tmp_path / "two", "train")
    assert (
        [r["train_length"] for r in two] == [r["train_length"] for r in one] == [2, 2, 4, 4, 8, 8]
    )
    assert [r["loss"] for r in two] == pytest.approx([r["loss"] for r in one], abs=1e-5)
