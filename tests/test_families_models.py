"""Family-specific properties: echo state network fits, Mackey-Glass, uRNN unitarity, ISAN
decomposition, clockwork timing and connectivity, TCN causality."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import rnnlab
from rnnlab.cells.esn import spectral_radius_of
from rnnlab.cells.isan import contributions, plot_contributions
from rnnlab.cells.unitary import unitarity_error, unitary_matrix
from rnnlab.data.mackey_glass import mackey_glass
from rnnlab.models.esn import EchoStateNetwork
from rnnlab.models.tcn import TCN


def rmse(a, b):
    return float((a - b).pow(2).mean().sqrt())


def test_reservoir_spectral_radius_and_sparsity():
    cell = rnnlab.cells.create(
        "esn", input_size=2, hidden_size=50, spectral_radius=0.8, connectivity=0.2, seed=3
    )
    assert spectral_radius_of(cell.weight_hh) == pytest.approx(0.8, rel=1e-4)
    assert 0.1 < (cell.weight_hh != 0).float().mean() < 0.3
    assert not list(cell.parameters())
    again = rnnlab.cells.create(
        "esn", input_size=2, hidden_size=50, spectral_radius=0.8, connectivity=0.2, seed=3
    )
    torch.testing.assert_close(cell.weight_hh, again.weight_hh)


def test_mackey_glass_series():
    series = mackey_glass(1500, transient=100)
    assert series.shape == (1500,) and series.dtype == torch.float64
    assert 0.2 < float(series.min()) < 0.6 and 1.1 < float(series.max()) < 1.5
    # finer integration converges to the same series
    fine = mackey_glass(300, dt=0.05)
    torch.testing.assert_close(mackey_glass(300), fine, atol=1e-3, rtol=0)
    with pytest.raises(rnnlab.ConfigError, match="multiples of dt"):
        mackey_glass(10, tau=17.05)


@pytest.mark.parametrize("method", ["ridge", "pinv"])
def test_esn_one_step_prediction_of_mackey_glass(method):
    series = mackey_glass(1200).float()
    x, y = series[:-1, None], series[1:, None]
    esn = EchoStateNetwork(1, 1, 100, spectral_radius=1.25, leak_rate=0.3, seed=0)
    state = esn.fit(x[:1000], y[:1000], washout=100, ridge=1e-5, method=method)
    predictions, _ = esn(x[1000:], state)
    error = rmse(predictions, y[1000:])
    assert error < 0.01, error  # the series' standard deviation is about 0.23
    assert error < 0.05 * float(series.std())


def test_esn_free_running_generation_of_a_sine():
    t = torch.arange(700, dtype=torch.float64)
    series = torch.sin(2 * math.pi * t / 25)[:, None]
    esn = EchoStateNetwork(1, 1, 100, spectral_radius=0.9, seed=1).double()
    state = esn.fit(series[:-101], series[1:-100], washout=100, ridge=1e-8)
    generated = esn.generate(100, state)
    assert generated.shape == (100, 1, 1)
    assert rmse(generated[:, 0], series[-100:]) < 0.05


def test_esn_with_output_feedback_teacher_forcing_and_free_run():
    t = torch.arange(600, dtype=torch.float64)
    drive = torch.sin(2 * math.pi * t / 30)[:, None]
    target = torch.sin(2 * math.pi * t / 30 + 0.7)[:, None] ** 2
    esn = EchoStateNetwork(
        1, 1, 80, feedback=True, spectral_radius=0.8, feedback_scaling=0.2, seed=2
    ).double()
    state = esn.fit(drive[:500], target[:500], washout=50, ridge=1e-8)
    forced, _ = esn(drive[500:], state, teacher=target[500:])
    free, _ = esn(drive[500:], state)
    assert rmse(forced, target[500:]) < 0.02
    assert rmse(free, target[500:]) < 0.05


def test_esn_errors():
    esn = EchoStateNetwork(2, 1, 10, seed=0)
    with pytest.raises(rnnlab.ConfigError, match=r"inputs must be \[T, B, 2\]"):
        esn.fit(torch.zeros(10, 3), torch.zeros(10, 1))
    with pytest.raises(rnnlab.ConfigError, match="washout"):
        esn.fit(torch.zeros(10, 2), torch.zeros(10, 1), washout=10)
    with pytest.raises(rnnlab.ConfigError, match="input_size == output_size"):
        esn.generate(3, esn.init_state(1))


@pytest.mark.parametrize("hidden", [1, 7, 64])
def test_urnn_matrix_is_unitary(hidden):
    cell = rnnlab.cells.create("urnn", input_size=2, hidden_size=hidden)
    assert unitarity_error(cell) < 1e-5
    with torch.no_grad():  # stays unitary for any parameter values
        for p in cell.parameters():
            p.normal_()
    assert unitarity_error(cell) < 1e-5
    w = unitary_matrix(cell.double())
    h = torch.randn(hidden, dtype=torch.complex128)
    torch.testing.assert_close((w @ h).abs().norm(), h.abs().norm())


def test_urnn_output_is_real_and_imaginary_parts():
    cell = rnnlab.cells.create("urnn", input_size=2, hidden_size=5)
    y, h = rnnlab.Recurrent(cell)(torch.randn(4, 3, 2))
    assert cell.output_size == 10 and y.shape == (4, 3, 10) and h.shape == (3, 10)


def test_isan_contributions_sum_to_logits_and_plot(tmp_path):
    cell = rnnlab.cells.create("isan", input_size=6, hidden_size=5).double()
    with torch.no_grad():
        cell.bias_hh.normal_()
        cell.weight_hh.mul_(0.9)
    readout = torch.nn.Linear(5, 6).double()
    symbols = torch.randint(6, (15,))
    h0 = torch.randn(5, dtype=torch.float64)
    onehot = F.one_hot(symbols, 6).double().unsqueeze(1)
    states, _ = rnnlab.Recurrent(cell)(onehot, h0.unsqueeze(0))
    logits = readout(states[:, 0])
    parts = contributions(cell, readout, symbols, h0)
    torch.testing.assert_close(parts.logits(), logits.detach())
    later = torch.ones(15, 15).triu(1).bool()  # s > t: no contribution from the future
    assert torch.all(parts.kappa[later] == 0)
    text = "abcdefghijklmno"
    figure = plot_contributions(parts, text, symbols.roll(-1).tolist(), tmp_path / "kappa.png")
    assert (tmp_path / "kappa.png").stat().st_size > 0
    figure.clf()


def test_clockwork_modules_frozen_between_ticks():
    cell = rnnlab.cells.create("clockwork", input_size=3, hidden_size=8, num_modules=4)
    x = torch.randn(17, 2, 3)
    y, state = rnnlab.Recurrent(cell)(x)
    size, periods = 2, [1, 2, 4, 8]
    previous = torch.zeros(2, 8)
    for t in range(17):
        for module, period in enumerate(periods):
            units = slice(module * size, (module + 1) * size)
            changed = not torch.equal(y[t, :, units], previous[:, units])
            assert changed == (t % period == 0), (t, module)
        previous = y[t]
    assert torch.all(state.t == 17)


def test_clockwork_slow_modules_never_read_fast_ones():
    cell = rnnlab.cells.create("clockwork", input_size=2, hidden_size=8, num_modules=4).double()
    h = torch.randn(1, 8, dtype=torch.float64, requires_grad=True)
    state = cell.init_state(1, dtype=torch.float64)._replace(h=h)
    y, _ = cell(torch.randn(1, 2, dtype=torch.float64), state)  # t = 0: every module updates
    jacobian = torch.stack(
        [torch.autograd.grad(y[0, i], h, retain_graph=True)[0][0] for i in range(8)]
    )
    module = torch.arange(8) // 2
    slower_reads_faster = module.unsqueeze(1) > module.unsqueeze(0)  # row slower than column
    assert torch.all(jacobian[slower_reads_faster] == 0)
    assert torch.all(jacobian[~slower_reads_faster] != 0)


def test_tcn_is_causal_with_its_receptive_field():
    tcn = TCN(3, [6, 6, 4], kernel_size=3, dropout=0.0).double()
    assert tcn.receptive_field == 1 + 2 * 2 * 7
    x = torch.randn(60, 2, 3, dtype=torch.float64, requires_grad=True)
    y = tcn(x)
    assert y.shape == (60, 2, 4)
    (grad,) = torch.autograd.grad(y[50].sum(), x)
    seen = (grad.abs().sum((1, 2)) > 0).nonzero().flatten()
    assert int(seen.max()) == 50 and int(seen.min()) == 50 - tcn.receptive_field + 1
    batch_first = TCN(3, [4], batch_first=True)
    assert batch_first(torch.randn(2, 10, 3)).shape == (2, 10, 4)


def test_tcn_gradcheck():
    tcn = TCN(2, [3, 3], kernel_size=2, dropout=0.0).double()
    x = torch.randn(6, 1, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, *p: tcn(x), (x, *tcn.parameters()), fast_mode=True)
