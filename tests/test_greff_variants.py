"""The LSTM variants of Greff et al. (2017): float64 gradcheck and masking of each, each switch's
maths (a dropped gate equals that gate fixed at 1; the activations and the gate recurrence
against the equations written out), the variant names, and their configuration errors."""

from __future__ import annotations

import pytest
import torch

import rnnlab
from rnnlab.cells.lstm import GREFF_VARIANTS, FGRLSTMState, LSTMState, is_greff_ablation
from rnnlab.errors import ConfigError
from rnnlab.layers.unroll import Recurrent, unroll
from rnnlab.testing import check_cell
from rnnlab.training.config import make_config

SIZES = {"input_size": 3, "hidden_size": 4}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def lstm(**kwargs):
    torch.manual_seed(0)
    return rnnlab.cells.create("lstm", **SIZES, **kwargs).double()


@pytest.mark.parametrize("variant", sorted(GREFF_VARIANTS))
def test_gradcheck_and_masking(variant):
    ran = check_cell(lstm(variant=variant))
    assert {"gradcheck", "masking"} <= set(ran)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"input_gate": False, "proj_size": 2},
        {"forget_gate": False, "layer_norm": True},
        {"output_gate": False, "output_activation": False, "bias": False},
        {"full_gate_recurrence": True, "coupled": True, "peephole": True},
        {"full_gate_recurrence": True, "output_gate": False, "chrono": 10},
        {"input_activation": False, "layer_norm": True, "peephole": True},
    ],
)
def test_gradcheck_combinations(kwargs):
    assert "gradcheck" in check_cell(lstm(**kwargs))


def copy_into(ablated, full):
    """``full``'s parameters into ``ablated``, its dropped gate blocks left out."""
    rows = torch.cat([torch.arange(16)[full.block(n)] for n in ablated.gate_blocks])
    peep = [full.sigmoid_gates.index(n) for n in ablated.sigmoid_gates]
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(ablated, name).copy_(getattr(full, name)[rows])
        ablated.weight_peephole.copy_(full.weight_peephole[peep])


def run(cell, x):
    return unroll(cell, x, cell.init_state(x.shape[1], dtype=x.dtype))


@pytest.mark.parametrize("gate,variant", [("i", "nig"), ("f", "nfg"), ("o", "nog")])
def test_a_dropped_gate_is_that_gate_fixed_at_one(gate, variant):
    """sigmoid(1e4) is exactly 1 in float64: the vanilla LSTM with that gate's input weights 0
    and bias 1e4 is the ablated one."""
    full, ablated = lstm(variant="vanilla"), lstm(variant=variant)
    copy_into(ablated, full)
    with torch.no_grad():
        full.weight_ih[full.block(gate)] = 0
        full.weight_hh[full.block(gate)] = 0
        full.bias_ih[full.block(gate)] = 1e4
        full.weight_peephole[full.sigmoid_gates.index(gate)] = 0
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    y_full, s_full = run(full, x)
    y_ablated, s_ablated = run(ablated, x)
    torch.testing.assert_close(y_ablated, y_full)
    torch.testing.assert_close(s_ablated.c, s_full.c)
    assert ablated.weight_ih.shape == (12, 3) and ablated.weight_peephole.shape == (2, 4)


def written_out(cell, x, h, c, gates_prev=None):
    """One step of the peephole LSTM from the equations, with NIAF / NOAF / FGR as switched."""
    w = {n: (cell.weight_ih[cell.block(n)], cell.weight_hh[cell.block(n)]) for n in "ifgo"}
    b = {n: cell.bias_ih[cell.block(n)] + cell.bias_hh[cell.block(n)] for n in "ifgo"}
    a = {n: x @ w[n][0].T + h @ w[n][1].T + b[n] for n in "ifgo"}
    if gates_prev is not None:
        for k, n in enumerate("ifo"):
            a[n] = a[n] + gates_prev @ cell.weight_gg[4 * k : 4 * k + 4].T
    p_i, p_f, p_o = cell.weight_peephole
    i, f = torch.sigmoid(a["i"] + p_i * c), torch.sigmoid(a["f"] + p_f * c)
    g = torch.tanh(a["g"]) if cell.input_activation else a["g"]
    c_new = f * c + i * g
    o = torch.sigmoid(a["o"] + p_o * c_new)
    h_new = o * (torch.tanh(c_new) if cell.output_activation else c_new)
    return h_new, c_new, torch.cat([i, f, o], -1)


@pytest.mark.parametrize("variant", ["vanilla", "niaf", "noaf", "fgr"])
def test_the_step_is_the_written_out_equations(variant):
    cell = lstm(variant=variant)
    x = torch.randn(3, 2, 3, dtype=torch.float64)
    state = cell.init_state(2, dtype=torch.float64)
    h, c = state.h, state.c
    gates = state.gates if variant == "fgr" else None
    for t in range(3):
        _, state = cell.step(cell.precompute(x[t : t + 1])[0], state)
        h, c, new_gates = written_out(cell, x[t], h, c, gates)
        gates = new_gates if variant == "fgr" else None
        torch.testing.assert_close(state.h, h)
        torch.testing.assert_close(state.c, c)
    if variant == "fgr":
        assert isinstance(state, FGRLSTMState)
        torch.testing.assert_close(state.gates, gates)


@pytest.mark.parametrize("variant", sorted(set(GREFF_VARIANTS) - {"vanilla"}))
def test_each_variant_changes_the_outputs(variant):
    x = torch.randn(4, 2, 3, dtype=torch.float64)
    vanilla = run(lstm(variant="vanilla"), x)[0]
    other = lstm(variant=variant)
    assert not torch.allclose(run(other, x)[0], vanilla)


def test_variant_names_set_the_switches():
    assert (
        lstm(variant="nfg").state_dict().keys()
        == lstm(peephole=True, forget_gate=False).state_dict().keys()
    )
    cifg = lstm(variant="cifg")
    assert cifg.coupled and cifg.peephole and cifg.gate_blocks == ("i", "g", "o")
    assert not lstm(variant="np").peephole and not lstm(variant="np").is_variant
    assert lstm(variant="nfg", peephole=True).forget_gate is False  # agreeing switches are fine


def test_ablations_run_the_reference_loop():
    """No fused path or torch kernel: Recurrent(fast=True) is the reference loop."""
    for variant in ("nig", "nfg", "nog", "niaf", "noaf", "fgr"):
        cell = lstm(variant=variant)
        assert is_greff_ablation(cell) and cell.torch_kernel() is None
        x = torch.randn(5, 2, 3, dtype=torch.float64)
        assert cell.fused_unroll(x, cell.init_state(2, dtype=torch.float64)) is None
    for variant in ("vanilla", "np", "cifg"):
        assert not is_greff_ablation(lstm(variant=variant))
    cell = lstm(variant="fgr")
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    y_fast, _ = Recurrent(cell, fast=True)(x)
    torch.testing.assert_close(y_fast, run(cell, x)[0])


def test_fgr_takes_a_plain_state():
    cell = lstm(variant="fgr")
    h = torch.zeros(2, 4, dtype=torch.float64)
    _, state = cell(torch.randn(2, 3, dtype=torch.float64), LSTMState(h, h))
    assert isinstance(state, FGRLSTMState) and state.gates.shape == (2, 12)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"variant": "bogus"}, "unknown LSTM variant 'bogus'"),
        ({"variant": "np", "peephole": True}, "sets peephole=False"),
        ({"variant": "nig", "coupled": True}, "sets coupled=False"),
        ({"coupled": True, "input_gate": False}, "needs input_gate and forget_gate"),
        ({"full_gate_recurrence": True, "batch_norm": True}, "does not combine with batch_norm"),
    ],
)
def test_configuration_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        rnnlab.cells.create("lstm", **SIZES, **kwargs)


def test_the_command_line_option_selects_a_variant():
    config = make_config("jsb", cell="lstm", cell_options={"variant": "nog"})
    assert config.cell_options == {"variant": "nog"}
