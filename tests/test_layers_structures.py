"""Bidirectional and Stack over any cell: reference equivalence, masking, residuals, dropout."""

from __future__ import annotations

import pytest
import torch

import rnnlab
from rnnlab.cells.lstm import LSTMState
from rnnlab.layers import Bidirectional, Recurrent, Stack, unroll

T, B = 6, 3
LENGTHS = torch.tensor([6, 2, 4])


def cell(name="lstm", input_size=4, hidden_size=5, **kwargs):
    return rnnlab.cells.create(
        name, input_size=input_size, hidden_size=hidden_size, **kwargs
    ).double()


def flat(state):
    if torch.is_tensor(state):
        return state
    return torch.cat([flat(s) for s in state], dim=-1)


@pytest.mark.parametrize("name", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_bidirectional_is_two_reference_unrolls_concatenated(name, fast, with_lengths):
    forward, backward = cell(name), cell(name)
    bi = Bidirectional(Recurrent(forward, fast=fast), Recurrent(backward, reverse=True, fast=fast))
    x = torch.randn(T, B, 4, dtype=torch.float64)
    lengths = LENGTHS if with_lengths else None
    y, state = bi(x, lengths=lengths)
    zeros = forward.init_state(B, dtype=torch.float64)
    y_fwd, s_fwd = unroll(forward, x, zeros, lengths)
    y_bwd, s_bwd = unroll(backward, x, zeros, lengths, reverse=True)
    torch.testing.assert_close(y, torch.cat([y_fwd, y_bwd], dim=-1))
    torch.testing.assert_close(flat(state.forward), flat(s_fwd))
    torch.testing.assert_close(flat(state.backward), flat(s_bwd))
    if with_lengths:  # the backward direction starts at each sequence's last valid step
        n = int(LENGTHS[1])
        alone, _ = unroll(backward, x[:n, 1:2], backward.init_state(1, dtype=x.dtype), reverse=True)
        torch.testing.assert_close(y[:n, 1, backward.output_size :], alone[:, 0])


def test_bidirectional_sum_merge_cells_and_initial_state():
    bi = Bidirectional(cell("gru"), cell("gru"), merge="sum")
    x = torch.randn(T, B, 4, dtype=torch.float64)
    h0 = (torch.randn(B, 5, dtype=torch.float64), torch.randn(B, 5, dtype=torch.float64))
    y, (h_fwd, h_bwd) = bi(x, h0)
    y_fwd, _ = unroll(bi.forward_rnn.cell, x, h0[0])
    y_bwd, _ = unroll(bi.backward_rnn.cell, x, h0[1], reverse=True)
    torch.testing.assert_close(y, y_fwd + y_bwd)
    assert bi.output_size == 5 and Bidirectional(cell(), cell()).output_size == 10


def test_bidirectional_batch_first_is_the_transpose():
    forward, backward = cell(), cell()
    time_major = Bidirectional(Recurrent(forward), Recurrent(backward, reverse=True))
    batch_major = Bidirectional(
        Recurrent(forward, batch_first=True), Recurrent(backward, batch_first=True, reverse=True)
    )
    x = torch.randn(T, B, 4, dtype=torch.float64)
    y, state = time_major(x, lengths=LENGTHS)
    y_bf, state_bf = batch_major(x.transpose(0, 1), lengths=LENGTHS)
    torch.testing.assert_close(y_bf.transpose(0, 1), y)
    torch.testing.assert_close(flat(state_bf), flat(state))
    with pytest.raises(rnnlab.ConfigError, match="same batch_first"):
        Bidirectional(Recurrent(cell()), Recurrent(cell(), batch_first=True, reverse=True))


def test_bidirectional_gradcheck():
    bi = Bidirectional(Recurrent(cell(hidden_size=3), fast=False), cell("gru", hidden_size=2))
    x = torch.randn(4, 2, 4, dtype=torch.float64, requires_grad=True)

    def run(x, *params):
        y, state = bi(x, lengths=torch.tensor([4, 2]))
        return y, flat(state)

    assert torch.autograd.gradcheck(run, (x, *bi.parameters()))


def test_bidirectional_errors():
    with pytest.raises(rnnlab.ConfigError, match="reverse=True"):
        Bidirectional(Recurrent(cell()), Recurrent(cell()))
    with pytest.raises(rnnlab.ConfigError, match="merge='sum' needs equal output sizes"):
        Bidirectional(cell(hidden_size=5), cell(hidden_size=6), merge="sum")
    with pytest.raises(rnnlab.ConfigError, match="merge must be"):
        Bidirectional(cell(), cell(), merge="mean")
    with pytest.raises(rnnlab.ConfigError, match="same input size"):
        Bidirectional(cell(input_size=4), cell(input_size=3))


def padded_results(module, x, lengths):
    y, state = module(x, lengths=lengths)
    return y, flat(state if not isinstance(state, list) else tuple(state))


def deep_layers(kind):
    if kind == "recurrent":
        return Recurrent(cell())
    if kind == "bidirectional":
        return Bidirectional(cell(), cell())
    if kind == "residual_stack":
        return Stack(
            [
                Recurrent(cell()),
                Stack([Recurrent(cell(input_size=5)) for _ in range(2)], residual=True),
            ]
        )
    if kind == "lstm_fused":
        return rnnlab.LSTM(4, 5, num_layers=2, bidirectional=True, dtype=torch.float64)
    return rnnlab.GRU(4, 5, num_layers=2, bidirectional=True, dtype=torch.float64, fast=False)


@pytest.mark.parametrize(
    "kind", ["recurrent", "bidirectional", "residual_stack", "lstm_fused", "gru_layer_by_layer"]
)
def test_outputs_do_not_depend_on_padding(kind):
    module = deep_layers(kind)
    x = torch.randn(T, B, 4, dtype=torch.float64)
    y, state = padded_results(module, x, LENGTHS)
    garbage = x.clone()
    for b, n in enumerate(LENGTHS.tolist()):
        garbage[n:, b] = 100 * torch.randn(T - n, 4, dtype=torch.float64)
    longer = torch.cat([garbage, torch.randn(3, B, 4, dtype=torch.float64)])
    for padded in (garbage, longer):
        y2, state2 = padded_results(module, padded, LENGTHS)
        torch.testing.assert_close(y2[:T], y)
        assert torch.all(y2[T:] == 0)
        torch.testing.assert_close(state2, state)
    for b, n in enumerate(LENGTHS.tolist()):
        assert torch.all(y[n:, b] == 0)


def test_residual_stack_adds_each_layers_input():
    layers = [Recurrent(cell(input_size=5)) for _ in range(3)]
    stack = Stack(layers, residual=True)
    x = torch.randn(T, B, 5, dtype=torch.float64)
    y, states = stack(x)
    expected = x
    for layer, state in zip(layers, states):
        out, layer_state = layer(expected)
        expected = out + expected
        torch.testing.assert_close(flat(state), flat(layer_state))
    torch.testing.assert_close(y, expected)
    assert y.shape == (T, B, 5) and len(states) == 3 and isinstance(states[0], LSTMState)
    assert (stack.input_size, stack.output_size) == (5, 5)


def test_stack_of_bidirectional_layers_shapes_and_state_carry():
    stack = Stack(
        [Bidirectional(cell(), cell()), Bidirectional(cell("gru", 10, 3), cell("gru", 10, 4))],
        dropout=0.3,
    ).eval()
    assert stack.output_size == 7
    x = torch.randn(T, B, 4, dtype=torch.float64)
    y, states = stack(x)
    assert y.shape == (T, B, 7)
    assert states[1].forward.shape == (B, 3) and states[1].backward.shape == (B, 4)
    forward_only = Stack([Recurrent(cell()), Recurrent(cell("rnn", 5, 2))])
    y_full, _ = forward_only(x)
    y_first, carried = forward_only(x[:2])
    y_rest, _ = forward_only(x[2:], carried)
    torch.testing.assert_close(torch.cat([y_first, y_rest]), y_full)


def test_stack_batch_first_residual_masks_padding():
    layers = [Recurrent(cell(input_size=5), batch_first=True) for _ in range(2)]
    stack = Stack(layers, residual=True)
    x = torch.randn(B, T, 5, dtype=torch.float64)
    y, _ = stack(x, lengths=LENGTHS)
    assert y.shape == (B, T, 5)
    for b, n in enumerate(LENGTHS.tolist()):
        assert torch.all(y[b, n:] == 0)


def test_stack_dropout_between_layers_only_in_training():
    stack = Stack([Recurrent(cell()), Recurrent(cell(input_size=5))], dropout=0.5)
    x = torch.randn(T, B, 4, dtype=torch.float64)
    stack.eval()
    y_eval, _ = stack(x)
    first_layer, _ = stack.layers[0](x)
    torch.testing.assert_close(y_eval, stack.layers[1](first_layer)[0])
    stack.train()
    assert not torch.allclose(stack(x)[0], y_eval)
    single = Stack([Recurrent(cell())], dropout=0.5).train()
    torch.testing.assert_close(single(x)[0], single.layers[0](x)[0])  # never after the last


def test_stack_errors():
    with pytest.raises(rnnlab.ConfigError, match="layer 0 maps 4 to 5"):
        Stack([Recurrent(cell())], residual=True)
    with pytest.raises(rnnlab.ConfigError, match="layer 0 outputs width 5 but layer 1 expects"):
        Stack([Recurrent(cell()), Recurrent(cell())])
    with pytest.raises(rnnlab.ConfigError, match="dropout"):
        Stack([Recurrent(cell())], dropout=-0.1)
    with pytest.raises(rnnlab.ConfigError, match="at least one layer"):
        Stack([])
    with pytest.raises(rnnlab.ConfigError, match="batch_first"):
        Stack([Recurrent(cell()), Recurrent(cell(input_size=5), batch_first=True)])
    with pytest.raises(rnnlab.ConfigError, match="list of 1 states"):
        Stack([Recurrent(cell())])(torch.randn(T, B, 4, dtype=torch.float64), [None, None])
