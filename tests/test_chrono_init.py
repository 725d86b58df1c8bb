"""Chrono initialisation (Tallec and Ollivier 2018) of LSTM forget and GRU update biases."""

import math

import pytest
import torch

import rnnlab
from rnnlab.cells import create
from rnnlab.errors import ConfigError


def test_lstm_chrono_forget_and_input_biases():
    torch.manual_seed(0)
    cell = create("lstm", input_size=3, hidden_size=500, chrono=1000)
    H = cell.hidden_size
    forget = (cell.bias_ih + cell.bias_hh).detach()[H : 2 * H]
    inputs = (cell.bias_ih + cell.bias_hh).detach()[:H]
    assert float(forget.min()) >= 0.0 and float(forget.max()) <= math.log(999) + 1e-6
    assert float(forget.max()) > math.log(500)  # spread over the range, not the default 1.0
    torch.testing.assert_close(inputs, -forget)
    # the other gates keep their zero bias
    assert torch.all((cell.bias_ih + cell.bias_hh)[2 * H :] == 0)


def test_lstm_coupled_chrono_sets_the_input_gate():
    torch.manual_seed(0)
    cell = create("lstm", input_size=3, hidden_size=64, chrono=100, coupled=True)
    # f = 1 - i = sigmoid(-a_i): a_i starts at -log(u) <= 0
    bias = cell.bias_ih.detach()
    assert float(bias[:64].max()) <= 0.0
    assert float(bias[:64].min()) >= -math.log(99) - 1e-6


def test_gru_chrono_update_bias():
    torch.manual_seed(0)
    cell = create("gru", input_size=3, hidden_size=256, chrono=600)
    update = (cell.bias_ih + cell.bias_hh).detach()[256:512]
    assert float(update.min()) >= 0.0 and float(update.max()) <= math.log(599) + 1e-6
    # h_t = (1 - z) n + z h_{t-1}: a large update bias keeps the state, so a fresh cell forgets
    # slowly; its average keep rate is well above the default cell's ~0.5
    x = torch.zeros(8, 3)
    h = torch.randn(8, 256)
    with torch.no_grad():
        z = torch.sigmoid(x @ cell.weight_ih[256:512].T + h @ cell.weight_hh[256:512].T + update)
    assert float(z.mean()) > 0.8


def test_chrono_layers_keep_torch_kernel_and_train():
    layer = rnnlab.LSTM(4, 16, num_layers=2, init="orthogonal", chrono=50)
    assert layer(torch.randn(7, 2, 4))[0].shape == (7, 2, 16)
    forget = layer.bias_ih_l1.detach()[16:32]
    assert float(forget.std()) > 0.1  # drawn per unit, not the constant default


@pytest.mark.parametrize("bad", [1, 2, -5, 2.5, True])
def test_chrono_rejects_bad_values(bad):
    with pytest.raises(ConfigError, match="chrono"):
        create("lstm", input_size=3, hidden_size=4, chrono=bad)
