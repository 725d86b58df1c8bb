"""Stack: recurrent layers applied in turn, the deep RNN of the notes.

    x^(0) = x
    z^(k) = layer_k(x^(k-1))                           (+ x^(k-1) with residual=True)
    x^(k) = dropout(z^(k)) for every layer but the last, as torch.nn.LSTM does

Residual (skip) connections (He et al. 2016; Wu et al. 2016 for deep recurrent stacks) help
gradients reach the lower layers once a stack is deeper than a few layers. They need each layer to
keep the width: put a layer that changes it in front, ``Stack([first, Stack(rest,
residual=True)])``.

Shapes (T = time steps, B = batch, I = input size, H = the last layer's output size):

=========  ================================================================================
x          ``[T, B, I]``, or ``[B, T, I]`` when the layers are ``batch_first``
lengths    ``[B]`` integers in ``1..T`` (optional), passed to every layer
state      a list with one state per layer (each as that layer takes it; None for zeros)
y          ``[T, B, H]`` (zero at padded steps)
=========  ================================================================================
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from rnnlab.errors import ConfigError
from rnnlab.layers.unroll import Recurrent
from rnnlab.sequences import check_lengths


def layer_widths(layer: nn.Module) -> tuple[int | None, int | None]:
    """``(input width, output width)`` of a recurrent layer, ``None`` where it does not say."""
    if isinstance(layer, Recurrent):
        return layer.cell.input_size, layer.cell.output_size
    return getattr(layer, "input_size", None), getattr(layer, "output_size", None)


class Stack(nn.Module):
    """Recurrent layers applied one after the other, with dropout and residual connections.

    Each layer is a module called as ``layer(x, state, lengths) -> (y, state)``: a
    ``Recurrent``, a ``Bidirectional``, another ``Stack``, ...

    Example::

        layers = [Recurrent(rnnlab.cells.create("lstm", input_size=32, hidden_size=32))
                  for _ in range(4)]
        deep = Stack(layers, dropout=0.2, residual=True)
        y, states = deep(torch.randn(50, 4, 32), lengths=torch.tensor([50, 20, 7, 1]))

    Args:
        layers: the layers, first to last; each one's output width is the next one's input width.
        dropout: probability of zeroing an element of each layer's output except the last
            (only in training).
        residual: add each layer's input to its output (every layer must keep the width).
        locked: draw the dropout mask once per sequence and reuse it at every step (variational
            dropout, Gal and Ghahramani 2016) instead of a fresh mask per element.
    """

    def __init__(
        self,
        layers: Sequence[nn.Module],
        dropout: float = 0.0,
        residual: bool = False,
        locked: bool = False,
    ) -> None:
        super().__init__()
        if len(layers) == 0:
            raise ConfigError("a Stack needs at least one layer")
        if (
            isinstance(dropout, bool)
            or not isinstance(dropout, int | float)
            or not (0.0 <= dropout <= 1.0)
        ):
            raise ConfigError(f"dropout must be a probability in [0, 1], got {dropout!r}")
        widths = [layer_widths(layer) for layer in layers]
        for k in range(1, len(layers)):
            out, inp = widths[k - 1][1], widths[k][0]
            if out is not None and inp is not None and out != inp:
                raise ConfigError(
                    f"layer {k - 1} outputs width {out} but layer {k} expects input width {inp}"
                )
        if residual:
            for k, (inp, out) in enumerate(widths):
                if inp is None or out is None or inp != out:
                    raise ConfigError(
                        f"residual=True needs every layer to keep its width, but layer {k} maps "
                        f"{inp} to {out}; put it in front: Stack([first, Stack(rest, "
                        "residual=True)])"
                    )
        batch_firsts = {layer.batch_first for layer in layers if hasattr(layer, "batch_first")}
        if len(batch_firsts) > 1:
            raise ConfigError("all layers of a Stack must have the same batch_first")
        self.layers = nn.ModuleList(layers)
        self.dropout, self.residual, self.locked = float(dropout), residual, locked
        self.batch_first = batch_firsts.pop() if batch_firsts else False

    @property
    def input_size(self) -> int | None:
        return layer_widths(self.layers[0])[0]

    @property
    def output_size(self) -> int | None:
        return layer_widths(self.layers[-1])[1]

    def forward(
        self,
        x: Tensor,
        state: Sequence | None = None,
        lengths: Tensor | list[int] | None = None,
    ) -> tuple[Tensor, list]:
        if state is None:
            state = [None] * len(self.layers)
        elif len(state) != len(self.layers):
            raise ConfigError(
                f"a Stack of {len(self.layers)} layers takes a list of {len(self.layers)} states, "
                f"got {len(state)}"
            )
        mask = self._valid_mask(x, lengths) if self.residual and lengths is not None else None
        last = len(self.layers) - 1
        states = []
        for k, (layer, layer_state) in enumerate(zip(self.layers, state)):
            y, layer_state = layer(x, layer_state, lengths)
            if self.residual:
                y = y + (x if mask is None else x * mask)
            if k < last and self.dropout > 0:
                y = self._dropout(y)
            x = y
            states.append(layer_state)
        return x, states

    def _dropout(self, y: Tensor) -> Tensor:
        if not self.locked:
            return nn.functional.dropout(y, self.dropout, self.training)
        if not self.training:
            return y
        shape = (y.shape[0], 1, y.shape[2]) if self.batch_first else (1, *y.shape[1:])
        return y * (y.new_empty(shape).bernoulli_(1.0 - self.dropout) / (1.0 - self.dropout))

    def _valid_mask(self, x: Tensor, lengths: Tensor | list[int]) -> Tensor:
        """``[T, B, 1]`` (or ``[B, T, 1]``): 1 at valid steps, 0 at padding."""
        time_dim = 1 if self.batch_first else 0
        steps, batch = x.shape[time_dim], x.shape[1 - time_dim]
        lengths = check_lengths(lengths, steps, batch, x.device)
        mask = (torch.arange(steps, device=x.device).unsqueeze(1) < lengths).to(x.dtype)
        return (mask.T if self.batch_first else mask).unsqueeze(-1)

    def extra_repr(self) -> str:
        locked = ", locked=True" if self.locked else ""
        return f"dropout={self.dropout}, residual={self.residual}{locked}"
