"""rnnlab: recurrent neural networks on PyTorch.

Cells (one step) -> Recurrent (a cell over time) -> structures -> models -> training -> analysis.
"""

import torch

from rnnlab import cells
from rnnlab.cells import Cell
from rnnlab.errors import CheckpointError, ConfigError, DataError, RnnlabError
from rnnlab.layers import GRU, LSTM, RNN, Bidirectional, Recurrent, Stack, unroll
from rnnlab.layers.torch_compat import SAFE_GLOBALS

# whole models holding rnnlab's drop-in layers load with torch.load(..., weights_only=True)
torch.serialization.add_safe_globals(SAFE_GLOBALS)

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
