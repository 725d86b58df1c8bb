"""A stack of recurrent layers of any registered cell with a linear readout at every step.

The one model behind the benchmark tasks: regression and classification read the output at each
sequence's last step (:meth:`SequenceModel.last`), frame and token prediction read every step.

Shapes (``T`` steps, ``B`` batch, ``F`` input features, ``V`` input vocabulary, ``O`` outputs):

=========================  ==========================================================
``x``                      float ``[T, B, F]``, or int64 tokens ``[T, B]`` when
                           ``vocab_size`` is set (one-hot encoded, ``F = V``)
``lengths`` (optional)     int64 ``[B]``; steps past a length are ignored
``forward(x)``             ``[T, B, O]``
``last(x, lengths)``       ``[B, O]``: the output at step ``lengths[b] - 1`` (or ``T - 1``)
=========================  ==========================================================
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import Tensor, nn
from torch.nn import functional as F

from rnnlab.cells import create, get
from rnnlab.errors import ConfigError
from rnnlab.layers.unroll import Recurrent
from rnnlab.validation import check_positive


class SequenceModel(nn.Module):
    """Recurrent layers of one registered cell, dropout between them, and a linear readout.

    Example::

        model = SequenceModel("gru", input_size=2, hidden_size=128, output_size=1)
        y = model.last(torch.randn(600, 32, 2))      # [32, 1]

    Args:
        cell: registered cell name (``rnnlab.cells.available()``).
        input_size: features per step (the vocabulary size for token inputs).
        hidden_size: units per layer.
        output_size: outputs per step.
        num_layers: stacked recurrent layers.
        dropout: dropout on the outputs of every recurrent layer (before the next one and the
            readout).
        vocab_size: if set, inputs are token ids, one-hot encoded to ``vocab_size`` features.
        cell_options: extra keyword arguments for every cell (e.g. ``{"forget_bias": 10.0}``).
    """

    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden_size: int,
        output_size: int,
        num_layers: int = 1,
        dropout: float = 0.0,
        vocab_size: int | None = None,
        cell_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        check_positive(
            input_size=input_size,
            hidden_size=hidden_size,
            output_size=output_size,
            num_layers=num_layers,
        )
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {dropout!r}")
        if vocab_size is not None and vocab_size != input_size:
            raise ConfigError("for token inputs, input_size must equal vocab_size")
        self.vocab_size = vocab_size
        options = dict(cell_options or {})
        layers = []
        size = input_size
        for _ in range(num_layers):
            layer = Recurrent(create(cell, input_size=size, hidden_size=hidden_size, **options))
            layers.append(layer)
            size = layer.output_size
        self.layers = nn.ModuleList(layers)
        self.dropout = nn.Dropout(dropout)
        self.readout = nn.Linear(size, output_size)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        if self.vocab_size is not None:
            x = F.one_hot(x, self.vocab_size).to(self.readout.weight.dtype)
        for layer in self.layers:
            x, _ = layer(x, lengths=lengths)
            x = self.dropout(x)
        return self.readout(x)

    def last(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """The output at each sequence's last valid step: ``[B, O]``."""
        y = self(x, lengths)
        if lengths is None:
            return y[-1]
        index = (lengths.to(y.device) - 1).view(1, -1, 1).expand(1, -1, y.shape[-1])
        return y.gather(0, index).squeeze(0)


def cell_options(cell: str, forget_bias: float | None = None) -> dict[str, Any]:
    """Keyword arguments for cells of family ``cell``: ``forget_bias`` when given and accepted."""
    if forget_bias is None:
        return {}
    if "forget_bias" not in inspect.signature(get(cell)).parameters:
        raise ConfigError(f"cell {cell!r} has no forget gate bias; drop --forget-bias")
    return {"forget_bias": forget_bias}


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
