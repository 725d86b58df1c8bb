"""Weight noise (Graves 2011; the notes' "prefer low-precision weights to small weights").

Gaussian noise is added to the weights before the forward and backward pass and removed before
the optimiser updates them, so the gradient is taken at a perturbed point but the update applies
to the clean weights::

    noise = WeightNoise(model.parameters(), sigma=0.075)
    with noise:                 # weights += N(0, sigma^2)
        loss = model.loss(batch)
        loss.backward()
    optimizer.step()            # the weights are exactly the clean ones again here
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from rnnlab.errors import ConfigError


class WeightNoise:
    """Context manager adding N(0, sigma^2) to every parameter on enter and removing it on exit."""

    def __init__(self, parameters: Iterable[nn.Parameter], sigma: float) -> None:
        if sigma < 0:
            raise ConfigError(f"weight noise sigma must be >= 0, got {sigma!r}")
        self.parameters = [p for p in parameters if p.requires_grad]
        self.sigma = float(sigma)
        self._saved: list[Tensor] = []

    def __enter__(self) -> WeightNoise:
        if self.sigma > 0:
            with torch.no_grad():
                self._saved = [p.detach().clone() for p in self.parameters]
                for p in self.parameters:
                    p.add_(torch.randn_like(p), alpha=self.sigma)
        return self

    def __exit__(self, *exc: object) -> None:
        with torch.no_grad():
            for p, clean in zip(self.parameters, self._saved):
                p.copy_(clean)
        self._saved = []
