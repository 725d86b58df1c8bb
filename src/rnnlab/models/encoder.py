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
from rnnlab.layers import Bidirectional, Recurrent, Stack
from rnnlab.validation import check_positive


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
    """``num_layers`` layers of a cell unrolled over time, as a :class:`rnnlab.layers.Stack` of
    :class:`rnnlab.layers.Recurrent` layers (of :class:`rnnlab.layers.Bidirectional` pairs when
    ``bidirectional``), with dropout between layers. Plain LSTM/GRU/RNN cells run on torch's
    fused kernel, any other cell on the reference loop.

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
        layers: list[nn.Module] = []
        size = input_size
        for _ in range(num_layers):
            forward = cells.create(cell, input_size=size, hidden_size=hidden_size, **cell_kwargs)
            self.forward_size = forward.output_size
            if bidirectional:
                backward = cells.create(
                    cell, input_size=size, hidden_size=hidden_size, **cell_kwargs
                )
                layers.append(Bidirectional(Recurrent(forward), Recurrent(backward, reverse=True)))
            else:
                layers.append(Recurrent(forward))
            size = layers[-1].output_size
        self.layers = Stack(layers, dropout=dropout)
        self.output_size = size

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Return ``(y [T, B, D*H], summary [B, D*H])``."""
        y, _ = self.layers(x, None, lengths)
        if not self.bidirectional:
            return y, last_valid(y, lengths)
        forward, backward = y[..., : self.forward_size], y[..., self.forward_size :]
        return y, torch.cat([last_valid(forward, lengths), backward[0]], dim=-1)
