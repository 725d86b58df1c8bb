"""The cliff in the loss surface of the notes' one-unit RNN, and what norm clipping does on it.

    h_0 = sigmoid(0.5),   h_t = sigmoid(w h_{t-1} + b),   L(w, b) = (h_50 - 0.7)^2

Over a band of (w, b) the map h -> sigmoid(w h + b) has two stable fixed points; crossing the
band's edge moves h_50 from one to the other, so L jumps: a cliff where the gradient is huge.
A plain gradient step there throws the parameters far away; clipping the gradient's norm to a
threshold keeps the step's length bounded and descent continues.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

STEPS = 50
H0 = float(torch.sigmoid(torch.tensor(0.5)))
TARGET = 0.7


def one_unit_loss(w: torch.Tensor, b: torch.Tensor, steps: int = STEPS) -> torch.Tensor:
    """``L(w, b)`` elementwise over tensors ``w`` and ``b`` of the same shape."""
    h = torch.full_like(w, H0)
    for _ in range(steps):
        h = torch.sigmoid(w * h + b)
    return (h - TARGET) ** 2


def loss_surface(w_range=(-2.0, 12.0), b_range=(-8.0, 8.0), resolution: int = 200):
    """``(w [R], b [R], L [R(b), R(w)])`` on a grid, float64."""
    w = torch.linspace(*w_range, resolution, dtype=torch.float64)
    b = torch.linspace(*b_range, resolution, dtype=torch.float64)
    bb, ww = torch.meshgrid(b, w, indexing="ij")
    return w.numpy(), b.numpy(), one_unit_loss(ww, bb).numpy()


@dataclass
class Trajectory:
    """Parameters ``points [S+1, 2]`` (w, b) and the loss ``losses [S+1]`` along descent."""

    points: np.ndarray
    losses: np.ndarray
    grad_norms: np.ndarray
    clip: float | None


def descend(
    start: tuple[float, float], lr: float, steps: int, clip: float | None = None
) -> Trajectory:
    """Gradient descent on ``L(w, b)`` from ``start``; with ``clip`` the gradient's norm is
    rescaled to at most ``clip`` before each step (Pascanu et al., 2013)."""
    theta = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    points, losses, norms = [theta.detach().clone()], [], []
    for _ in range(steps):
        loss = one_unit_loss(theta[0], theta[1])
        (grad,) = torch.autograd.grad(loss, theta)
        norm = float(grad.norm())
        losses.append(float(loss.detach()))
        norms.append(norm)
        if clip is not None and norm > clip:
            grad = grad * (clip / norm)
        with torch.no_grad():
            theta -= lr * grad
        points.append(theta.detach().clone())
    losses.append(float(one_unit_loss(*theta.detach())))
    return Trajectory(torch.stack(points).numpy(), np.array(losses), np.array(norms), clip)


def plot_cliff(
    path,
    start=(6.0, -3.0),
    lr: float = 2.0,
    steps: int = 100,
    clip: float = 0.5,
    resolution: int = 200,
):
    """Draw log10 L over (w, b) with unclipped and clipped descent from ``start``; return
    ``(path, unclipped, clipped)``."""
    from rnnlab.analysis.plots import plt, save

    plain = descend(start, lr, steps)
    clipped = descend(start, lr, steps, clip=clip)
    both = np.concatenate([plain.points, clipped.points])
    low, high = np.minimum(both.min(0) - 1, (-2, -8)), np.maximum(both.max(0) + 1, (12, 8))
    w, b, surface = loss_surface((low[0], high[0]), (low[1], high[1]), resolution)
    fig, (ax, ax_loss) = plt.subplots(1, 2, figsize=(11, 4.4), gridspec_kw={"width_ratios": [3, 2]})
    mesh = ax.pcolormesh(w, b, np.log10(surface + 1e-12), shading="auto", cmap="viridis")
    fig.colorbar(mesh, ax=ax, label="log10 L(w, b)")
    for traj, colour, label in ((plain, "red", "no clipping"), (clipped, "white", f"clip {clip}")):
        ax.plot(*traj.points.T, "-o", color=colour, ms=2.5, lw=1.2, label=label)
    ax.plot(*start, "k*", ms=12, label="start")
    ax.set_xlim(w[0], w[-1])
    ax.set_ylim(b[0], b[-1])
    ax.set(xlabel="w (recurrent weight)", ylabel="b (bias)")
    ax.set_title("One-unit RNN, L = (h_50 - 0.7)^2: the cliff")
    ax.legend(loc="lower left", fontsize=8)
    ax_loss.semilogy(plain.losses + 1e-12, "r-", label="no clipping")
    ax_loss.semilogy(clipped.losses + 1e-12, "k-", label=f"clip {clip}")
    ax_loss.set(xlabel="gradient step", ylabel="loss L", title=f"Loss along descent (lr {lr})")
    ax_loss.legend(fontsize=8)
    return save(fig, path), plain, clipped
