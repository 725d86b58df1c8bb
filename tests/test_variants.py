"""LSTM/GRU variants: float64 gradcheck of the reference step and of the fused path, fused path ==
reference loop (outputs, final state, gradients, running statistics), batch norm in train and
eval modes, configuration errors."""

from __future__ import annotations

import copy

import pytest
import torch

import rnnlab
from rnnlab.layers.unroll import unroll


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one thread avoids waking a thread pool for every kernel (slow on a loaded
    machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


LSTM_VARIANTS = [
    {"peephole": True},
    {"coupled": True},
    {"coupled": True, "peephole": True},
    {"layer_norm": True},
    {"batch_norm": True},
    {"weight_norm": True},
    {"layer_norm": True, "peephole": True, "proj_size": 2},
    {"batch_norm": True, "coupled": True, "peephole": True, "weight_norm": True},
    {"weight_norm": True, "coupled": True, "bias": False, "proj_size": 2},
]
GRU_VARIANTS = [
    {"layer_norm": True},
    {"batch_norm": True},
    {"weight_norm": True},
    {"layer_norm": True, "weight_norm": True, "bias": False},
    {"batch_norm": True, "bias": False},
]
VARIANTS = [("lstm", kw) for kw in LSTM_VARIANTS] + [("gru", kw) for kw in GRU_VARIANTS]


def make(name, kwargs, eval_mode=False, input_size=3, hidden_size=4):
    cell = rnnlab.cells.create(name, input_size=input_size, hidden_size=hidden_size, **kwargs)
    cell = cell.double()
    if eval_mode:  # population statistics from a few training batches of 5 steps
        for _ in range(3):
            rnnlab.Recurrent(cell)(torch.randn(5, 6, input_size, dtype=torch.float64))
        cell.eval()
    return cell


def float_parts(state):
    """The differentiable tensors of a state (not a batch-norm step counter)."""
    parts = [state] if torch.is_tensor(state) else list(state)
    return [p for p in parts if p.is_floating_point()]


def random_state(cell, batch):
    state = cell.init_state(batch, dtype=torch.float64)
    if torch.is_tensor(state):
        return state.normal_().requires_grad_()
    return type(state)(
        *(p.normal_().requires_grad_() if p.is_floating_point() else p for p in state)
    )


def is_batch_norm(kwargs):
    return kwargs.get("batch_norm", False)


@pytest.mark.parametrize("name,kwargs", VARIANTS)
def test_gradcheck_fused(name, kwargs):
    """The hand-written backward through time, against finite differences."""
    cell = make(name, kwargs, hidden_size=3)
    x = torch.randn(3, 3, 3, dtype=torch.float64, requires_grad=True)
    state = random_state(cell, 3)
    rnn = rnnlab.Recurrent(cell)

    def run(x, *tensors):
        y, final = rnn(x, state)
        return (y, *float_parts(final))

    inputs = (x, *float_parts(state), *cell.parameters())
    assert torch.autograd.gradcheck(run, inputs, fast_mode=True)


@pytest.mark.parametrize("name,kwargs", [VARIANTS[3], VARIANTS[7], VARIANTS[-2]])
def test_gradcheck_reference(name, kwargs):
    cell = make(name, kwargs, hidden_size=3)
    x = torch.randn(3, 2, 3, dtype=torch.float64, requires_grad=True)

    def run(x, *params):
        y, final = rnnlab.Recurrent(cell, fast=False)(x)
        return (y, *float_parts(final))

    assert torch.autograd.gradcheck(run, (x, *cell.parameters()), fast_mode=True)


@pytest.mark.parametrize("name,kwargs", [v for v in VARIANTS if is_batch_norm(v[1])])
def test_gradcheck_batch_norm_eval(name, kwargs):
    cell = make(name, kwargs, eval_mode=True, hidden_size=3)
    x = torch.randn(7, 2, 3, dtype=torch.float64, requires_grad=True)
    rnn = rnnlab.Recurrent(cell)

    def run(x, *params):
        y, final = rnn(x)
        return (y, *float_parts(final))

    assert torch.autograd.gradcheck(run, (x, *cell.parameters()), fast_mode=True)


def run_both(cell, x, state, lengths, reverse):
    """Outputs, final state, gradients and buffers of the fused path and of the reference."""
    results = []
    for fast in (True, False):
        copy_ = copy.deepcopy(cell)
        y, final = rnnlab.Recurrent(copy_, reverse=reverse, fast=fast)(x, state, lengths)
        weights = torch.linspace(-1, 1, y.shape[-1], dtype=y.dtype)
        loss = (y * weights).sum() + sum(p.pow(2).sum() for p in float_parts(final))
        grads = torch.autograd.grad(loss, [x, *float_parts(state), *copy_.parameters()])
        results.append((y, final, grads, [b.clone() for b in copy_.buffers()]))
    return results


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("lengths", [None, [6, 3, 1, 6, 5]])
@pytest.mark.parametrize("name,kwargs", VARIANTS)
def test_fused_matches_reference(name, kwargs, lengths, reverse):
    modes = [False, True] if is_batch_norm(kwargs) else [False]
    for eval_mode in modes:
        cell = make(name, kwargs, eval_mode, input_size=5, hidden_size=6)
        assert cell.torch_kernel() is None
        x = torch.randn(6, 5, 5, dtype=torch.float64, requires_grad=True)
        state = random_state(cell, 5)
        lens = None if lengths is None else torch.tensor(lengths)
        (y1, s1, g1, b1), (y2, s2, g2, b2) = run_both(cell, x, state, lens, reverse)
        torch.testing.assert_close(y1, y2)
        for a, b in zip(s1, s2) if not torch.is_tensor(s1) else [(s1, s2)]:
            torch.testing.assert_close(a, b)
        for a, b in zip(g1, g2):
            torch.testing.assert_close(a, b)
        for a, b in zip(b1, b2):
            torch.testing.assert_close(a, b)


def test_fused_path_is_used_and_has_no_graph_per_step():
    cell = rnnlab.cells.create("lstm", input_size=3, hidden_size=4, layer_norm=True)
    y, _ = rnnlab.Recurrent(cell)(torch.randn(6, 2, 3))
    assert type(y.grad_fn).__name__ == "FusedLSTMBackward"
    cell = rnnlab.cells.create("gru", input_size=3, hidden_size=4, batch_norm=True)
    y, _ = rnnlab.Recurrent(cell)(torch.randn(6, 2, 3))
    assert type(y.grad_fn).__name__ == "FusedGRUBackward"


@pytest.mark.parametrize("name,kwargs", [("lstm", {"batch_norm": True, "peephole": True})])
def test_generation_one_step_at_a_time_matches_whole_sequence(name, kwargs):
    cell = make(name, kwargs, eval_mode=True)
    x = torch.randn(9, 1, 3, dtype=torch.float64)
    rnn = rnnlab.Recurrent(cell)
    with torch.no_grad():
        y_all, final = rnn(x)
        state, ys = None, []
        for t in range(9):
            y_t, state = rnn(x[t : t + 1], state)
            ys.append(y_t)
    torch.testing.assert_close(torch.cat(ys), y_all)
    assert int(state.step) == 9 == int(final.step)


def test_batch_norm_train_uses_batch_statistics_and_eval_population_statistics():
    cell = make("lstm", {"batch_norm": True})
    x = torch.randn(5, 6, 3, dtype=torch.float64)
    rnn = rnnlab.Recurrent(cell)
    y_batch, _ = rnn(x)
    y_alone, _ = rnn(x[:, :2])
    assert not torch.allclose(y_batch[:, :2], y_alone)  # batch statistics: depends on the batch
    assert cell.bn_hh.steps_seen == 5 and cell.bn_c.steps_seen == 5
    frozen = [b.clone() for b in cell.buffers()]
    cell.eval()
    y_batch, _ = rnn(x)
    y_alone, _ = rnn(x[:, :2])
    torch.testing.assert_close(y_batch[:, :2], y_alone)  # population statistics: per sequence
    for a, b in zip(frozen, cell.buffers()):
        torch.testing.assert_close(a, b)  # evaluation does not move the statistics


def test_batch_norm_population_statistics_are_the_running_average():
    cell = make("gru", {"batch_norm": True})
    x = torch.randn(3, 64, 3, dtype=torch.float64)
    rnn = rnnlab.Recurrent(cell)
    cell.bn_ih.momentum = 1.0  # the running statistics become the last batch's
    rnn(x)
    wx = x @ cell.weight_ih.T
    torch.testing.assert_close(cell.bn_ih.running_mean, wx.mean(1))
    torch.testing.assert_close(cell.bn_ih.running_var, wx.var(1))


def test_batch_norm_longer_sequences_reuse_the_last_step_statistics():
    cell = make("lstm", {"batch_norm": True}, eval_mode=True)  # trained on 5 steps
    x = torch.randn(8, 2, 3, dtype=torch.float64)
    y, _ = rnnlab.Recurrent(cell)(x)
    padded = copy.deepcopy(cell)
    for norm in (padded.bn_ih, padded.bn_hh, padded.bn_c):
        norm.running_mean = torch.cat([norm.running_mean, norm.running_mean[-1:].repeat(3, 1)])
        norm.running_var = torch.cat([norm.running_var, norm.running_var[-1:].repeat(3, 1)])
    torch.testing.assert_close(rnnlab.Recurrent(padded)(x)[0], y)
    padded.bn_c.running_var[-1] *= 2
    assert not torch.allclose(rnnlab.Recurrent(padded)(x)[0][-1], y[-1])


def test_batch_norm_statistics_survive_a_state_dict_round_trip():
    cell = make("lstm", {"batch_norm": True}, eval_mode=True)
    fresh = make("lstm", {"batch_norm": True})
    fresh.load_state_dict(cell.state_dict())
    fresh.eval()
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    torch.testing.assert_close(rnnlab.Recurrent(fresh)(x)[0], rnnlab.Recurrent(cell)(x)[0])


def test_batch_norm_gains_start_at_one_tenth():
    cell = rnnlab.cells.create("lstm", input_size=3, hidden_size=4, batch_norm=True)
    for norm in (cell.bn_ih, cell.bn_hh, cell.bn_c):
        assert torch.all(norm.weight == 0.1)


def test_plain_cells_keep_torch_kernels_and_variants_do_not():
    assert rnnlab.cells.create("lstm", input_size=3, hidden_size=4).torch_kernel() is not None
    assert rnnlab.cells.create("gru", input_size=3, hidden_size=4).torch_kernel() is not None
    for name, kwargs in VARIANTS:
        cell = rnnlab.cells.create(name, input_size=3, hidden_size=4, **kwargs)
        assert cell.torch_kernel() is None


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_layer_norm_with_batch_norm_is_a_config_error(name):
    with pytest.raises(rnnlab.ConfigError, match="choose one"):
        rnnlab.cells.create(name, input_size=3, hidden_size=4, layer_norm=True, batch_norm=True)


def test_forget_bias_and_init():
    sizes = {"input_size": 3, "hidden_size": 4}
    cell = rnnlab.cells.create("lstm", **sizes, forget_bias=2.0, peephole=True)
    assert torch.all(cell.bias_ih[4:8] == 2.0) and torch.all(cell.bias_ih[:4] == 0)
    coupled = rnnlab.cells.create("lstm", **sizes, coupled=True, forget_bias=2.0)
    assert coupled.weight_ih.shape == (12, 3) and torch.all(coupled.bias_ih[:4] == -2.0)
    cell = rnnlab.cells.create("gru", **sizes, init="identity", weight_norm=True)
    torch.testing.assert_close(cell.weight_hh.detach(), torch.eye(4).repeat(3, 1))
    with pytest.raises(rnnlab.ConfigError, match="recurrent init"):
        rnnlab.cells.create("lstm", input_size=3, hidden_size=4, init="bogus", layer_norm=True)


def test_weight_norm_parameters_and_unit_norm_directions():
    cell = rnnlab.cells.create("lstm", input_size=3, hidden_size=4, weight_norm=True)
    names = dict(cell.named_parameters())
    assert "parametrizations.weight_hh.original0" in names  # g [4H, 1]
    g = names["parametrizations.weight_hh.original0"]
    v = names["parametrizations.weight_hh.original1"]
    torch.testing.assert_close(cell.weight_hh, g * v / v.norm(dim=1, keepdim=True))


def test_reference_loop_and_step_agree_for_a_variant():
    cell = rnnlab.cells.create("lstm", input_size=3, hidden_size=4, peephole=True, coupled=True)
    x = torch.randn(3, 2, 3)
    y, state = unroll(cell, x, cell.init_state(2))
    y0, state0 = cell(x[0])
    torch.testing.assert_close(y[0], y0)


@pytest.mark.parametrize(
    "name, kwargs",
    [("lstm", {"layer_norm": True}), ("lstm", {"peephole": True}), ("gru", {"layer_norm": True})],
)
def test_fused_path_outputs_are_freed(name, kwargs):
    """The fused autograd functions must not keep their outputs alive through ctx (a reference
    cycle through C++ leaked every step's activations: 30 MB per training step)."""
    import gc
    import weakref

    cell = rnnlab.cells.create(name, input_size=3, hidden_size=8, **kwargs)
    y, state = rnnlab.Recurrent(cell)(torch.randn(5, 2, 3))
    final = state if torch.is_tensor(state) else state[0]
    refs = [weakref.ref(y), weakref.ref(final)]
    (y.sum() + final.sum()).backward()
    del y, state, final
    gc.collect()
    assert all(ref() is None for ref in refs)
