"""``rnnlab export --format torchscript``: the one-step graph matches the PyTorch model."""

from __future__ import annotations

import pytest
import torch

from rnnlab.cli.main import main
from rnnlab.models.language_model import LanguageModel
from rnnlab.training.export import export_torchscript, zero_state


@pytest.mark.parametrize("cell, layers", [("lstm", 2), ("gru", 1), ("rnn", 1)])
def test_step_graph_matches_the_sequence_model(tmp_path, cell, layers):
    torch.manual_seed(0)
    model = LanguageModel(11, 6, 8, layers, cell, 0.0).eval()
    path = tmp_path / "step.pt"
    export_torchscript(model, path)
    step = torch.jit.load(str(path))
    tokens = torch.randint(11, (7, 3))  # [T, B]: the traced graph takes any batch
    with torch.no_grad():
        expected, _ = model(tokens)
        state, _ = zero_state(model, batch=3)
        for t in range(7):
            logits, *state = step(tokens[t], *state)
            torch.testing.assert_close(logits, expected[t], atol=1e-4, rtol=0)


def test_export_command(tmp_path, capsys):
    data = tmp_path / "text.txt"
    data.write_text("abc abd abe " * 200)
    run = tmp_path / "run"
    args = ["train", "--data", str(data), "--hidden", "8", "--embed", "4", "--seq-len", "8"]
    assert main([*args, "--batch-size", "4", "--max-steps", "2", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["export", "--run", str(run)]) == 0
    out = capsys.readouterr().out
    assert "model.step.pt" in out and "2 state tensor(s)" in out
    assert float(out.rsplit(" ", 1)[1]) < 1e-4
