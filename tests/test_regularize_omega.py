"""``--omega``: Pascanu et al.'s regulariser in the language model's training loss changes the
gradient by exactly WEIGHT * dOmega/dtheta; the flag is validated; Omega sums over layers."""

from __future__ import annotations

import copy
import io

import pytest
import torch
import torch.nn.functional as F

import rnnlab
from rnnlab import tasks
from rnnlab.errors import ConfigError
from rnnlab.models.language_model import LanguageModel
from rnnlab.regularize import gradient_norm_preservation
from rnnlab.regularize.penalties import gradient_norm_penalty, unroll_keeping_states
from rnnlab.training import Trainer, make_config
from rnnlab.training.regularization import model_regularizers


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_omega_flag_changes_the_gradient_by_weight_times_domega(cell):
    weight = 0.7
    options = model_regularizers(make_config("charlm", omega=weight))
    assert options["omega"] == weight
    torch.manual_seed(0)
    model = LanguageModel(11, 5, 6, 1, cell=cell, **options).double()
    plain = LanguageModel(11, 5, 6, 1, cell=cell).double()
    plain.load_state_dict(model.state_dict())
    tokens, targets = torch.randint(0, 11, (6, 3)), torch.randint(0, 11, (6, 3))
    params = list(model.parameters())
    regularised = torch.autograd.grad(model.loss(tokens, targets)[0], params)
    unregularised = torch.autograd.grad(plain.loss(tokens, targets)[0], list(plain.parameters()))

    # Omega of the same loss from the public one-cell function, independently of the model
    def cross_entropy(y):
        return F.cross_entropy(model.decoder(y).reshape(-1, 11), targets.reshape(-1))

    _, omega = gradient_norm_preservation(
        model.layers[0].cell, model.embedding(tokens), cross_entropy
    )
    domega = torch.autograd.grad(omega, params, allow_unused=True)
    domega = [torch.zeros_like(p) if d is None else d for p, d in zip(params, domega)]
    assert sum(d.abs().sum() for d in domega) > 1e-3  # Omega moves the recurrent weights
    for with_omega, without, d in zip(regularised, unregularised, domega, strict=True):
        torch.testing.assert_close(with_omega, without + weight * d, rtol=1e-9, atol=1e-12)
    model.eval(), plain.eval()  # a training penalty only
    torch.testing.assert_close(model.loss(tokens, targets)[0], plain.loss(tokens, targets)[0])


def test_omega_sums_over_layers():
    torch.manual_seed(1)
    cells = [rnnlab.cells.create("lstm", input_size=n, hidden_size=4).double() for n in (3, 4)]
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    first = unroll_keeping_states(cells[0], x)
    second = unroll_keeping_states(cells[1], first.outputs)
    loss = second.outputs.pow(2).sum() + first.outputs[-1].sum()
    both = gradient_norm_penalty(loss, [(cells[0], first), (cells[1], second)])
    alone = [gradient_norm_penalty(loss, [run]) for run in [(cells[0], first), (cells[1], second)]]
    torch.testing.assert_close(both, alone[0] + alone[1])
    assert alone[0] > 0 and alone[1] > 0


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"omega": -1.0}, "--omega must be zero or positive"),
        ({"omega": 1.0, "zoneout_hidden": 0.1}, "give --omega or --zoneout"),
    ],
)
def test_bad_omega_flags_are_config_errors(flags, message):
    with pytest.raises(ConfigError, match=message):
        make_config("charlm", **flags)


def test_omega_refused_by_tasks_without_a_language_model():
    with pytest.raises(ConfigError, match="--omega: only the language-model tasks"):
        make_config("sst-tree", omega=1.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"zoneout_cell": 0.2}, "give --omega or --zoneout"),
        ({"batch_norm": True}, "batch norm's running statistics"),
        ({"cell": "esn"}, "needs trainable recurrent weights"),
    ],
)
def test_language_model_refuses_omega_it_cannot_compute(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        LanguageModel(11, 5, 6, 1, omega=1.0, **kwargs)


def test_omega_without_parameters_in_the_jacobian_is_a_config_error():
    model = LanguageModel(11, 5, 6, 1, cell="mingru", omega=1.0)
    tokens = torch.randint(0, 11, (4, 2))
    with pytest.raises(ConfigError, match="has no effect on the 'mingru' cell"):
        model.loss(tokens, tokens)


def test_omega_keeps_the_dropout_masks_of_the_pass():
    """With recurrent dropout and DropConnect, Omega's Jacobian uses the pass's masks (the
    wrappers keep them for the pass), so the loss stays finite and reproducible."""
    torch.manual_seed(2)
    model = LanguageModel(11, 5, 6, 2, recurrent_dropout=0.3, weight_drop=0.3, omega=1.0)
    tokens = torch.randint(0, 11, (4, 2))
    twin = copy.deepcopy(model)
    torch.manual_seed(3)
    loss = model.loss(tokens, tokens)[0]
    torch.manual_seed(3)
    torch.testing.assert_close(loss, twin.loss(tokens, tokens)[0])
    loss.backward()
    assert all(p.grad is not None for p in model.layers.parameters())


def test_charlm_trains_with_omega(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 40)
    config = make_config(
        "charlm",
        data=str(text),
        hidden=8,
        embed=6,
        layers=2,
        seq_len=8,
        batch_size=4,
        max_steps=4,
        eval_every=1000,
        sample_every=1000,
        omega=0.5,
    )
    task = tasks.create("charlm", config)
    trainer = Trainer(task, config, tmp_path / "run", out=io.StringIO(), progress=False)
    assert trainer.model.omega == 0.5
    before = [p.detach().clone() for p in trainer.model.layers.parameters()]
    trainer.fit()
    after = list(trainer.model.layers.parameters())
    assert all(not torch.equal(a, b) for a, b in zip(after, before))
