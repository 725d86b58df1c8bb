"""Dynamics of the recurrence: spectrum of W_hh, the notes' scalar systems, contractivity.

* :func:`recurrent_blocks` / :func:`spectrum` / :func:`spectral_stats`: eigenvalues and singular
  values of a cell's recurrent matrix (per gate for LSTM and GRU). The spectral radius governs
  the linear system h_t = W h_{t-1}; the largest singular value bounds how much one step can
  stretch a gradient (``||dh_t/dh_{t-1}|| <= sigma_max(W) max|tanh'|``).
* :func:`linear_scalar_trajectories`: ``h_t = w h_{t-1}`` for the five cases of ``w``.
* :func:`tanh_fixed_points`: ``h = tanh(w h)`` has the one fixed point 0 for ``w <= 1``; for
  ``w > 1`` 0 turns unstable and two stable fixed points ``+-h_f`` appear.
* :func:`contractivity`: a measured contraction constant ``lambda`` of a cell along real
  trajectories (the largest ``||d state_t / d state_{t-1}||_2``), and the error of the k-step
  truncated cell (started from the initial state k steps back) as k grows. For a contractive
  cell (lambda < 1) the error decays like lambda^k (Miller and Hardt, 2019).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import brentq
from torch import Tensor, nn

from rnnlab.cells.base import Cell
from rnnlab.errors import ConfigError
from rnnlab.sequences import State, map_state

GATES = {"LSTMCell": ("i", "f", "g", "o"), "GRUCell": ("r", "z", "n")}


def recurrent_blocks(cell: Cell) -> dict[str, Tensor]:
    """The cell's square recurrent matrices ``[H, H]``: ``{"W_hh": ...}``, or one per gate
    (``"W_hi"``, ``"W_hf"``, ...) for cells whose ``weight_hh`` stacks gates."""
    weight = getattr(cell, "weight_hh", None)
    if not isinstance(weight, Tensor):
        raise ConfigError(f"{type(cell).__name__} has no weight_hh: no recurrent matrix to analyse")
    weight = weight.detach().float().cpu()
    gates = GATES.get(type(cell).__name__)
    if gates is None or weight.shape[0] == weight.shape[1]:
        return {"W_hh": weight}
    return {f"W_h{g}": block for g, block in zip(gates, weight.chunk(len(gates), dim=0))}


def spectrum(matrix: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """``(eigenvalues [H] complex, singular values [H] descending)`` of a square matrix
    (singular values of a non-square one, eigenvalues of its square part)."""
    m = matrix.double().numpy()
    square = m[:, : m.shape[0]] if m.shape[1] >= m.shape[0] else m[: m.shape[1]]
    return np.linalg.eigvals(square), np.linalg.svd(m, compute_uv=False)


def spectral_stats(cell: Cell) -> dict[str, float]:
    """``{"<block>/spectral_radius": ..., "<block>/sigma_max": ...}`` for each recurrent block;
    cheap enough to log during training."""
    stats = {}
    for name, block in recurrent_blocks(cell).items():
        eig, sv = spectrum(block)
        stats[f"{name}/spectral_radius"] = float(np.abs(eig).max())
        stats[f"{name}/sigma_max"] = float(sv[0])
    return stats


def model_spectral_stats(model: nn.Module) -> dict[str, float]:
    """For every cell in ``model`` with a recurrent matrix (2-d ``weight_hh``; convolutional
    recurrences are skipped): ``{"<cell>/spectral_radius": ...,
    "<cell>/sigma_max": ...}``, the largest over its gate blocks. The trainer logs these with every
    validation (``"split": "spectrum"`` rows of ``metrics.jsonl``)."""
    stats = {}
    for name, module in model.named_modules():
        weight = getattr(module, "weight_hh", None)
        if isinstance(module, Cell) and isinstance(weight, Tensor) and weight.dim() == 2:
            blocks = spectral_stats(module)
            prefix = name or "cell"
            stats[f"{prefix}/spectral_radius"] = max(
                v for k, v in blocks.items() if k.endswith("spectral_radius")
            )
            stats[f"{prefix}/sigma_max"] = max(
                v for k, v in blocks.items() if k.endswith("sigma_max")
            )
    return stats


def plot_spectrum(cell: Cell, path, title: str = "") -> dict[str, float]:
    """Eigenvalues in the complex plane (with the unit circle) and sorted singular values of each
    recurrent block; returns :func:`spectral_stats`."""
    from rnnlab.analysis.plots import plt, save

    blocks = recurrent_blocks(cell)
    fig, (ax_eig, ax_sv) = plt.subplots(1, 2, figsize=(10, 4.4))
    circle = np.exp(1j * np.linspace(0, 2 * np.pi, 200))
    ax_eig.plot(circle.real, circle.imag, "k--", lw=0.8, label="unit circle")
    for name, block in blocks.items():
        eig, sv = spectrum(block)
        label = f"{name}: rho={np.abs(eig).max():.3f}, sigma_max={sv[0]:.3f}"
        ax_eig.scatter(eig.real, eig.imag, s=8, label=label)
        ax_sv.plot(np.arange(1, len(sv) + 1), sv, ".-", ms=3, label=name)
    ax_eig.set(xlabel="Re(lambda)", ylabel="Im(lambda)")
    ax_eig.set_title("Eigenvalues of the recurrent matrix")
    ax_eig.set_aspect("equal", adjustable="datalim")
    ax_eig.legend(fontsize=7, loc="upper left")
    ax_sv.axhline(1.0, color="k", ls="--", lw=0.8)
    largest = max(float(spectrum(b)[1][0]) for b in blocks.values())
    ax_sv.set_ylim(0, max(1.2, 1.05 * largest))
    ax_sv.set(xlabel="index", ylabel="singular value", title="Singular values (descending)")
    ax_sv.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    save(fig, path)
    return spectral_stats(cell)


LINEAR_CASES = {
    "w > 1 (explodes)": 1.1,
    "w = 1 (constant)": 1.0,
    "0 < w < 1 (decays)": 0.9,
    "-1 < w < 0 (decays, alternating sign)": -0.9,
    "w < -1 (explodes, alternating sign)": -1.1,
}


def linear_scalar_trajectories(steps: int = 40, h0: float = 1.0) -> dict[str, np.ndarray]:
    """``h_t = w h_{t-1}`` (so ``h_t = w^t h_0``) for each of :data:`LINEAR_CASES`."""
    t = np.arange(steps + 1)
    return {name: h0 * w**t for name, w in LINEAR_CASES.items()}


def tanh_fixed_points(w: float) -> list[tuple[float, bool]]:
    """Fixed points of ``h = tanh(w h)`` with their stability.

    0 is always one; for ``w > 1`` the others are ``+-h_f``, the positive root of
    ``tanh(w h) - h`` (found by bracketing: it lies in ``(0, 1)``). A fixed point is stable when
    ``|w (1 - h^2)| < 1``; at ``|w| = 1`` the point 0 is not hyperbolic but still attracting
    (``|tanh(w h)| < |h|``), so it counts as stable there."""
    points = [0.0]
    if w > 1:
        h_f = brentq(lambda h: np.tanh(w * h) - h, 1e-12, 1.0, xtol=1e-15)
        points = [-h_f, 0.0, h_f]
    return [(h, abs(w * (1 - h * h)) < 1 or (h == 0.0 and abs(w) == 1)) for h in points]


def iterate_tanh(w: float, h0: float, steps: int) -> np.ndarray:
    """The trajectory ``h_t = tanh(w h_{t-1})``, ``[steps + 1]``."""
    h = np.empty(steps + 1)
    h[0] = h0
    for t in range(steps):
        h[t + 1] = np.tanh(w * h[t])
    return h


def plot_scalar_systems(path, steps: int = 40) -> dict[float, list[tuple[float, bool]]]:
    """Three panels: the five linear cases, the tanh system's fixed points against w (the
    pitchfork at w = 1, with iterated end points), and trajectories of the tanh system."""
    from rnnlab.analysis.plots import plt, save

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for name, h in linear_scalar_trajectories(steps).items():
        axes[0].plot(h, ".-", ms=3, label=name)
    axes[0].set_yscale("symlog", linthresh=1e-2)
    axes[0].set(xlabel="t", ylabel="h_t (symlog)", title="h_t = w h_{t-1}, h_0 = 1")
    axes[0].legend(fontsize=7)

    ws = np.linspace(0.0, 3.0, 301)
    by_sign = [{round(np.sign(h)): (h, s) for h, s in tanh_fixed_points(w)} for w in ws]
    for stable, style, label in ((True, "b-", "stable"), (False, "r--", "unstable")):
        for branch in (-1, 0, 1):
            ys = [
                p[branch][0] if branch in p and p[branch][1] == stable else np.nan for p in by_sign
            ]
            axes[1].plot(ws, ys, style, lw=2, label=label)
    for w in ws[::15]:
        for h0 in (-0.9, 0.3, 0.9):
            axes[1].plot(w, iterate_tanh(w, h0, 500)[-1], "k.", ms=3)
    axes[1].set(xlabel="w", ylabel="fixed point h*")
    axes[1].set_title("h = tanh(w h): fixed points 0 and +-h_f")
    handles, labels = axes[1].get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    axes[1].legend(unique.values(), unique.keys(), fontsize=8, title="dots: h_500 from 3 starts")

    for w in (0.5, 1.0, 1.5, 3.0):
        for h0 in (0.9, -0.4):
            axes[2].plot(iterate_tanh(w, h0, steps), label=f"w={w}" if h0 > 0 else None,
                         color=f"C{[0.5, 1.0, 1.5, 3.0].index(w)}")  # fmt: skip
    axes[2].set(xlabel="t", ylabel="h_t", title="h_t = tanh(w h_{t-1}) from h_0 = 0.9 and -0.4")
    axes[2].legend(fontsize=8)
    save(fig, path)
    return {w: tanh_fixed_points(w) for w in (0.5, 1.0, 1.5, 2.0, 3.0)}


def _flat(state: State) -> Tensor:
    return torch.cat([state] if isinstance(state, Tensor) else list(state), dim=-1)


def _unflat(flat: Tensor, like: State) -> State:
    if isinstance(like, Tensor):
        return flat
    sizes = [s.shape[-1] for s in like]
    return type(like)(*flat.split(sizes, dim=-1))


@torch.no_grad()
def _run(cell: Cell, xp: tuple[Tensor, ...], state: State) -> State:
    for xp_t in xp:
        _, state = cell.step(xp_t, state)
    return state


def contractivity(
    cell: Cell, x: Tensor, ks: list[int] | None = None, state: State | None = None
) -> dict:
    """Measure how contractive ``cell`` is on inputs ``x [T, B, I]``.

    Returns ``{"lambda": max_t,b ||J_t||_2, "lambda_mean": mean, "ks": [...], "errors": [...]}``
    where ``J_t = d state_t / d state_{t-1}`` (full state, e.g. (h, c) for LSTM) along the real
    trajectory, and ``errors[i]`` is the mean over the batch of ``||h_T - h_T^(k)||`` with
    ``h_T^(k)`` the state after running only the last ``k = ks[i]`` steps from the initial state
    (``k < T``; at ``k = T`` the two coincide). ``decay_rate`` is the observed error decay per
    step, ``(errors[-1] / errors[0]) ** (1 / (ks[-1] - ks[0]))``: lambda bounds it from above
    for a contractive cell, and it can be well below 1 even when one step is not contractive.
    """
    steps, batch = x.shape[:2]
    if state is None:
        state = cell.init_state(batch, x.device, x.dtype)
    with torch.no_grad():
        xp = cell.precompute(x).unbind(0)
    norms = []
    current = state
    for xp_t in xp:
        prev = _flat(current).detach()
        for b in range(batch):
            row = map_state(lambda s, b=b: s[b : b + 1], current)

            def one_step(flat, b=b, row=row, xp_t=xp_t):
                return _flat(cell.step(xp_t[b : b + 1], _unflat(flat, row))[1])

            jac = torch.autograd.functional.jacobian(one_step, prev[b : b + 1])
            jac = jac.reshape(prev.shape[-1], prev.shape[-1])
            norms.append(float(torch.linalg.matrix_norm(jac, ord=2)))
        with torch.no_grad():
            _, current = cell.step(xp_t, current)
    final = _flat(current)
    ks = ks or [k for k in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512) if k < steps]
    errors = []
    for k in ks:
        truncated = _flat(_run(cell, xp[steps - k :], state))
        errors.append(float((final - truncated).norm(dim=-1).mean()))
    positive = [(k, e) for k, e in zip(ks, errors) if e > 0]
    rate = float("nan")
    if len(positive) >= 2:
        (k0, e0), (k1, e1) = positive[0], positive[-1]
        rate = (e1 / e0) ** (1.0 / (k1 - k0))
    return {
        "lambda": max(norms),
        "lambda_mean": float(np.mean(norms)),
        "ks": ks,
        "errors": errors,
        "decay_rate": rate,
    }


def plot_contractivity(result: dict, path, title: str = "") -> None:
    """Error of the k-step truncated cell against k (log scale) with the lambda^k slope;
    ``title`` says which cell (the measured lambda is added)."""
    from rnnlab.analysis.plots import plt, save

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    ks, errors = np.array(result["ks"]), np.array(result["errors"])
    ks, errors = ks[errors > 0], errors[errors > 0]
    ax.semilogy(ks, errors, "o-", label="||h_T - h_T^(k)|| (mean over batch)")
    lam = result["lambda"]
    if lam < 1:
        ax.semilogy(ks, errors[0] * lam ** (ks - ks[0]), "k--", label=f"lambda^k, lambda={lam:.3f}")
    ax.set(xlabel="k (steps kept by the truncated model)", ylabel="error at the last step")
    measured = (
        f"lambda = {lam:.3f} (mean {result['lambda_mean']:.3f}), "
        f"error decays x{result['decay_rate']:.3f} per step"
    )
    ax.set_title(f"{title}\n{measured}" if title else measured, fontsize=10)
    ax.legend(fontsize=8)
    save(fig, path)
