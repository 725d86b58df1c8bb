"""The analyses of a training run: --log-grad-flow in the trainer and `rnnlab analyze --run`."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch

from rnnlab import tasks
from rnnlab.analysis.runs import char_activations, first_cell_inputs
from rnnlab.cli.main import main
from rnnlab.training import Trainer, make_config
from rnnlab.training.load import load_run

PYTHON = '''def f(x):
    """Say it."""
    if x:  # a comment
        return [x, (x + 1)]
    return "none"
'''


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("run")
    (root / "code.py").write_text(PYTHON * 12)
    config = make_config(
        "charlm", data=str(root / "code.py"), splits="80/10/10", hidden=8, embed=4,
        layers=2, seq_len=10, batch_size=2, max_steps=5, eval_every=5, sample_every=1000,
        log_grad_flow=2,
    )  # fmt: skip
    run = root / "run"
    task = tasks.create("charlm", config)
    Trainer(task, config, run, out=io.StringIO(), progress=False).fit()
    torch.set_num_threads(threads)
    return run


def test_trainer_logs_gradient_flow(run_dir):
    records = [json.loads(line) for line in (run_dir / "grad_flow.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [0, 2, 4]
    assert all(len(r["h"]) == 11 and len(r["c"]) == 11 for r in records)  # seq_len 10: t = 0..10


def test_activations_are_the_states_of_the_chosen_layer(run_dir):
    task, model, _ = load_run(run_dir)
    text = PYTHON[:30]
    top = char_activations(task, model, text, "h", layer=-1)
    bottom_c = char_activations(task, model, text, "c", layer=0)
    logits, states = model(task.vocab.encode(text).view(-1, 1))
    np.testing.assert_allclose(top[-1], states[1].h[0].double().detach().numpy(), atol=1e-6)
    np.testing.assert_allclose(bottom_c[-1], states[0].c[0].double().detach().numpy(), atol=1e-6)
    assert top.shape == (30, 8)
    cell, x = first_cell_inputs(task, model, [text[:10], text[10:20]])
    assert x.shape == (10, 2, 4) and cell is model.layers[0].cell


@pytest.mark.parametrize(
    "argv",
    [
        ["grad-flow"],
        ["spectrum"],
        ["contractivity", "--seq-len", "6", "--batch", "2"],
        ["cells", "--text", "SNIPPET", "--top", "3"],
    ],
)
def test_analyze_a_run(run_dir, tmp_path, capsys, argv):
    snippet = tmp_path / "snippet.py"
    snippet.write_text(PYTHON)
    argv = [str(snippet) if a == "SNIPPET" else a for a in argv]
    out = tmp_path / ("page.html" if argv[0] == "cells" else "figure.png")
    assert main(["analyze", *argv, "--run", str(run_dir), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed
    if argv[0] == "cells":
        assert "in_string      top cell" in printed and "in_comment     top cell" in printed
        assert 'const DATA = {"text": "def f(x)' in out.read_text()
