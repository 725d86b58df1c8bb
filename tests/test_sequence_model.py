"""SequenceModel: shapes, token inputs, the last valid step, and any registered cell."""

from __future__ import annotations

import pytest
import torch

from rnnlab.cells import available
from rnnlab.errors import ConfigError
from rnnlab.models.sequence import SequenceModel, cell_options, count_parameters


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_last_reads_each_sequence_at_its_length(cell):
    model = SequenceModel(cell, 3, 8, 2, num_layers=2).eval()
    x = torch.randn(7, 3, 3)
    lengths = torch.tensor([7, 4, 1])
    last = model.last(x, lengths)
    for b, length in enumerate(lengths.tolist()):
        alone = model(x[:length, b : b + 1])[-1, 0]
        torch.testing.assert_close(last[b], alone)


def test_token_inputs_are_one_hot():
    model = SequenceModel("gru", 5, 4, 3, vocab_size=5)
    tokens = torch.randint(0, 5, (6, 2))
    one_hot = torch.nn.functional.one_hot(tokens, 5).float()
    model.vocab_size = None
    expected = model(one_hot)
    model.vocab_size = 5
    torch.testing.assert_close(model(tokens), expected)


def test_lstm_parameter_count_matches_the_formula():
    model = SequenceModel("lstm", 2, 130, 1)
    assert count_parameters(model) == 4 * 130 * (2 + 130) + 2 * 4 * 130 + 130 + 1


def test_cell_options_and_errors():
    assert "lstm" in available()
    assert cell_options("lstm", 10.0) == {"forget_bias": 10.0}
    assert cell_options("gru", None) == {}
    with pytest.raises(ConfigError, match="forget gate"):
        cell_options("gru", 10.0)
    model = SequenceModel("lstm", 2, 4, 1, cell_options={"forget_bias": 10.0})
    bias = model.layers[0].cell.bias_ih
    assert bias[4:8].tolist() == [10.0] * 4
    with pytest.raises(ConfigError):
        SequenceModel("lstm", 2, 4, 1, dropout=1.5)
