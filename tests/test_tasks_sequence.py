"""The sequence tasks on the real data: a few training steps, evaluation, a run directory that
``rnnlab predict`` loads (skipped without the shared data)."""

import io

import pytest
import torch

from rnnlab import tasks
from rnnlab.cli.main import main
from rnnlab.data.vocabulary import Vocabulary
from rnnlab.training.config import make_config
from rnnlab.training.trainer import Trainer

TINY = {"hidden": 8, "embed": 8, "batch_size": 16, "eval_every": 1000, "sample_every": 1000}


def _train(task_name, tmp_path, data_dir, steps=3, **flags):
    config = make_config(task_name, data_dir=str(data_dir), max_steps=steps, **TINY, **flags)
    task = tasks.create(task_name, config)
    run = tmp_path / task_name
    trainer = Trainer(task, config, run, out=io.StringIO(), progress=False)
    trainer.fit()
    return task, trainer, run


def test_names_classify_trains_evaluates_and_predicts(tmp_path, data_dir, capsys):
    task, trainer, run = _train("names-classify", tmp_path, data_dir, steps=5)
    metrics = task.evaluate(trainer.model.eval(), "test")
    assert 0 <= metrics["accuracy"] <= 1 and len([k for k in metrics if "/" in k]) == 18
    assert (run / "confusion-test.png").stat().st_size > 1000
    assert main(["predict", "--run", str(run), "Nguyen", "Schmidt"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Nguyen: ") and len(lines) == 2


def test_names_generate_logs_teacher_prob_and_samples(tmp_path, data_dir, capsys):
    config = make_config(
        "names-generate", data_dir=str(data_dir), scheduled_sampling="linear", ss_c=1e-4, **TINY
    )
    task = tasks.create("names-generate", config)
    model = task.build_model()
    batches = task.train_batches(epoch=1, start=2)
    *_, step = next(batches)
    assert step == task.steps_per_epoch() + 2
    _, _, metrics = task.loss(model, next(batches), None)
    assert metrics["teacher_prob"] == pytest.approx(1 - 1e-4 * (step + 1))
    assert task.evaluate(model.eval(), "valid")["teacher_prob"] == metrics["teacher_prob"]
    lines = task.sample(model.eval(), seed=0).splitlines()
    assert len(lines) == 6 and lines[0].strip().startswith("Russian:")


@pytest.mark.parametrize("classes", [5, 2])
def test_sst_root_labels(tmp_path, data_dir, classes):
    # restored from a run directory's vocabulary, so only the test split is parsed
    Vocabulary(["a", "film", "good", "bad"]).save(tmp_path / "vocab.json")
    config = make_config("sst", data_dir=str(data_dir), classes=classes, bidirectional=True, **TINY)
    task = tasks.create("sst", config, run_dir=tmp_path)
    test = task.data("test")
    assert len(test) == (2210 if classes == 5 else 1821)
    assert {label for _, label in test} == set(range(classes))
    model = task.build_model()
    tokens, lengths, labels = task._encode(test[:16])
    loss, _, metrics = task.loss(model, (tokens, lengths, labels), None)
    assert torch.isfinite(loss) and 0 <= metrics["accuracy"] <= 1
    assert task.predict(model.eval(), ["a good film"])[0].endswith(": a good film")


def test_translate_batches_loss_and_predict(data_dir):
    config = make_config("translate", data_dir=str(data_dir), **TINY)
    task = tasks.create("translate", config)
    assert len(task.pairs("train")) == 29000
    model = task.build_model()
    src, src_lengths, tgt, tgt_lengths, step = next(task.train_batches(0))
    assert src.shape[1] == tgt.shape[1] == 16 and step == 0
    loss, _, metrics = task.loss(model, (src, src_lengths, tgt, tgt_lengths, step), None)
    assert torch.isfinite(loss) and metrics["teacher_prob"] == 1.0
    out = task.predict(model.eval(), ["a dog runs on the beach."])
    assert len(out) == 1 and isinstance(out[0], str)


def test_names_generate_sample_leaves_the_global_rng_alone(data_dir):
    config = make_config("names-generate", data_dir=str(data_dir), **TINY)
    task = tasks.create("names-generate", config)
    model = task.build_model().eval()
    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    first = task.sample(model, seed=5)
    assert torch.equal(torch.rand(3), expected)
    assert task.sample(model, seed=5) == first
