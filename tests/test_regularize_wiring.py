"""Regularisers end to end: keywords of the drop-in layers and the language model, the
``rnnlab train`` flags (weight noise and spectral norm in the trainer), and word-level PTB."""

from __future__ import annotations

import io
import math

import pytest
import torch

import rnnlab
from rnnlab import tasks
from rnnlab.data.ptb import load_ptb_words
from rnnlab.data.words import EOS, WordVocabulary
from rnnlab.errors import ConfigError, DataError
from rnnlab.layers.stack import Stack
from rnnlab.layers.unroll import Recurrent
from rnnlab.models.language_model import LanguageModel
from rnnlab.training import Trainer, make_config
from rnnlab.training.regularization import weight_noise

LAYER_REGULARIZERS = [
    {"recurrent_dropout": 0.3},
    {"variational_dropout": 0.3},
    {"weight_drop": 0.4},
    {"zoneout_cell": 0.3, "zoneout_hidden": 0.2},
    {"recurrent_dropout": 0.2, "weight_drop": 0.3, "zoneout_cell": 0.1},
]
LM_REGULARIZERS = [
    {"dropout": 0.4},
    {"variational_dropout": 0.4},
    {"recurrent_dropout": 0.4},
    {"weight_drop": 0.4},
    {"embedding_dropout": 0.4},
    {"zoneout_cell": 0.4, "zoneout_hidden": 0.3},
]


@pytest.mark.parametrize("cls", [rnnlab.LSTM, rnnlab.GRU, rnnlab.RNN])
@pytest.mark.parametrize("kw", LAYER_REGULARIZERS, ids=lambda kw: "+".join(kw))
def test_drop_in_layer_keeps_torch_names_and_regularises_only_in_training(cls, kw):
    if cls is not rnnlab.LSTM and "zoneout_cell" in kw:
        kw = {k: v for k, v in kw.items() if k != "zoneout_cell"} or {"zoneout_hidden": 0.2}
    torch.manual_seed(0)
    reference = getattr(torch.nn, cls.__name__)(5, 7, num_layers=2, bidirectional=True)
    layer = cls(5, 7, num_layers=2, bidirectional=True, **kw)
    assert list(layer.state_dict()) == list(reference.state_dict())
    assert [n for n, _ in layer.named_parameters()] == [n for n, _ in reference.named_parameters()]
    layer.load_state_dict(reference.state_dict())
    x = torch.randn(6, 3, 5)
    layer.eval()
    y_eval, _ = layer(x)
    zoneout = any(k.startswith("zoneout") for k in kw)
    if zoneout:  # the expectation: deterministic, not the plain network
        assert torch.equal(y_eval, layer(x)[0])
        assert not torch.allclose(y_eval, reference(x)[0], atol=1e-4)
    else:  # the identity at evaluation (and torch's fused kernel again)
        assert layer._fused_kernel() is not None
        torch.testing.assert_close(y_eval, reference(x)[0])
    layer.train()
    assert layer._fused_kernel() is None
    y1, _ = layer(x)
    y2, _ = layer(x)
    assert not torch.allclose(y1, y2)  # fresh masks on every pass, and active in training


def test_drop_in_layer_regulariser_errors():
    with pytest.raises(ConfigError, match="recurrent_dropout must be a probability"):
        rnnlab.LSTM(3, 4, recurrent_dropout=1.0)
    with pytest.raises(ConfigError, match="not both"):
        rnnlab.LSTM(3, 4, variational_dropout=0.2, recurrent_dropout=0.2)
    with pytest.raises(ConfigError, match="variational_dropout replaces dropout"):
        rnnlab.LSTM(3, 4, 2, dropout=0.2, variational_dropout=0.2)
    with pytest.raises(ConfigError, match="zoneout_hidden"):
        rnnlab.GRU(3, 4, zoneout_hidden=-0.1)


def test_variational_stack_dropout_one_mask_across_time():
    torch.manual_seed(0)
    layer = rnnlab.LSTM(4, 16, 2, variational_dropout=0.5)
    assert layer.stack.locked and layer.stack.dropout == 0.5
    stack = Stack([Recurrent(rnnlab.cells.create("rnn", input_size=4, hidden_size=4))] * 1)
    stack.dropout, stack.locked = 0.5, True
    y = stack._dropout(torch.ones(9, 3, 20))
    assert torch.equal(y, y[:1].expand_as(y))  # the same mask at every step
    assert (y == 0).any() and (y == 2).any()
    stack.eval()
    assert torch.equal(stack._dropout(torch.ones(9, 3, 20)), torch.ones(9, 3, 20))


@pytest.mark.parametrize("kw", LM_REGULARIZERS, ids=lambda kw: "+".join(kw))
def test_language_model_regularisers_keep_names_and_act_only_in_training(kw):
    torch.manual_seed(0)
    plain = LanguageModel(11, 6, 8, 2)
    model = LanguageModel(11, 6, 8, 2, **kw)
    assert list(model.state_dict()) == list(plain.state_dict())
    model.load_state_dict(plain.state_dict())
    tokens = torch.randint(0, 11, (7, 3))
    model.eval(), plain.eval()
    if any(k.startswith("zoneout") for k in kw):
        assert torch.equal(model(tokens)[0], model(tokens)[0])
        assert not torch.allclose(model(tokens)[0], plain(tokens)[0], atol=1e-4)
    else:
        torch.testing.assert_close(model(tokens)[0], plain(tokens)[0])
    model.train()
    assert not torch.allclose(model(tokens)[0], model(tokens)[0])


def test_language_model_penalties_only_in_training():
    torch.manual_seed(0)
    tokens, targets = torch.randint(0, 11, (7, 3)), torch.randint(0, 11, (7, 3))
    plain = LanguageModel(11, 6, 8, 2)
    model = LanguageModel(11, 6, 8, 2, ar=2.0, tar=1.0, recurrent_l2=0.1)
    model.load_state_dict(plain.state_dict())
    with pytest.warns(UserWarning, match="forgetting"):
        penalised = model.loss(tokens, targets)[0]
    assert penalised > plain.loss(tokens, targets)[0] + 1e-3
    model.eval(), plain.eval()
    torch.testing.assert_close(model.loss(tokens, targets)[0], plain.loss(tokens, targets)[0])


def test_tied_weights_share_the_embedding():
    model = LanguageModel(11, 8, 8, 2, tie_weights=True)
    assert "decoder.weight" not in model.state_dict()
    logits, _ = model(torch.randint(0, 11, (4, 2)))
    logits.sum().backward()
    assert model.embedding.weight.grad is not None
    with torch.no_grad():
        model.embedding.weight[3].zero_()
        model.decoder_bias.zero_()
    assert torch.all(model(torch.randint(0, 11, (4, 2)))[0][..., 3] == 0)
    with pytest.raises(ConfigError, match="tied embeddings need --embed equal to --hidden"):
        LanguageModel(11, 6, 8, 2, tie_weights=True)


def test_weight_noise_context_perturbs_then_restores_exactly():
    model = LanguageModel(11, 6, 8, 1)
    clean = {k: v.clone() for k, v in model.state_dict().items()}
    config = make_config("charlm", weight_noise=0.1)
    with weight_noise(model, config):
        noisy = model.state_dict()
        assert all(not torch.equal(noisy[k], clean[k]) for k in clean)
    assert all(torch.equal(v, clean[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"recurrent_dropout": 1.0}, "--recurrent-dropout must be a probability"),
        ({"weight_drop": -0.1}, "--weight-drop must be a probability"),
        ({"zoneout_cell": 1.5}, "--zoneout-cell must be a probability"),
        ({"embedding_dropout": 1.0}, "--embedding-dropout must be a probability"),
        ({"variational_dropout": 1.0}, "--variational-dropout must be a probability"),
        ({"ar": -1.0}, "--ar must be zero or positive"),
        ({"tar": -1.0}, "--tar must be zero or positive"),
        ({"recurrent_l2": -1.0}, "--recurrent-l2 must be zero or positive"),
        ({"weight_noise": -0.1}, "--weight-noise must be zero or positive"),
        ({"spectral_norm": 0.0}, "--spectral-norm must be positive"),
        ({"dropout": 0.2, "variational_dropout": 0.2}, "not both"),
    ],
)
def test_bad_regularisation_flags_are_config_errors(flags, message):
    with pytest.raises(ConfigError, match=message):
        make_config("charlm", **flags)


def test_model_regularisers_refused_by_tasks_that_do_not_build_them():
    with pytest.raises(ConfigError, match="only the language-model tasks"):
        make_config("sst-tree", zoneout_cell=0.2)


def test_ptb_words_and_vocabulary(data_dir):
    words = load_ptb_words("valid", data_dir)
    assert len(words) == 73_760 and words.count(EOS) == 3_370
    vocab = WordVocabulary.from_words(load_ptb_words("train", data_dir))
    assert len(vocab) == 10_000
    assert vocab.decode(vocab.encode(words[:20])) == words[:20]
    with pytest.raises(DataError, match="not in the model's vocabulary"):
        vocab.encode(["zzzqqq"])


def test_wordlm_trains_with_regularisers_and_reports_perplexity(tiny_wordlm, tmp_path):
    torch.manual_seed(0)
    config = tiny_wordlm(
        tie_weights=True,
        variational_dropout=0.2,
        weight_drop=0.2,
        zoneout_cell=0.1,
        embedding_dropout=0.1,
        ar=1.0,
        tar=1.0,
        weight_noise=0.01,
        spectral_norm=0.9,
    )
    task = tasks.create("wordlm", config)
    trainer = Trainer(task, config, tmp_path / "run", out=io.StringIO(), progress=False)
    first = trainer._validate(None)
    result = trainer.fit()
    assert result["loss"] < first["loss"]
    assert result["ppl"] == pytest.approx(math.exp(result["loss"]))
    for name, weight in trainer.model.named_parameters():
        if name.endswith("weight_hh"):  # spectral norm constrained after every step
            for block in weight.detach().split(weight.shape[1]):
                assert torch.linalg.matrix_norm(block, ord=2) <= 0.9 + 1e-4
    text = task.sample(trainer.model, length=5, seed=1)
    assert len(text.split()) >= 5
    restored = tasks.create("wordlm", config, tmp_path / "run")
    assert restored.vocab.words == task.vocab.words


def test_wordlm_passes_cell_options_and_ties_weights(tiny_ptb):
    config = make_config(
        "wordlm",
        data_dir=str(tiny_ptb),
        hidden=16,
        embed=16,
        tie_weights=True,
        cell_options={"layer_norm": True, "forget_bias": 3.0},
    )
    model = tasks.create("wordlm", config).build_model()
    lstm_cells = [m for m in model.modules() if type(m).__name__ == "LSTMCell"]
    assert lstm_cells and all(c.layer_norm and c.forget_bias == 3.0 for c in lstm_cells)
    assert model.tie_weights and not hasattr(model, "decoder")
