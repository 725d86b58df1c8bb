"""Structures built from cells: unrolling over time and the layers composed from it."""

from rnnlab.layers.bidirectional import Bidirectional, BidirectionalState
from rnnlab.layers.stack import Stack
from rnnlab.layers.torch_compat import GRU, LSTM, RNN
from rnnlab.layers.unroll import Recurrent, unroll

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "Bidirectional",
    "BidirectionalState",
    "Recurrent",
    "Stack",
    "unroll",
]
