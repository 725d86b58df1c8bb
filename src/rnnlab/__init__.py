"""rnnlab: recurrent neural networks on PyTorch.

Cells (one step) -> Recurrent (a cell over time) -> structures -> models -> training -> analysis.
"""

from rnnlab import cells
from rnnlab.cells import Cell
from rnnlab.errors import CheckpointError, ConfigError, DataError, RnnlabError
from rnnlab.layers import Recurrent, unroll

__version__ = "0.1.0"

__all__ = [
    "Cell",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "Recurrent",
    "RnnlabError",
    "cells",
    "unroll",
]
