"""A trained language model as a one-step generation graph, in TorchScript or ONNX.

Both formats compute one step with the state as input and output::

    logits, *state = step(token, *state)     # token [B] int64 -> logits [B, V]; state: tensors

``state`` is the model's recurrent state flattened to a tuple of tensors, layer by layer
(``h`` for GRU/Elman layers, ``h, c`` for LSTM layers, plus the step counter of batch-norm
LSTMs), each ``[B, ...]``; start from zeros (:func:`zero_state` gives them). The graph runs
every layer on its reference loop (``rnnlab.layers.unroll``: ``cell.precompute`` then
``cell.step``) for one step, so any cell whose step the exporters can trace exports, including
the LSTM variants and the regularisers' wrappers (inactive in evaluation mode).

- TorchScript (``model.step.pt``): traced; runs with ``torch.jit.load`` only.
- ONNX (``model.step.onnx``): inputs ``token``, ``state0``, ``state1``, ...; outputs
  ``logits``, ``next_state0``, ...; the batch dimension is dynamic. Written by torch's default
  ``torch.export``-based exporter (``dynamo=True``, which needs ``onnxscript``): it exports
  every cell the TorchScript-based exporter exports here (LSTM, GRU, Elman and their variants;
  neither handles the complex-valued unitary cell) with the same accuracy, and the
  TorchScript-based one is deprecated with a warning that it will be removed. Needs the
  ``onnx`` extra (``pip install 'rnnlab[onnx]'``); :class:`OnnxRuntimeStep` runs it.

:func:`max_step_difference` checks an export against the PyTorch model (its own sequence
forward, fused kernels included) step by step, feeding the state back.
"""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rnnlab.errors import ConfigError

Step = Callable[..., Sequence[Tensor]]
"""``step(token [B], *state) -> (logits [B, V], *state)`` on torch tensors."""


def flatten_state(state: Any) -> list[Tensor]:
    """A state (tensor, or nested tuples/lists of tensors) as a flat list of tensors."""
    if isinstance(state, Tensor):
        return [state]
    return [t for part in state for t in flatten_state(part)]


def unflatten_state(flat: Sequence[Tensor], leaves_per_layer: list[int]) -> list:
    """The inverse of :func:`flatten_state` for a model's per-layer state: a tensor for a layer
    with one state tensor, a list for a layer with several."""
    layers, i = [], 0
    for count in leaves_per_layer:
        part = list(flat[i : i + count])
        layers.append(part[0] if count == 1 else part)
        i += count
    return layers


class StepGraph(nn.Module):
    """``forward(token [B], *state) -> (logits [B, V], *state)`` for a ``LanguageModel``.

    Holds a copy of ``model`` whose layers run the reference loop (one step of it).
    """

    def __init__(self, model: nn.Module, leaves_per_layer: list[int]):
        super().__init__()
        self.model = copy.deepcopy(model).eval()
        for layer in self.model.layers:
            layer.fast = False
        self.leaves_per_layer = leaves_per_layer
        self.eval()

    def forward(self, token: Tensor, *state: Tensor):
        layers = unflatten_state(state, self.leaves_per_layer)
        logits, new_state = self.model(token.view(1, -1), layers)
        return (logits[0], *flatten_state(new_state))


def zero_state(model: nn.Module, batch: int = 1) -> tuple[list[Tensor], list[int]]:
    """Zeros for every state tensor of ``model`` at ``batch``, and the tensors per layer."""
    device = next(model.parameters()).device
    with torch.no_grad():
        _, state = model(torch.zeros(1, batch, dtype=torch.long, device=device))
    leaves = [flatten_state(layer) for layer in state]
    return [torch.zeros_like(t) for part in leaves for t in part], [len(p) for p in leaves]


def export_torchscript(model: nn.Module, path: str | Path) -> tuple[torch.jit.ScriptModule, int]:
    """Trace ``model``'s one-step graph to ``path``; returns it and the number of state tensors."""
    model.eval()
    state, leaves_per_layer = zero_state(model)
    graph = StepGraph(model, leaves_per_layer)
    token = torch.zeros(1, dtype=torch.long, device=state[0].device)
    with torch.no_grad():
        traced = torch.jit.trace(graph, (token, *state), check_trace=False)
    traced.save(str(path))
    return traced, len(state)


def require_onnx() -> None:
    """A ``ConfigError`` naming the ``onnx`` extra when one of its packages is missing."""
    for name in ("onnx", "onnxruntime", "onnxscript"):
        try:
            __import__(name)
        except ImportError:
            raise ConfigError(
                f"ONNX export needs onnx, onnxruntime and onnxscript ({name} is missing): "
                "pip install 'rnnlab[onnx]'"
            ) from None


def state_names(count: int) -> tuple[list[str], list[str]]:
    """The ONNX graph's input and output names for ``count`` state tensors."""
    states = [f"state{i}" for i in range(count)]
    return ["token", *states], ["logits", *(f"next_{name}" for name in states)]


def export_onnx(model: nn.Module, path: str | Path) -> int:
    """Export ``model``'s one-step graph to the ONNX file ``path`` (weights inside, dynamic batch
    size); returns the number of state tensors."""
    require_onnx()
    model.eval()
    state, leaves_per_layer = zero_state(model, batch=2)  # 2: a batch of 1 would be fixed
    graph = StepGraph(model, leaves_per_layer)
    token = torch.zeros(2, dtype=torch.long, device=state[0].device)
    inputs, outputs = state_names(len(state))
    batch = torch.export.Dim("batch")
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)  # its progress notes are not the user's business
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # notes about torch's internals, and that the shared batch axis keeps one name
            warnings.simplefilter("ignore", FutureWarning)
            warnings.filterwarnings("ignore", message="# The axis name")
            torch.onnx.export(
                graph,
                (token, *state),
                str(path),
                input_names=inputs,
                output_names=outputs,
                dynamic_shapes=({0: batch}, tuple({0: batch} for _ in state)),
                dynamo=True,
                external_data=False,
                verbose=False,
            )
    except torch.onnx.OnnxExporterError as error:
        raise ConfigError(
            f"torch cannot export this model to ONNX ({type(error).__name__}; `rnnlab --debug` "
            "shows why); --format torchscript may work"
        ) from error
    finally:
        exporter_log.setLevel(level)
    return len(state)


class OnnxRuntimeStep:
    """An exported ``.onnx`` step graph run by onnxruntime, called like the PyTorch graph:
    ``logits, *state = step(token, *state)`` on CPU torch tensors. ``threads``: onnxruntime's
    intra-op threads (default: its own choice, one per core)."""

    def __init__(self, path: str | Path, threads: int | None = None):
        require_onnx()
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        self.inputs = [i.name for i in self.session.get_inputs()]

    def __call__(self, token: Tensor, *state: Tensor) -> list[Tensor]:
        feed = {
            name: np.ascontiguousarray(t.detach().cpu().numpy())
            for name, t in zip(self.inputs, (token, *state), strict=True)
        }
        return [torch.from_numpy(a) for a in self.session.run(None, feed)]


def max_step_difference(model: nn.Module, step: Step, steps: int = 20, batch: int = 2) -> float:
    """Largest absolute difference of logits and state between ``step`` and ``model``'s own
    forward, run token by token on random tokens (``batch`` streams), each feeding its own state
    back."""
    generator = torch.Generator().manual_seed(0)
    vocab = model.vocab_size
    device = next(model.parameters()).device
    ours, _ = zero_state(model, batch)
    reference: Any = None
    worst = 0.0
    model.eval()
    with torch.no_grad():
        for _ in range(steps):
            token = torch.randint(vocab, (batch,), generator=generator).to(device)
            logits, reference = model(token.view(1, -1), reference)
            expected = [logits[0], *flatten_state(reference)]
            got = list(step(token, *ours))
            for a, b in zip(expected, got, strict=True):
                difference = (a.cpu().double() - b.cpu().double()).abs().max()
                worst = max(worst, float(difference))
            ours = got[1:]
    return worst
