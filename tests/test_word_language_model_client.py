"""A real client of torch.nn.LSTM with the layer swapped: PyTorch's word_language_model example
(trimmed, tests/fixtures/word_language_model) trained once with torch.nn.LSTM and once with
rnnlab.LSTM under the same seed. Same initial weights bit for bit, the same loss at every step,
valid and test loss bit for bit (one fused kernel call with the same weights and the same dropout
draws), and the example's final whole-model ``torch.load(weights_only=True)`` with only torch's
classes allowlisted works for both."""

from __future__ import annotations

import importlib.util
import random
import re
import runpy
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import rnnlab

EXAMPLE = Path(__file__).parent / "fixtures" / "word_language_model"
FLAGS = ["--emsize", "16", "--nhid", "16", "--nlayers", "2", "--dropout", "0.2"]
FLAGS += ["--batch_size", "4", "--bptt", "10", "--epochs", "2", "--seed", "1111"]


def write_corpus(folder: Path) -> Path:
    """train/valid/test.txt: sentences of a 40-word Markov chain (about 2,600 training words)."""
    rng = random.Random(0)
    words = [f"w{i}" for i in range(40)]
    successors = {word: rng.sample(words, 4) for word in words}

    def sentence() -> str:
        word = rng.choice(words)
        out = [word]
        for _ in range(rng.randint(4, 11)):
            word = rng.choice(successors[word])
            out.append(word)
        return " ".join(out)

    folder.mkdir()
    for split, lines in (("train", 300), ("valid", 40), ("test", 40)):
        text = "\n".join(sentence() for _ in range(lines)) + "\n"
        (folder / f"{split}.txt").write_text(text, encoding="utf8")
    return folder


def run_example(layers: str, data: Path, save: Path, monkeypatch, capsys) -> list[str]:
    """Run the example's main.py as a script (in this process: torch is imported already) and
    return the lines it printed."""
    argv = ["main.py", "--data", str(data), "--save", str(save), *FLAGS, "--layers", layers]
    with monkeypatch.context() as patch:
        patch.setattr(sys, "argv", argv)
        patch.syspath_prepend(str(EXAMPLE))
        patch.delitem(sys.modules, "model", raising=False)  # main.py's `from model import ...`
        capsys.readouterr()
        runpy.run_path(str(EXAMPLE / "main.py"), run_name="__main__")
        return capsys.readouterr().out.splitlines()


@pytest.fixture
def example(monkeypatch):
    """The example's model.py as module ``wlm_model`` (in sys.modules, so pickle finds it)."""
    spec = importlib.util.spec_from_file_location("wlm_model", EXAMPLE / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setitem(sys.modules, "wlm_model", module)
    return module


def test_initial_weights_are_torchs_bit_for_bit(example):
    states = []
    for layers in (nn, rnnlab):
        torch.manual_seed(1111)
        states.append(example.RNNModel("LSTM", 41, 16, 16, 2, 0.2, layers=layers).state_dict())
    expected, got = states
    assert list(got) == list(expected)
    for name in expected:
        assert torch.equal(got[name], expected[name]), name


def test_swapped_layer_trains_with_torchs_losses(tmp_path, monkeypatch, capsys):
    data = write_corpus(tmp_path / "data")
    reference = run_example("torch.nn", data, tmp_path / "torch.pt", monkeypatch, capsys)
    ours = run_example("rnnlab", data, tmp_path / "rnnlab.pt", monkeypatch, capsys)
    assert reference[0] == "rnn torch.nn.modules.rnn.LSTM"
    assert ours[0] == "rnn rnnlab.layers.torch_compat.LSTM"
    steps = [line for line in reference if line.startswith("| epoch")]
    assert len(steps) == 144  # 72 steps in each of the two epochs
    # every step's training loss, both valid losses and the loss of the reloaded model on test
    assert ours[1:] == reference[1:]
    assert re.search(r"test loss \d", reference[-1])
    assert (tmp_path / "rnnlab.pt").stat().st_size > 0


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN_TANH"])
def test_saved_whole_model_loads_with_torchs_allowlist(kind, example, tmp_path):
    model = example.RNNModel(kind, 41, 16, 16, 2, 0.2, layers=rnnlab)
    torch.save(model, tmp_path / "model.pt")
    allowed = [example.RNNModel, nn.Dropout, nn.Embedding, nn.Linear, nn.LSTM, nn.GRU, nn.RNN]
    with torch.serialization.safe_globals(allowed):
        loaded = torch.load(tmp_path / "model.pt", weights_only=True)
    assert type(loaded.rnn) is type(model.rnn)
    assert list(loaded.state_dict()) == list(model.state_dict())
    model.eval(), loaded.eval()
    tokens = torch.randint(0, 41, (7, 3))
    torch.testing.assert_close(
        loaded(tokens, loaded.init_hidden(3))[0],
        model(tokens, model.init_hidden(3))[0],
        rtol=0,
        atol=0,
    )
