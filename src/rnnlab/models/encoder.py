"""A recurrent encoder over any registered cell: stacked, optionally bidirectional, with lengths.

Shapes (T = steps, B = batch, I = input size, H = cell output size, D = 2 if bidirectional else 1):

=========  =====================================================================
x          ``[T, B, I]`` (time first)
lengths    ``[B]`` valid steps of each sequence, or ``None`` (all ``T`` valid)
y          ``[T, B, D*H]`` outputs of the top layer, zero at padded steps
summary    ``[B, D*H]``: the forward direction's output at each sequence's last valid step,
           concatenated with the backward direction's output at step 0
=========  =====================================================================
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnlab import cells
from rnnlab.cells.base import check_positive
from rnnlab.layers import Recurrent


def length_mask(lengths: Tensor | None, steps: int, batch: int, device) -> Tensor:
    """``[T, B]`` bool, true at valid steps (all true when ``lengths`` is ``None``)."""
    if lengths is None:
        return torch.ones(steps, batch, dtype=torch.bool, device=device)
    return torch.arange(steps, device=device).unsqueeze(1) < lengths.to(device).unsqueeze(0)


def last_valid(y: Tensor, lengths: Tensor | None) -> Tensor:
    """``y [T, B, F]`` at each sequence's last valid step: ``[B, F]``."""
    if lengths is None:
        return y[-1]
    index = (lengths.to(y.device) - 1).view(1, -1, 1).expand(1, y.shape[1], y.shape[2])
    return y.gather(0, index).squeeze(0)


class RecurrentEncoder(nn.Module):
    """``num_layers`` layers of a cell unrolled over time; each layer's input is the previous
    layer's output (both directions concatenated when ``bidirectional``), with dropout between
    layers. Every layer runs through :class:`rnnlab.layers.Recurrent`, so plain LSTM/GRU/RNN cells
    use torch's fused kernel and any other cell the reference loop.

    Example::

        enc = RecurrentEncoder("gru", input_size=32, hidden_size=64, bidirectional=True)
        y, summary = enc(torch.randn(20, 4, 32), lengths=torch.tensor([20, 9, 3, 1]))
    """

    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        **cell_kwargs,
    ) -> None:
        super().__init__()
        check_positive(num_layers=num_layers)
        self.bidirectional = bidirectional
        self.forward_layers = nn.ModuleList()
        self.backward_layers = nn.ModuleList()
        size = input_size
        for _ in range(num_layers):
            fwd = cells.create(cell, input_size=size, hidden_size=hidden_size, **cell_kwargs)
            self.forward_layers.append(Recurrent(fwd))
            width = fwd.output_size
            if bidirectional:
                bwd = cells.create(cell, input_size=size, hidden_size=hidden_size, **cell_kwargs)
                self.backward_layers.append(Recurrent(bwd, reverse=True))
                width += bwd.output_size
            size = width
        self.output_size = size
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Return ``(y [T, B, D*H], summary [B, D*H])``."""
        for i, layer in enumerate(self.forward_layers):
            if i > 0:
                x = self.dropout(x)
            y, _ = layer(x, lengths=lengths)
            if self.bidirectional:
                y_back, _ = self.backward_layers[i](x, lengths=lengths)
                summary = torch.cat([last_valid(y, lengths), y_back[0]], dim=-1)
                y = torch.cat([y, y_back], dim=-1)
            else:
                summary = last_valid(y, lengths)
            x = y
        return x, summary
