"""How many bits a recurrent network stores per parameter (Collins, Sohl-Dickstein and Sussillo
2017, "Capacity and trainability in recurrent neural networks").

The memorisation experiment: ``N`` random input sequences (Gaussian, ``T`` steps of ``F``
features), each with a random label of ``K`` classes (``log2 K`` bits). A network (recurrent
layer of any registered cell, a linear readout of its last output) is trained on them until it
stops improving; the information it stored is ``N * I(label; prediction)``, the mutual
information between the true labels and the network's predicted labels on the same ``N``
examples, in bits (the paper's measure), less the mutual information the same predictions have
with shuffled labels (the plug-in estimate's bias: about ``(K - 1)^2 / (2 ln 2)`` bits in all
for ``K`` classes even when the predictions carry none). ``N`` is varied and the best kept,
since too few examples waste capacity and too many make each one harder to store. The paper
finds about 5 bits per parameter for every common architecture; :func:`fit_slope` gives the bits
per parameter of a cell as the least-squares slope of bits stored against parameters through
the origin.

Shapes: inputs ``[T, N, F]``, labels ``[N]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnlab.errors import ConfigError
from rnnlab.models.sequence import SequenceModel, count_parameters

PAPER_BITS_PER_PARAMETER = 5.0
"""Collins et al. 2017: "about 5 bits per parameter" for RNN, GRU, LSTM and others."""


def mutual_information(labels: np.ndarray, predictions: np.ndarray) -> float:
    """``I(label; prediction)`` in bits per example, from the empirical joint distribution of two
    integer arrays of equal length."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    if labels.shape != predictions.shape or labels.ndim != 1 or len(labels) == 0:
        raise ConfigError("labels and predictions must be two 1-d arrays of the same length")
    _, y = np.unique(labels, return_inverse=True)
    _, p = np.unique(predictions, return_inverse=True)
    joint = np.zeros((y.max() + 1, p.max() + 1))
    np.add.at(joint, (y, p), 1.0)
    joint /= len(labels)
    outer = joint.sum(axis=1, keepdims=True) * joint.sum(axis=0, keepdims=True)
    inside = joint > 0
    return float((joint[inside] * np.log2(joint[inside] / outer[inside])).sum())


def memorisation_data(
    examples: int, steps: int, features: int, classes: int, seed: int
) -> tuple[Tensor, Tensor]:
    """Random inputs ``[T, N, F]`` and uniformly random labels ``[N]``."""
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(steps, examples, features, generator=generator)
    labels = torch.randint(classes, (examples,), generator=generator)
    return inputs, labels


def chance_information(
    labels: np.ndarray, predictions: np.ndarray, shuffles: int = 20, seed: int = 0
) -> float:
    """The mean :func:`mutual_information` of ``predictions`` with shuffled ``labels``: what the
    estimate gives when the predictions carry no information about the labels."""
    rng = np.random.default_rng(seed)
    return float(
        np.mean([mutual_information(rng.permutation(labels), predictions) for _ in range(shuffles)])
    )


@dataclass
class CapacityPoint:
    """One trained network: its cell, size and parameters, and the bits it stored."""

    cell: str
    hidden: int
    parameters: int
    examples: int
    bits: float
    accuracy: float

    @property
    def bits_per_parameter(self) -> float:
        return self.bits / self.parameters


def train_to_memorise(
    model: nn.Module, inputs: Tensor, labels: Tensor, steps: int, lr: float = 1e-2
) -> Tensor:
    """Full-batch Adam on the cross-entropy for ``steps`` steps (the learning rate halves when
    the loss has not improved for 100 steps); returns the predicted labels ``[N]``."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    best, since = math.inf, 0
    for _ in range(steps):
        loss = F.cross_entropy(model.last(inputs), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if loss.item() < best - 1e-4:
            best, since = loss.item(), 0
        else:
            since += 1
            if since >= 100:
                for group in optimizer.param_groups:
                    group["lr"] /= 2
                since = 0
    with torch.no_grad():
        return model.last(inputs).argmax(-1)


def measure(
    cell: str,
    hidden: int,
    examples_per_parameter: tuple[float, ...] = (0.5, 1.0, 2.0),
    steps: int = 1000,
    length: int = 4,
    features: int = 4,
    classes: int = 16,
    seed: int = 0,
) -> CapacityPoint:
    """The most bits a ``cell`` network of ``hidden`` units stored, over datasets of
    ``examples_per_parameter`` times its parameter count."""
    best: CapacityPoint | None = None
    for ratio in examples_per_parameter:
        torch.manual_seed(seed)
        model = SequenceModel(cell, features, hidden, classes)
        parameters = count_parameters(model)
        examples = max(classes, round(ratio * parameters))
        inputs, labels = memorisation_data(examples, length, features, classes, seed)
        predicted = train_to_memorise(model, inputs, labels, steps)
        y, p = labels.numpy(), predicted.numpy()
        bits = examples * (mutual_information(y, p) - chance_information(y, p, seed=seed))
        accuracy = float((predicted == labels).float().mean())
        point = CapacityPoint(cell, hidden, parameters, examples, bits, accuracy)
        if best is None or point.bits > best.bits:
            best = point
    assert best is not None
    return best


def fit_slope(points: list[CapacityPoint]) -> float:
    """Bits per parameter: the least-squares slope of bits against parameters through 0."""
    x = np.array([p.parameters for p in points], dtype=np.float64)
    y = np.array([p.bits for p in points], dtype=np.float64)
    return float((x * y).sum() / (x * x).sum())


def plot_capacity(points: list[CapacityPoint], path: str) -> None:
    """Bits stored against parameters, one colour per cell, with each cell's fitted line and
    the paper's 5 bits per parameter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4.5))
    largest = max(p.parameters for p in points)
    line = np.array([0, largest * 1.05])
    for cell in dict.fromkeys(p.cell for p in points):
        mine = [p for p in points if p.cell == cell]
        slope = fit_slope(mine)
        shown = axis.plot([p.parameters for p in mine], [p.bits for p in mine], "o")[0]
        axis.plot(line, slope * line, color=shown.get_color(), label=f"{cell}: {slope:.2f} b/p")
    axis.plot(line, PAPER_BITS_PER_PARAMETER * line, "k--", lw=1, label="paper: ~5 b/p")
    axis.set_xlabel("parameters")
    axis.set_ylabel("bits stored (N x I(label; prediction))")
    axis.set_title("memorisation capacity")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
