"""Gradient flow through time: how much of the last step's loss reaches each earlier state.

For a loss ``L_T`` that depends on the last output ``y_T`` only, the norm ``||dL_T/dh_t||`` for
``t = 0..T`` shows how far back a training signal travels: for a vanilla RNN it shrinks
geometrically as ``T - t`` grows (vanishing gradients), an LSTM's cell state ``c_t`` carries it
much further. Here ``L_T = sum_b <g_b, y_T,b>`` for a fixed direction ``g`` (a random unit vector
per sequence by default, or ``dLoss/dy_T`` of a real loss), so ``dL_T/dh_t = J_{T,t}^T g``.

=============  ==============================================================
x              ``[T, B, I]`` inputs of the cell
norms ``h``    ``[T + 1]``: mean over the batch of ``||dL_T/dh_t||``, t = 0..T
norms ``c``    ``[T + 1]`` the same for an LSTM's cell state (else ``None``)
=============  ==============================================================

``dL_T/dc_t`` is the total gradient of BPTT's cell-state recursion, so it includes the path
through ``h_t = o_t tanh(c_t)``.

:class:`GradFlowLogger` records the same curve during training (``--log-grad-flow EVERY``) into
``grad_flow.jsonl``; :func:`plot_heatmap` draws those curves against the training step.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from rnnlab.cells.base import Cell
from rnnlab.errors import ConfigError
from rnnlab.layers.unroll import Recurrent
from rnnlab.sequences import State, map_state


@dataclass
class GradientFlow:
    """``h [T + 1]`` (and ``c [T + 1]`` for states with a cell component) norms, t = 0..T."""

    h: np.ndarray
    c: np.ndarray | None = None


def _parts(state: State) -> list[Tensor]:
    return [state] if isinstance(state, Tensor) else list(state)


def _norms(grads: list[Tensor | None], like: list[Tensor]) -> np.ndarray:
    rows = [
        (g if g is not None else torch.zeros_like(s)).flatten(1).norm(dim=1).mean()
        for g, s in zip(grads, like)
    ]
    return torch.stack(rows).detach().double().cpu().numpy()


def flow_from_states(states: list[State], y_last: Tensor, direction: Tensor) -> GradientFlow:
    """``||d<direction, y_last>/d state_t||`` for recorded ``states`` (t = 0..T) that produced
    ``y_last [B, O]`` through autograd. The first state part is ``h``, the second (if any) ``c``."""
    loss = (y_last * direction).sum()
    parts = [_parts(s) for s in states]
    flat = [p for ps in parts for p in ps]
    grads = torch.autograd.grad(loss, flat, retain_graph=True, allow_unused=True)
    width = len(parts[0])
    h = _norms(list(grads[0::width]), flat[0::width])
    c = _norms(list(grads[1::width]), flat[1::width]) if width > 1 else None
    return GradientFlow(h, c)


def random_direction(batch: int, width: int, like: Tensor, seed: int = 0) -> Tensor:
    """One random unit vector per sequence, ``[B, width]`` (reproducible from ``seed``)."""
    generator = torch.Generator().manual_seed(seed)
    g = torch.randn(batch, width, generator=generator, dtype=torch.float64)
    return (g / g.norm(dim=1, keepdim=True)).to(device=like.device, dtype=like.dtype)


def gradient_flow(
    cell: Cell, x: Tensor, state: State | None = None, direction: Tensor | None = None
) -> GradientFlow:
    """Norms of ``dL_T/dh_t`` (and ``dL_T/dc_t``) for ``t = 0..T`` on inputs ``x [T, B, I]``.

    ``L_T = sum_b <direction_b, y_T,b>``; ``direction [B, O]`` defaults to a random unit vector
    per sequence. The cell runs step by step so that every state is kept.
    """
    batch = x.shape[1]
    if state is None:
        state = cell.init_state(batch, x.device, x.dtype)
    state = map_state(lambda s: s.detach().requires_grad_(), state)
    states = [state]
    y = None
    for xp_t in cell.precompute(x).unbind(0):
        y, state = cell.step(xp_t, state)
        states.append(state)
    if direction is None:
        direction = random_direction(batch, y.shape[-1], y)
    return flow_from_states(states, y, direction)


def compare_cells(
    names: tuple[str, ...] = ("rnn", "lstm", "gru"),
    steps: int = 100,
    hidden: int = 64,
    inputs: int = 16,
    batch: int = 16,
    seed: int = 0,
    device: torch.device | str | None = None,
    **cell_kwargs,
) -> dict[str, GradientFlow]:
    """Freshly initialised cells of each name on the same random sequence ``[steps, batch,
    inputs]`` with the same loss direction: ``{name: GradientFlow}``."""
    import rnnlab.cells

    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(steps, batch, inputs, generator=generator).to(device)
    flows = {}
    for name in names:
        torch.manual_seed(seed)
        cell = rnnlab.cells.create(name, input_size=inputs, hidden_size=hidden, **cell_kwargs)
        flows[name] = gradient_flow(cell.to(device), x)
    return flows


def plot_flows(flows: dict[str, GradientFlow], path, title: str) -> None:
    """``||dL_T/dh_t||`` (solid) and ``||dL_T/dc_t||`` (dashed) against ``t``, log scale."""
    from rnnlab.analysis.plots import plt, save

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for i, (name, flow) in enumerate(flows.items()):
        t = np.arange(len(flow.h))
        ax.semilogy(t, np.maximum(flow.h, 1e-30), "-", color=f"C{i}", label=f"{name}: |dL_T/dh_t|")
        if flow.c is not None:
            c = np.maximum(flow.c, 1e-30)
            ax.semilogy(t, c, "--", color=f"C{i}", label=f"{name}: |dL_T/dc_t|")
    ax.set(xlabel="time step t (loss at the last step T)", ylabel="gradient norm (mean over batch)")
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    save(fig, path)


def model_cells(model: nn.Module) -> list[Cell]:
    """The rnnlab cells of ``model`` in module order (layer 0 first)."""
    cells = [m for m in model.modules() if isinstance(m, Cell)]
    if not cells:
        raise ConfigError("this analysis needs a model built from rnnlab cells (none found)")
    return cells


@contextlib.contextmanager
def recording_states(
    model: nn.Module, layer: int = 0
) -> Iterator[tuple[list[State], list[Tensor]]]:
    """Within the block, the ``layer``-th rnnlab cell of ``model`` records every state and output
    it computes (fused kernels are switched off meanwhile, so each step is visible).

    Yields ``(states, outputs)``; ``states[0]`` is the state the cell started from, made a leaf
    that requires grad when it is a constant (e.g. zeros or a detached carried state)."""
    cells = model_cells(model)
    if not -len(cells) <= layer < len(cells):
        raise ConfigError(f"the model has {len(cells)} recurrent layer(s); got layer {layer}")
    cell = cells[layer]
    recurrents = [m for m in model.modules() if isinstance(m, Recurrent)]
    saved_fast = [r.fast for r in recurrents]
    states: list[State] = []
    outputs: list[Tensor] = []
    original_step = cell.step

    def step(xp_t, state):
        if not states:
            if not any(p.requires_grad for p in _parts(state)):
                state = map_state(lambda s: s.detach().requires_grad_(), state)
            states.append(state)
        y, new = original_step(xp_t, state)
        states.append(new)
        outputs.append(y)
        return y, new

    for r in recurrents:
        r.fast = False
    cell.step = step
    try:
        yield states, outputs
    finally:
        del cell.step
        for r, fast in zip(recurrents, saved_fast):
            r.fast = fast


def model_gradient_flow(model: nn.Module, loss_fn: Callable[[], Tensor]) -> GradientFlow:
    """Gradient flow through the first recurrent cell of ``model`` for a real loss.

    ``loss_fn()`` runs the model on one batch and returns the (scalar) loss. The direction ``g`` is
    ``dLoss/dy_T`` of that loss at the cell's last output, so the curve is ``||dL_T/dh_t||`` for
    the part of the loss that the last step's output receives. Parameter gradients are not
    touched. With stacked layers, the flow is through the first layer's own recurrence.
    """
    with recording_states(model) as (states, outputs):
        loss = loss_fn()
    if not outputs:
        raise ConfigError("the model's first rnnlab cell did not run in loss_fn()")
    (direction,) = torch.autograd.grad(loss, outputs[-1], retain_graph=True)
    if float(direction.abs().sum()) == 0.0:
        direction = random_direction(*outputs[-1].shape, outputs[-1])
    return flow_from_states(states, outputs[-1], direction.detach())


class GradFlowLogger:
    """Trainer hook for ``--log-grad-flow EVERY``: every ``every`` steps append
    ``{"step": s, "h": [...], "c": [...]}`` to ``run_dir/grad_flow.jsonl``.

    Call it once per optimisation step, before the real backward or after it (it builds its own
    graph): ``logger(step, model, lambda: task.loss(model, batch, state)[0])``.
    """

    def __init__(self, every: int, run_dir: str | Path) -> None:
        if every <= 0:
            raise ConfigError(f"--log-grad-flow must be a positive number of steps, got {every}")
        self.every = every
        self.path = Path(run_dir) / "grad_flow.jsonl"

    def __call__(self, step: int, model: nn.Module, loss_fn: Callable[[], Tensor]) -> None:
        if step % self.every:
            return
        flow = model_gradient_flow(model, loss_fn)
        record = {"step": step, "h": flow.h.tolist()}
        if flow.c is not None:
            record["c"] = flow.c.tolist()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")


def read_log(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(steps [N], h [N, T+1], c [N, T+1] or None)`` from a ``grad_flow.jsonl``; rows with a
    different sequence length than the first are skipped."""
    path = Path(path)
    if path.is_dir():
        path = path / "grad_flow.jsonl"
    if not path.is_file():
        raise ConfigError(f"no gradient-flow log at {path}; train with --log-grad-flow EVERY")
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not records:
        raise ConfigError(f"{path} is empty")
    width = len(records[0]["h"])
    records = [r for r in records if len(r["h"]) == width]
    steps = np.array([r["step"] for r in records])
    h = np.array([r["h"] for r in records])
    c = np.array([r["c"] for r in records]) if all("c" in r for r in records) else None
    return steps, h, c


def plot_heatmap(
    steps: np.ndarray, h: np.ndarray, path, title: str, c: np.ndarray | None = None
) -> None:
    """log10 ||dL_T/dh_t|| with training step down and time step t across (and for c)."""
    from rnnlab.analysis.plots import plt, save

    panels = [("dL_T/dh_t", h)] + ([("dL_T/dc_t", c)] if c is not None else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.5), squeeze=False)
    for ax, (name, values) in zip(axes[0], panels):
        image = ax.imshow(
            np.log10(np.maximum(values, 1e-30)),
            aspect="auto",
            origin="lower",
            cmap="magma",
            extent=(-0.5, values.shape[1] - 0.5, steps[0], steps[-1] if len(steps) > 1 else 1),
        )
        fig.colorbar(image, ax=ax, label=f"log10 ||{name}||")
        ax.set(xlabel="time step t (loss at the last step)", ylabel="training step")
        ax.set_title(f"{title}: {name}")
    save(fig, path)


def grad_flow_during_training(
    cell_name: str = "rnn",
    train_steps: int = 200,
    every: int = 10,
    seq_len: int = 50,
    hidden: int = 32,
    symbols: int = 8,
    batch: int = 32,
    lr: float = 1e-2,
    run_dir: str | Path = "grad_flow_run",
    seed: int = 0,
) -> tuple[Path, float]:
    """Train a small model on "recall the first symbol at the last step" (inputs one-hot
    ``[seq_len, batch, symbols]``; only the last step is scored) and log the gradient flow every
    ``every`` steps with :class:`GradFlowLogger`. Returns ``(log path, final loss)``."""
    import rnnlab.cells

    torch.manual_seed(seed)
    cell = rnnlab.cells.create(cell_name, input_size=symbols, hidden_size=hidden)
    model = nn.ModuleDict({"rnn": Recurrent(cell), "head": nn.Linear(cell.output_size, symbols)})
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    logger = GradFlowLogger(every, run_dir)
    logger.path.unlink(missing_ok=True)
    generator = torch.Generator().manual_seed(seed)
    loss = torch.tensor(float("nan"))
    for step in range(train_steps + 1):
        tokens = torch.randint(symbols, (seq_len, batch), generator=generator)
        x = nn.functional.one_hot(tokens, symbols).float()

        def loss_fn(x=x, tokens=tokens):
            y, _ = model["rnn"](x)
            return nn.functional.cross_entropy(model["head"](y[-1]), tokens[0])

        logger(step, model, loss_fn)
        if step == train_steps:
            break
        optimizer.zero_grad()
        loss = loss_fn()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    return logger.path, float(loss.detach())
