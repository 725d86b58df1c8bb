"""DropConnect on the hidden-to-hidden weights (Wan et al. 2013; Merity et al. 2018, AWD-LSTM).

One Bernoulli mask per forward pass is applied to each named weight (default ``weight_hh``): every
step of the pass uses the same dropped matrix, and at evaluation the full matrix is used (dropout's
scaling by ``1 / (1 - p)`` keeps the expectation). The parameters themselves are never replaced or
re-registered: the step runs with ``torch.func.functional_call`` on the masked tensors, so the
module's parameters, ``state_dict`` and optimiser see the ordinary weights (this avoids the
re-registration trick of the AWD-LSTM code that breaks on newer PyTorch). On ``weight_hh`` of an
LSTM or GRU cell it runs on the cell's fused path, the masked matrix being an input of the fused
loop (:mod:`rnnlab.regularize.fused`).

Example::

    cell = WeightDrop(rnnlab.cells.create("lstm", input_size=8, hidden_size=16), p=0.5)
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.func import functional_call

from rnnlab.cells.base import Cell
from rnnlab.errors import ConfigError
from rnnlab.fast.regularizer_masks import RegularizerMasks
from rnnlab.regularize.dropout import dropout_mask
from rnnlab.regularize.wrapper import CellWrapper
from rnnlab.sequences import State
from rnnlab.validation import check_probability


def _resolve(cell: Cell, name: str) -> str:
    """The full name of the parameter ``name`` (itself, or ``...wrapper.inner.name``)."""
    names = [n for n, _ in cell.named_parameters()]
    matches = [n for n in names if n == name or n.endswith("." + name)]
    if len(matches) != 1:
        raise ConfigError(
            f"weight_drop: the cell has no single parameter {name!r}; "
            f"choose among {', '.join(names)}"
        )
    return matches[0]


class _Step(nn.Module):
    """Calls ``cell.step`` as ``forward``, so that ``functional_call`` can run a step."""

    def __init__(self, cell: Cell) -> None:
        super().__init__()
        self.cell = cell

    def forward(self, xp_t: Tensor, state: State) -> tuple[Tensor, State]:
        return self.cell.step(xp_t, state)


class WeightDrop(CellWrapper):
    """DropConnect with one mask per pass on the cell's ``weights`` (names of its parameters)."""

    def __init__(self, inner: Cell, p: float, weights: tuple[str, ...] = ("weight_hh",)) -> None:
        super().__init__(inner)
        self.p = check_probability("weight_drop", p)
        self.weights = tuple(_resolve(inner, w) for w in weights)
        self._masked: dict[str, Tensor] | None = None
        object.__setattr__(self, "_step_module", _Step(inner))  # not a submodule: no new names

    def begin_sequence(self, batch: int, device: torch.device, dtype: torch.dtype) -> None:
        super().begin_sequence(batch, device, dtype)
        self._masked = None

    def _draw(self) -> dict[str, Tensor]:
        params = dict(self.inner.named_parameters())
        return {name: params[name] * dropout_mask(params[name], self.p) for name in self.weights}

    def masked_for_pass(self) -> dict[str, Tensor]:
        """Draw this pass's masked weights (what the first step of a pass does) and return them."""
        self._masked = self._draw()
        return self._masked

    @property
    def masked_weights(self) -> dict[str, Tensor] | None:
        """The dropped weights of the current pass (``None`` before the first training step)."""
        return self._masked

    def torch_kernel(self) -> tuple[str, list[Tensor]] | None:
        """The inner cell's fused kernel at evaluation, where this wrapper is the identity."""
        return None if self.training and self.p > 0.0 else self.inner.torch_kernel()

    def fused_unroll(
        self, x: Tensor, state: State, lengths: Tensor | None = None, reverse: bool = False
    ) -> tuple[Tensor, State] | None:
        """The inner cell's fused path: with this pass's masked ``weight_hh`` in training (when
        the cell takes it; else ``None``, the reference loop), as it is at evaluation."""
        if not self.training or self.p == 0.0:
            return self.inner.fused_unroll(x, state, lengths, reverse)
        if self.weights != ("weight_hh",) or "weight_hh" not in self.inner.fused_masks:
            return None
        masks = RegularizerMasks(weight_hh=self.masked_for_pass()["weight_hh"])
        return self.inner.fused_unroll(x, state, lengths, reverse, masks=masks)

    def step(self, xp_t: Tensor, state: State) -> tuple[Tensor, State]:
        if not self.training or self.p == 0.0:
            return self.inner.step(xp_t, state)
        if self._masked is None:
            self._masked = self._draw()
        masked = {f"cell.{name}": w for name, w in self._masked.items()}
        return functional_call(self._step_module, masked, (xp_t, state), strict=False)

    def forward(self, x_t: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        raise ConfigError("call WeightDrop through rnnlab.Recurrent or .step, not as one raw step")
