"""``rnnlab export --format onnx``: the one-step ONNX graph, run by onnxruntime, is the model."""

from __future__ import annotations

import sys

import pytest
import torch

from rnnlab.cli.main import main
from rnnlab.errors import ConfigError
from rnnlab.training.load import load_run

TEXT = "the cat sat on the mat. the dog sat on the log. " * 30
TINY = ["--hidden", "8", "--embed", "4", "--seq-len", "8", "--batch-size", "4", "--layers", "2"]


@pytest.mark.parametrize(
    "cell, states",
    [
        (["--cell", "lstm"], 4),  # h and c of 2 layers
        (["--cell", "gru"], 2),
        (["--cell", "lstm", "--cell-option", "layer_norm=True"], 4),
    ],
    ids=["lstm", "gru", "layer-norm-lstm"],
)
def test_onnx_export_of_a_trained_run_matches_pytorch(tmp_path, capsys, cell, states):
    for package in ("onnx", "onnxruntime", "onnxscript"):
        pytest.importorskip(package)
    from rnnlab.training.export import OnnxRuntimeStep, flatten_state, zero_state

    data = tmp_path / "text.txt"
    data.write_text(TEXT)
    run = tmp_path / "run"
    args = ["train", "--data", str(data), *TINY, *cell, "--max-steps", "3", "--eval-every", "3"]
    assert main([*args, "--sample-every", "100", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["export", "--run", str(run), "--format", "onnx"]) == 0
    out = capsys.readouterr().out
    assert "model.step.onnx" in out and "(onnxruntime)" in out
    assert f"with {states} state tensor(s)" in out
    assert float(out.rsplit(" ", 1)[1]) < 1e-4

    task, model, _ = load_run(run)
    step = OnnxRuntimeStep(run / "model.step.onnx")
    # 5 consecutive steps of 3 streams of real text against the model's sequence forward
    ids = task.vocab.encode(TEXT[:15]).view(3, 5).T  # [T=5, B=3]
    with torch.no_grad():
        expected, expected_state = model(ids)
    state, _ = zero_state(model, batch=3)
    for t in range(5):
        logits, *state = step(ids[t], *state)
        torch.testing.assert_close(logits, expected[t], atol=1e-4, rtol=0)
    for ours, theirs in zip(state, flatten_state(expected_state), strict=True):
        torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)

    # greedy decoding through onnxruntime = rnnlab's greedy sample (top-k 1)
    prime = "the "
    greedy = task.sample(model, length=40, prime=prime, top_k=1, seed=0)
    state, _ = zero_state(model, batch=1)
    for token in task.vocab.encode(prime):
        logits, *state = step(token.view(1), *state)
    tokens = []
    for _ in range(40):
        token = logits.argmax(-1)
        tokens.append(int(token))
        logits, *state = step(token, *state)
    assert prime + task.vocab.decode(torch.tensor(tokens)) == greedy


def test_a_model_the_exporter_fails_on_is_a_config_error(tmp_path, monkeypatch):
    """(The unitary cell's complex state is such a model; its real export takes 10 s.)"""
    pytest.importorskip("onnxscript")
    from rnnlab.models.language_model import LanguageModel
    from rnnlab.training.export import export_onnx

    def fail(*args, **kwargs):
        raise torch.onnx.OnnxExporterError("no ONNX type for complex tensors")

    monkeypatch.setattr(torch.onnx, "export", fail)
    with pytest.raises(ConfigError, match="--format torchscript"):
        export_onnx(LanguageModel(5, 3, 4, 1, "unitary"), tmp_path / "step.onnx")


def test_missing_onnx_packages_are_one_line_naming_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import raises
    assert main(["export", "--run", str(tmp_path), "--format", "onnx"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'rnnlab[onnx]'" in err[0]


def test_export_refuses_models_that_are_not_language_models(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--task", "adding", "--hidden", "4", "--max-steps", "1", "--out", str(run)]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["export", "--run", str(run)]) == 2
    assert "language models" in capsys.readouterr().err
