"""rnnlab: recurrent neural networks on PyTorch.

Cells (one step) -> Recurrent (a cell over time) -> structures -> models -> training -> analysis.
"""

from rnnlab import cells
from rnnlab.cells import Cell
from rnnlab.errors import CheckpointError, ConfigError, DataError, RnnlabError
from rnnlab.layers import GRU, LSTM, RNN, Bidirectional, Recurrent, Stack, unroll

__version__ = "0.1.0"

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "Bidirectional",
    "Cell",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "Recurrent",
    "RnnlabError",
    "Stack",
    "cells",
    "unroll",
]
