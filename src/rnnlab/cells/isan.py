"""Input-switched affine network (Foerster et al. 2017, "Input switched affine networks: an RNN
architecture designed for interpretability").

Each input symbol selects its own affine map; there is no nonlinearity::

    h_t = W_{x_t} h_{t-1} + b_{x_t}
    y_t = h_t

so with a linear readout ``logits_t = W_ro h_t + b_ro`` the logits decompose exactly into one
contribution per earlier step::

    logits_t = b_ro + W_ro W_{x_t} ... W_{x_1} h_0 + sum_{s <= t} kappa_s^t
    kappa_s^t = W_ro W_{x_t} W_{x_{t-1}} ... W_{x_{s+1}} b_{x_s}

(:func:`contributions`, plotted over a text by :func:`plot_contributions`). Inputs are one-hot
vectors of the symbols (``input_size`` = vocabulary size); a non-one-hot input ``x`` uses the
mixture ``sum_v x_v (W_v, b_v)``.

Example::

    cell = rnnlab.cells.create("isan", input_size=65, hidden_size=128)
    y, h = rnnlab.Recurrent(cell)(F.one_hot(tokens, 65).float())      # tokens [T, B]
    parts = contributions(cell, readout, tokens[:, 0])                 # readout: nn.Linear(128, 65)

Attributes: ``weight_hh [V * H, H]`` (symbol v's matrix is rows ``v*H:(v+1)*H``), orthogonal per
symbol by default (``init`` as for the other cells); ``bias_hh [V, H]`` zero.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor, nn

from rnnlab.cells.base import Cell, register
from rnnlab.cells.init import init_recurrent_
from rnnlab.validation import check_positive


@register("isan")
class ISANCell(Cell):
    """ISAN cell over ``input_size`` symbols (one-hot inputs); state ``h [B, H]``."""

    def __init__(self, input_size: int, hidden_size: int, init: str = "orthogonal") -> None:
        super().__init__()
        check_positive(input_size=input_size, hidden_size=hidden_size)
        self.input_size, self.hidden_size, self.init = input_size, hidden_size, init
        self.weight_hh = nn.Parameter(torch.empty(input_size * hidden_size, hidden_size))
        self.bias_hh = nn.Parameter(torch.zeros(input_size, hidden_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init_recurrent_(self.weight_hh, self.input_size, self.init)
        nn.init.zeros_(self.bias_hh)

    def init_state(self, batch, device=None, dtype=None) -> Tensor:
        return torch.zeros(batch, self.hidden_size, device=device, dtype=dtype)

    def step(self, xp_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        every = (state @ self.weight_hh.T).view(-1, self.input_size, self.hidden_size)
        h = torch.einsum("bv,bvh->bh", xp_t, every) + xp_t @ self.bias_hh
        return h, h

    def matrix(self, symbol: int) -> Tensor:
        """``W_v [H, H]`` of one symbol."""
        rows = slice(symbol * self.hidden_size, (symbol + 1) * self.hidden_size)
        return self.weight_hh[rows]


class Contributions(NamedTuple):
    """The exact decomposition ``logits[t] = bias + initial[t] + kappa[t, :t+1].sum(0)``.

    ``kappa [T, T, O]``: ``kappa[t, s]`` is the contribution of the symbol at step ``s`` to the
    logits at step ``t`` (zero for ``s > t``); ``initial [T, O]``: that of the initial state;
    ``bias [O]``: the readout's bias.
    """

    kappa: Tensor
    initial: Tensor
    bias: Tensor

    def logits(self) -> Tensor:
        return self.bias + self.initial + self.kappa.sum(1)


@torch.no_grad()
def contributions(
    cell: ISANCell, readout: nn.Linear, symbols: Tensor, state: Tensor | None = None
) -> Contributions:
    """Decompose the logits ``readout(h_t)`` of an ISAN run over ``symbols [T]`` (integers)
    from ``state [H]`` (default zero) into per-step contributions (see :class:`Contributions`)."""
    steps = symbols.shape[0]
    weight = cell.weight_hh
    h0 = state if state is not None else weight.new_zeros(cell.hidden_size)
    kappa = weight.new_zeros(steps, steps, readout.out_features)
    initial = weight.new_zeros(steps, readout.out_features)
    carried = weight.new_zeros(0, cell.hidden_size)  # row s: W_{x_t}...W_{x_{s+1}} b_{x_s}
    for t, symbol in enumerate(symbols.tolist()):
        w = cell.matrix(symbol)
        carried = torch.cat([carried @ w.T, cell.bias_hh[symbol].unsqueeze(0)])
        h0 = w @ h0
        kappa[t, : t + 1] = carried @ readout.weight.T
        initial[t] = readout.weight @ h0
    bias = readout.bias if readout.bias is not None else weight.new_zeros(readout.out_features)
    return Contributions(kappa, initial, bias.detach().clone())


def plot_contributions(
    parts: Contributions,
    text: str,
    targets: list[int],
    path: str | Path | None = None,
):
    """Heat map of ``kappa[t, s, targets[t]]``: how much the character at step ``s`` (x axis)
    raises the logit of the true next character at step ``t`` (y axis). ``text`` holds the
    ``T`` input characters. Saved to ``path`` when given; returns the matplotlib figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = len(text)
    index = torch.arange(steps)
    values = parts.kappa[index, :, torch.as_tensor(targets)].cpu().numpy()  # [t, s]
    mask = torch.ones(steps, steps).triu(1).bool().numpy()
    values[mask] = float("nan")
    limit = float(abs(values[~mask]).max()) or 1.0
    size = max(4.0, 0.25 * steps)
    figure, axes = plt.subplots(figsize=(size + 1.5, size))
    image = axes.imshow(values, cmap="RdBu_r", vmin=-limit, vmax=limit)
    labels = [repr(c)[1:-1] for c in text]
    axes.set_xticks(range(steps), labels, fontsize=8)
    axes.set_yticks(range(steps), labels, fontsize=8)
    axes.set_xlabel("contributing input character (step s)")
    axes.set_ylabel("input at step t (logit of the next character)")
    figure.colorbar(image, ax=axes, label="kappa_s^t for the true next character")
    figure.tight_layout()
    if path is not None:
        figure.savefig(path, dpi=120)
    return figure
