"""rnnlab.LSTM/GRU/RNN against torch.nn.LSTM/GRU/RNN: outputs, final states and gradients after
load_state_dict in both directions, on the fused multi-layer path and the layer-by-layer path."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.func import functional_call
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnlab
from rnnlab.layers import torch_compat

PAIRS = {"LSTM": (rnnlab.LSTM, nn.LSTM), "GRU": (rnnlab.GRU, nn.GRU), "RNN": (rnnlab.RNN, nn.RNN)}

CONFIGS = [
    ("LSTM", {"num_layers": 2}),
    ("LSTM", {"num_layers": 2, "bidirectional": True, "batch_first": True}),
    ("LSTM", {"num_layers": 2, "bidirectional": True, "proj_size": 3}),
    ("LSTM", {"bias": False, "batch_first": True}),
    ("GRU", {"num_layers": 2, "bidirectional": True, "batch_first": True}),
    ("GRU", {"num_layers": 3, "bias": False}),
    ("RNN", {"num_layers": 2, "bidirectional": True, "nonlinearity": "relu"}),
    ("RNN", {"num_layers": 2, "batch_first": True}),
]
INPUTS = ["dense", "lengths", "packed"]
T, B, F, H = 7, 4, 5, 6  # steps, batch, input features, hidden
LENGTHS = torch.tensor([7, 3, 5, 1])


def make_pair(kind, kwargs, dtype=torch.float64, fast=True):
    ours, theirs = PAIRS[kind]
    return (
        ours(F, H, **kwargs, dtype=dtype, fast=fast),
        theirs(F, H, **kwargs, dtype=dtype),
    )


def initial_state(module, batch, dtype):
    directions = 2 if module.bidirectional else 1
    out = module.proj_size if getattr(module, "proj_size", 0) else module.hidden_size
    h = torch.randn(directions * module.num_layers, batch, out, dtype=dtype)
    if isinstance(module, nn.LSTM | rnnlab.LSTM):
        c = torch.randn(directions * module.num_layers, batch, module.hidden_size, dtype=dtype)
        return h.requires_grad_(), c.requires_grad_()
    return h.requires_grad_()


def as_list(state):
    return [state] if torch.is_tensor(state) else list(state)


def run(module, x, hx, how):
    """Forward, a loss over outputs and final states, and the gradients of everything.

    ``how`` is ``"dense"``, ``"lengths"`` (rnnlab gets ``lengths=``, torch gets the equivalent
    PackedSequence and its output is padded back) or ``"packed"`` (both get a PackedSequence)."""
    first = module.batch_first
    if how == "dense":
        y, hn = module(x, hx)
    elif how == "lengths" and isinstance(module, rnnlab.layers.torch_compat.TorchCompatibleRNN):
        y, hn = module(x, hx, lengths=LENGTHS)
    else:
        packed = pack_padded_sequence(x, LENGTHS, batch_first=first, enforce_sorted=False)
        y, hn = module(packed, hx)
        if how == "lengths":
            y, _ = pad_packed_sequence(
                y, batch_first=first, total_length=x.shape[1 if first else 0]
            )
        else:
            y = y.data
    gen = torch.Generator().manual_seed(1)
    loss = (y * torch.randn(y.shape, generator=gen, dtype=y.dtype)).sum()
    for s in as_list(hn):
        loss = loss + (s * torch.randn(s.shape, generator=gen, dtype=s.dtype)).sum()
    params = dict(module.named_parameters())
    inputs = [x, *as_list(hx)]
    grads = torch.autograd.grad(loss, inputs + list(params.values()))
    return y, as_list(hn), grads[: len(inputs)], dict(zip(params, grads[len(inputs) :]))


def assert_same(a, b):
    (y1, h1, gi1, gp1), (y2, h2, gi2, gp2) = a, b
    torch.testing.assert_close(y1, y2, atol=1e-5, rtol=1e-5)
    for s1, s2 in zip(h1, h2, strict=True):
        torch.testing.assert_close(s1, s2, atol=1e-5, rtol=1e-5)
    for g1, g2 in zip(gi1, gi2, strict=True):
        torch.testing.assert_close(g1, g2, atol=1e-5, rtol=1e-5)
    assert list(gp1) == list(gp2)
    for name in gp1:
        torch.testing.assert_close(gp1[name], gp2[name], atol=1e-5, rtol=1e-5, msg=name)


@pytest.mark.parametrize("kind,kwargs", CONFIGS)
@pytest.mark.parametrize("how", INPUTS)
@pytest.mark.parametrize("fast", [True, False], ids=["fused", "layer_by_layer"])
def test_matches_torch_after_loading_torch_weights(kind, kwargs, how, fast):
    ours, theirs = make_pair(kind, kwargs, fast=fast)
    ours.load_state_dict(theirs.state_dict())
    shape = (B, T, F) if ours.batch_first else (T, B, F)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    hx = initial_state(ours, B, torch.float64)
    assert_same(run(ours, x, hx, how), run(theirs, x, hx, how))


@pytest.mark.parametrize("kind,kwargs", CONFIGS)
def test_torch_matches_after_loading_rnnlab_weights(kind, kwargs):
    ours, theirs = make_pair(kind, kwargs, dtype=torch.float32)
    theirs.load_state_dict(ours.state_dict())
    shape = (B, T, F) if ours.batch_first else (T, B, F)
    x = torch.randn(shape, requires_grad=True)
    hx = initial_state(ours, B, torch.float32)
    assert_same(run(ours, x, hx, "dense"), run(theirs, x, hx, "dense"))
    assert_same(run(ours, x, hx, "packed"), run(theirs, x, hx, "packed"))


def test_default_state_unbatched_input_and_packed_output_layout():
    ours, theirs = make_pair("LSTM", {"num_layers": 2, "bidirectional": True})
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(T, F, dtype=torch.float64)
    (y1, (h1, c1)), (y2, (h2, c2)) = ours(x), theirs(x)
    assert y1.shape == (T, 2 * H) and h1.shape == (4, H)
    torch.testing.assert_close(y1, y2)
    torch.testing.assert_close(h1, h2)
    torch.testing.assert_close(c1, c2)
    packed = pack_padded_sequence(torch.randn(T, B, F, dtype=torch.float64), LENGTHS, False, False)
    for fast in (True, False):
        ours.fast = fast
        out = ours(packed)[0]
        assert torch.equal(out.batch_sizes, packed.batch_sizes)
        assert torch.equal(out.sorted_indices, packed.sorted_indices)
        assert torch.equal(out.unsorted_indices, packed.unsorted_indices)
        torch.testing.assert_close(out.data, theirs(packed)[0].data)


@pytest.mark.parametrize("kind,kwargs", CONFIGS)
def test_fused_path_equals_layer_by_layer_path(kind, kwargs, monkeypatch):
    fused, _ = make_pair(kind, kwargs, fast=True)
    reference, _ = make_pair(kind, kwargs, fast=False)
    reference.load_state_dict(fused.state_dict())
    calls = []
    original = torch_compat.run_kernel
    monkeypatch.setattr(
        torch_compat, "run_kernel", lambda *a, **k: calls.append(1) or original(*a, **k)
    )
    shape = (B, T, F) if fused.batch_first else (T, B, F)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    hx = initial_state(fused, B, torch.float64)
    for how in ("dense", "lengths"):
        calls.clear()
        assert_same(run(fused, x, hx, how), run(reference, x, hx, how))
        assert len(calls) == 1  # the whole stack in one kernel call; none on the reference path


def test_a_cell_without_torch_kernel_runs_layer_by_layer(monkeypatch):
    ours, theirs = make_pair("LSTM", {"num_layers": 2, "bidirectional": True})
    ours.load_state_dict(theirs.state_dict())
    ours.cells()[2].torch_kernel = lambda: None  # as a cell variant would answer
    calls = []
    original = torch_compat.run_kernel
    monkeypatch.setattr(
        torch_compat, "run_kernel", lambda *a, **k: calls.append(1) or original(*a, **k)
    )
    x = torch.randn(T, B, F, dtype=torch.float64, requires_grad=True)
    hx = initial_state(ours, B, torch.float64)
    assert_same(run(ours, x, hx, "lengths"), run(theirs, x, hx, "lengths"))
    assert calls == []


def test_dropout_between_layers_only_in_training():
    torch_lstm = nn.LSTM(F, H, num_layers=3, dropout=0.5)
    for fast in (True, False):
        lstm = rnnlab.LSTM(F, H, num_layers=3, dropout=0.5, fast=fast)
        lstm.load_state_dict(torch_lstm.state_dict())
        no_dropout = rnnlab.LSTM(F, H, num_layers=3)
        no_dropout.load_state_dict(torch_lstm.state_dict())
        x = torch.randn(T, B, F)
        lstm.eval()
        torch.testing.assert_close(lstm(x)[0], no_dropout(x)[0])
        lstm.train()
        first, second = lstm(x)[0], lstm(x)[0]
        assert not torch.allclose(first, second)
        assert not torch.allclose(first, no_dropout(x)[0])
    # the fused path draws the same dropout masks as torch.nn.LSTM from the same seed
    lstm.fast = True
    torch_lstm.train()
    torch.manual_seed(3)
    expected = torch_lstm(x)[0]
    torch.manual_seed(3)
    torch.testing.assert_close(lstm(x)[0], expected)


def test_state_dict_keys_names_and_attributes_are_torchs():
    ours, theirs = make_pair("LSTM", {"num_layers": 2, "bidirectional": True, "proj_size": 2})
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [p.shape for p in ours.parameters()] == [p.shape for p in theirs.parameters()]
    assert ours.weight_hr_l1_reverse is ours.cells()[3].weight_hr
    assert ours.get_parameter("bias_hh_l0") is ours.cells()[0].bias_hh
    new = nn.Parameter(torch.zeros(4 * H, F, dtype=torch.float64))
    ours.weight_ih_l0 = new
    assert ours.cells()[0].weight_ih is new and ours.weight_ih_l0 is new
    assert not hasattr(ours, "weight_ih_l2")
    assert not hasattr(rnnlab.GRU(F, H), "weight_ih_l0_reverse")
    for name in ("weight_hr_l0", "bias_ih_l0"):
        assert hasattr(rnnlab.LSTM(F, H, bias=False), name) == hasattr(
            nn.LSTM(F, H, bias=False), name
        )
    # nested in a bigger model, the keys are still torch's
    model = nn.ModuleDict({"rnn": ours})
    reference = nn.ModuleDict({"rnn": theirs})
    assert list(model.state_dict()) == list(reference.state_dict())
    model.load_state_dict(reference.state_dict())
    torch.testing.assert_close(ours.weight_ih_l1, theirs.weight_ih_l1)


def test_incompatible_state_dict_is_reported_with_torchs_names():
    two_layers = rnnlab.GRU(F, H, num_layers=2)
    result = two_layers.load_state_dict(nn.GRU(F, H, bidirectional=True).state_dict(), strict=False)
    assert set(result.missing_keys) == {"weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1"}
    assert set(result.unexpected_keys) == {
        "weight_ih_l0_reverse",
        "weight_hh_l0_reverse",
        "bias_ih_l0_reverse",
        "bias_hh_l0_reverse",
    }
    with pytest.raises(RuntimeError, match="weight_ih_l1"):
        two_layers.load_state_dict(nn.GRU(F, H).state_dict())
    nested = nn.ModuleDict({"encoder": nn.ModuleDict({"rnn": rnnlab.GRU(F, H, num_layers=2)})})
    reference = nn.ModuleDict({"encoder": nn.ModuleDict({"rnn": nn.GRU(F, H)})})
    result = nested.load_state_dict(reference.state_dict(), strict=False)
    assert "encoder.rnn.weight_ih_l1" in result.missing_keys and not result.unexpected_keys


INIT_CONFIGS = [
    (kind, {"num_layers": layers, "bidirectional": bi, "bias": bias, "batch_first": first})
    for kind in PAIRS
    for layers in (1, 3)
    for bi in (False, True)
    for bias in (True, False)
    for first in (False, True)
] + [("LSTM", {"num_layers": 2, "bidirectional": bi, "proj_size": 3}) for bi in (False, True)]


@pytest.mark.parametrize("dtype", [None, torch.float64], ids=["default_dtype", "float64"])
@pytest.mark.parametrize("kind,kwargs", INIT_CONFIGS)
def test_default_initialisation_is_torchs_bit_for_bit(kind, kwargs, dtype):
    ours, theirs = PAIRS[kind]
    torch.manual_seed(7)
    expected, after_theirs = theirs(F, H, **kwargs, dtype=dtype).state_dict(), torch.rand(4)
    torch.manual_seed(7)
    got, after_ours = ours(F, H, **kwargs, dtype=dtype).state_dict(), torch.rand(4)
    assert list(got) == list(expected)
    for name in expected:
        assert got[name].dtype == expected[name].dtype
        assert torch.equal(got[name], expected[name]), name
    assert torch.equal(after_ours, after_theirs)  # the same number of draws from the generator


def test_reset_parameters_follows_init():
    torch.manual_seed(3)
    reference = nn.GRU(F, H, num_layers=2, bidirectional=True)
    reference.reset_parameters()
    torch.manual_seed(3)
    gru = rnnlab.GRU(F, H, num_layers=2, bidirectional=True)
    gru.reset_parameters()
    for name, value in reference.state_dict().items():
        assert torch.equal(gru.state_dict()[name], value), name
    lstm = rnnlab.LSTM(F, H, init="orthogonal")
    lstm.reset_parameters()
    torch.testing.assert_close(lstm.bias_ih_l0[H : 2 * H], torch.ones(H))


def test_variant_parameters_keep_their_cells_init_under_torchs():
    lstm = rnnlab.LSTM(F, H, layer_norm=True, peephole=True)
    assert torch.equal(lstm.ln_c_l0.weight, torch.ones(H))
    bound = 1 / H**0.5
    for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_peephole_l0"):
        value = getattr(lstm, name)
        assert value.abs().max() <= bound and value.std() > 0.1 * bound, name


def test_rnnlab_initialisation_and_cell_keywords():
    lstm = rnnlab.LSTM(F, H, num_layers=2, init="orthogonal")
    assert "init='orthogonal'" in repr(lstm) and "init=" not in repr(rnnlab.LSTM(F, H))
    forget = lstm.bias_ih_l1[H : 2 * H]
    torch.testing.assert_close(forget, torch.ones(H))
    assert torch.all(lstm.bias_hh_l1 == 0)
    block = lstm.weight_hh_l0[:H]
    torch.testing.assert_close(block @ block.T, torch.eye(H), atol=1e-5, rtol=0)
    gru = rnnlab.GRU(F, H, init="orthogonal").weight_hh_l0[2 * H :]
    torch.testing.assert_close(gru @ gru.T, torch.eye(H), atol=1e-5, rtol=0)
    zero = rnnlab.LSTM(F, H, init="orthogonal", forget_bias=0.0)
    assert torch.all(zero.bias_ih_l0 == 0)
    irnn = rnnlab.RNN(F, H, nonlinearity="relu", init="identity")
    torch.testing.assert_close(irnn.weight_hh_l0, torch.eye(H))
    assert rnnlab.GRU(F, H, dtype=torch.float64).weight_hh_l0.dtype == torch.float64


@pytest.mark.parametrize(
    "build,message",
    [
        (lambda: rnnlab.LSTM(F, H, proj_size=H), "proj_size"),
        (lambda: rnnlab.LSTM(F, H, proj_size=-1), "proj_size"),
        (lambda: rnnlab.LSTM(F, 0), "hidden_size"),
        (lambda: rnnlab.GRU(F, H, num_layers=0), "num_layers"),
        (lambda: rnnlab.GRU(F, H, dropout=1.5), "dropout"),
        (lambda: rnnlab.RNN(F, H, nonlinearity="sigmoid"), "nonlinearity"),
        (lambda: rnnlab.GRU(F, H, peephole=True), "unknown keyword 'peephole'"),
        (lambda: rnnlab.LSTM(F, H, init="xavier"), "unknown init 'xavier'; choose one of torch"),
        (lambda: rnnlab.LSTM(F, H, forget_bias=2.0), "forget_bias .* init='orthogonal'"),
        (lambda: rnnlab.GRU(F, H, chrono=10), "chrono .* init='orthogonal'"),
    ],
)
def test_bad_arguments_raise_config_errors(build, message):
    with pytest.raises(rnnlab.ConfigError, match=message):
        build()


def test_bad_inputs_and_states_raise_config_errors():
    lstm = rnnlab.LSTM(F, H, num_layers=2)
    x = torch.randn(T, B, F)
    with pytest.raises(rnnlab.ConfigError, match=r"initial state of shape \[2, 4, 6\]"):
        lstm(x, (torch.zeros(1, B, H), torch.zeros(1, B, H)))
    with pytest.raises(rnnlab.ConfigError, match=r"\(h_0, c_0\)"):
        lstm(x, torch.zeros(2, B, H))
    with pytest.raises(rnnlab.ConfigError, match="input_size=5"):
        lstm(torch.randn(T, B, F + 1))
    with pytest.raises(rnnlab.ConfigError, match="expects input"):
        lstm(torch.randn(T, B, 1, F))
    with pytest.raises(rnnlab.ConfigError, match="between 1 and"):
        lstm(x, lengths=[T + 1, 1, 1, 1])
    packed = pack_padded_sequence(x, LENGTHS, enforce_sorted=False)
    with pytest.raises(rnnlab.ConfigError, match="not both"):
        lstm(packed, lengths=LENGTHS)
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        rnnlab.GRU(F, H, dropout=0.2)


def test_copies_and_functional_call_with_torch_names():
    lstm = rnnlab.LSTM(F, H, num_layers=2, bidirectional=True)
    x = torch.randn(T, B, F)
    y = lstm(x)[0]
    clone = copy.deepcopy(lstm)
    assert clone.weight_ih_l0 is not lstm.weight_ih_l0
    torch.testing.assert_close(clone(x)[0], y)
    doubled = {name: 2 * p.detach() for name, p in lstm.named_parameters()}
    expected = nn.LSTM(F, H, num_layers=2, bidirectional=True)
    expected.load_state_dict(doubled)
    torch.testing.assert_close(functional_call(lstm, doubled, (x,))[0], expected(x)[0])
    torch.testing.assert_close(lstm(x)[0], y)  # the real parameters are back


@pytest.mark.parametrize(
    "build",
    [
        lambda: rnnlab.LSTM(F, H, num_layers=2, bidirectional=True, proj_size=3),
        lambda: rnnlab.GRU(F, H, num_layers=2, dropout=0.2, batch_first=True),
        lambda: rnnlab.RNN(F, H, nonlinearity="relu", init="identity"),
        lambda: rnnlab.LSTM(F, H, 2, variational_dropout=0.3, weight_drop=0.2, zoneout_cell=0.1),
        lambda: rnnlab.LSTM(F, H, layer_norm=True, peephole=True),
        lambda: rnnlab.GRU(F, H, batch_norm=True),
    ],
    ids=["lstm", "gru", "irnn", "regularised", "layer_norm", "batch_norm"],
)
def test_whole_model_loads_with_weights_only(build, tmp_path):
    model = nn.Sequential(build())
    torch.save(model, tmp_path / "model.pt")
    with torch.serialization.safe_globals([nn.Sequential]):  # only the container, as for torch.nn
        loaded = torch.load(tmp_path / "model.pt", weights_only=True)
    layer, original = loaded[0], model[0]
    assert type(layer) is type(original) and list(layer.state_dict()) == list(original.state_dict())
    original.eval(), layer.eval()
    x = torch.randn(T, B, F)
    for a, b in zip(as_list(layer(x)[1]), as_list(original(x)[1]), strict=True):
        assert torch.equal(a, b)
    layer.load_state_dict(original.state_dict())  # torch's names, both ways, after unpickling
    assert list(copy.deepcopy(layer).state_dict()) == list(original.state_dict())
