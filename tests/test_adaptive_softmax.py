"""Adaptive softmax decoder of the language model (``--adaptive-softmax``) and the
frequency-ordered word vocabulary it relies on."""

from __future__ import annotations

import io
import json
import math

import pytest
import torch
from torch.nn import functional as F

from rnnlab import tasks
from rnnlab.data.words import WordVocabulary
from rnnlab.errors import ConfigError
from rnnlab.models.language_model import LanguageModel
from rnnlab.training import Trainer
from rnnlab.training.export import export_torchscript, zero_state
from rnnlab.training.load import load_run


def test_vocabulary_by_frequency_orders_by_count_then_first_appearance():
    vocab = WordVocabulary.by_frequency("b a c a d c a e".split())
    assert vocab.words == ["a", "c", "b", "d", "e"]  # 3, 2, then 1 each in order of appearance
    assert vocab.encode(["a", "e"]).tolist() == [0, 4]


def _model(**kwargs) -> LanguageModel:
    return LanguageModel(50, 16, 32, 2, adaptive_softmax=[5, 20], **kwargs).double()


def test_forward_gives_normalised_log_probs_that_match_the_loss():
    model = _model().eval()
    tokens = torch.randint(0, 50, (7, 3))
    targets = torch.randint(0, 50, (7, 3))
    with torch.no_grad():
        log_probs, state = model(tokens)
        loss, state_from_loss = model.loss(tokens, targets)
    assert log_probs.shape == (7, 3, 50)
    torch.testing.assert_close(log_probs.logsumexp(-1), torch.zeros(7, 3, dtype=torch.float64))
    # the loss (computed without the rare words' logits) is the NLL of the full distribution,
    # and the cross-entropy of the log-probs as logits is the same number
    nll = -log_probs.gather(-1, targets.unsqueeze(-1)).mean()
    torch.testing.assert_close(loss, nll, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(F.cross_entropy(log_probs.reshape(-1, 50), targets.reshape(-1)), nll)
    for a, b in zip(state, state_from_loss):
        torch.testing.assert_close(a, b)


def test_gradients_reach_every_cluster_and_match_the_full_distribution():
    model = _model()
    tokens = torch.randint(0, 50, (6, 4))
    targets = torch.tensor([[1, 7, 30, 49]] * 6)  # head, first tail, second tail
    loss, _ = model.loss(tokens, targets)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    named = dict(zip([n for n, _ in model.named_parameters()], grads))
    assert all(g.abs().sum() > 0 for n, g in named.items() if n.startswith("adaptive"))
    # the same gradient through the full log-probabilities
    log_probs, _ = model(tokens)
    nll = -log_probs.gather(-1, targets.unsqueeze(-1)).mean()
    for g, h in zip(grads, torch.autograd.grad(nll, list(model.parameters()))):
        torch.testing.assert_close(g, h, rtol=1e-10, atol=1e-12)


def test_generation_samples_from_the_adaptive_distribution():
    model = _model().float()
    out = model.generate(torch.tensor([3, 4]), 20, seed=0)
    assert out.shape == (20,) and int(out.max()) < 50
    assert torch.equal(out, model.generate(torch.tensor([3, 4]), 20, seed=0))


@pytest.mark.parametrize(
    "cutoffs", [[0], [50], [20, 10], [10, 10], [-3]], ids=["zero", "vocab", "down", "same", "neg"]
)
def test_bad_cutoffs_are_refused(cutoffs):
    with pytest.raises(ConfigError, match="cutoffs must increase strictly between 0 and"):
        LanguageModel(50, 12, 12, adaptive_softmax=cutoffs)


def test_a_tail_cluster_without_units_is_refused():
    with pytest.raises(ConfigError, match="= 0 units; give fewer cutoffs or a larger --hidden"):
        LanguageModel(50, 12, 12, adaptive_softmax=[5, 20])


def test_adaptive_softmax_and_tied_weights_are_refused_together():
    with pytest.raises(ConfigError, match="--adaptive-softmax or --tie-weights, not both"):
        LanguageModel(50, 12, 12, adaptive_softmax=[10], tie_weights=True)


def test_tied_embedding_starts_small():
    tied = LanguageModel(1000, 32, 32, tie_weights=True)
    assert float(tied.embedding.weight.detach().abs().max()) <= 0.1


def test_cli_parses_cutoffs_and_rejects_words(capsys):
    from rnnlab.cli.main import main

    assert main(["train", "--task", "wordlm", "--adaptive-softmax", "2000,many"]) == 2
    assert "comma-separated word counts" in capsys.readouterr().err


def test_wordlm_trains_resumes_and_samples_with_adaptive_softmax(tiny_wordlm, tmp_path):
    config = tiny_wordlm(hidden=32, adaptive_softmax=[20, 200], out=str(tmp_path))
    task = tasks.create("wordlm", config)
    counts = {}
    for word in task.words("train"):
        counts[word] = counts.get(word, 0) + 1
    frequencies = [counts[w] for w in task.vocab.words]
    assert frequencies == sorted(frequencies, reverse=True)  # the head holds the frequent words
    trainer = Trainer(task, config, tmp_path / "run", out=io.StringIO(), progress=False)
    first = trainer._validate(None)
    result = trainer.fit()
    assert result["loss"] < first["loss"]
    assert result["ppl"] == pytest.approx(math.exp(result["loss"]))
    assert json.loads((tmp_path / "run" / "config.json").read_text())["adaptive_softmax"] == [
        20,
        200,
    ]
    restored_task, model, _ = load_run(tmp_path / "run", "last", device="cpu")
    assert model.adaptive is not None and model.adaptive.cutoffs == [20, 200, len(task.vocab)]
    assert restored_task.vocab.words == task.vocab.words
    with torch.no_grad():
        assert restored_task.evaluate(model.eval(), "valid")["loss"] == pytest.approx(
            result["loss"]
        )
    assert len(restored_task.sample(model, length=5, seed=1).split()) >= 5


def test_torchscript_step_graph_gives_the_adaptive_log_probs(tmp_path):
    model = LanguageModel(50, 16, 32, adaptive_softmax=[5, 20]).eval()
    path = tmp_path / "step.pt"
    export_torchscript(model, path)
    step = torch.jit.load(str(path))
    tokens = torch.randint(50, (5, 2))
    with torch.no_grad():
        expected, _ = model(tokens)
        state, _ = zero_state(model, batch=2)
        for t in range(5):
            log_probs, *state = step(tokens[t], *state)
            torch.testing.assert_close(log_probs, expected[t], atol=1e-5, rtol=0)
