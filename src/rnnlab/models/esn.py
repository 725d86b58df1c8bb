"""Echo state network: a fixed random reservoir and a linear readout fitted in closed form.

    h_t = (1 - a) h_{t-1} + a tanh(W_h h_{t-1} + W_x x_t + W_fb y_{t-1} + b)   (rnnlab.cells.esn)
    y_t = W_out [h_t; x_t] + b_out            (x_t in the readout only with input_to_readout)

Training is one linear least-squares problem: run the reservoir over the training inputs (with
output feedback, teacher-forced: ``y_{t-1}`` is the target), drop the first ``washout`` states, and
solve ``min ||Y - W_out X - b_out||^2 + ridge ||W_out||^2`` (ridge regression, the intercept not
penalised) or ``W_out = Y pinv(X)`` (``method="pinv"``).

Example (one-step prediction of a series, then 100 free-running steps)::

    esn = EchoStateNetwork(1, 1, hidden_size=100, spectral_radius=1.25, leak_rate=0.3, seed=0)
    state = esn.fit(series[:-1, None, None], series[1:, None, None], washout=100, ridge=1e-5)
    predictions, state = esn(test_inputs, state)
    future = esn.generate(100, state)

Shapes (T steps, B sequences, I inputs, O outputs): inputs ``[T, B, I]``, targets and outputs
``[T, B, O]``; 2-d ``[T, I]`` is taken as one sequence. The state is :class:`EchoState`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from rnnlab.cells.esn import EchoStateCell
from rnnlab.errors import ConfigError
from rnnlab.layers.unroll import Recurrent
from rnnlab.validation import check_positive


class EchoState(NamedTuple):
    """Reservoir state ``h [B, H]`` and the last output ``y [B, O]`` (the feedback)."""

    h: Tensor
    y: Tensor


class EchoStateNetwork(nn.Module):
    """Reservoir (:class:`rnnlab.cells.esn.EchoStateCell`) plus closed-form linear readout.

    Args:
        input_size, output_size: widths of ``x_t`` and ``y_t``.
        hidden_size: reservoir units.
        feedback: feed ``y_{t-1}`` back into the reservoir through ``W_fb``.
        input_to_readout: the readout also sees ``x_t``.
        **reservoir: the cell's arguments (``spectral_radius``, ``leak_rate``, ``input_scaling``,
            ``connectivity``, ``input_connectivity``, ``bias_scaling``, ``feedback_scaling``,
            ``seed``).
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        hidden_size: int = 100,
        feedback: bool = False,
        input_to_readout: bool = False,
        **reservoir,
    ) -> None:
        super().__init__()
        check_positive(output_size=output_size)
        self.input_size, self.output_size, self.hidden_size = input_size, output_size, hidden_size
        self.feedback, self.input_to_readout = feedback, input_to_readout
        self.reservoir = EchoStateCell(
            input_size, hidden_size, feedback_size=output_size if feedback else 0, **reservoir
        )
        features = hidden_size + (input_size if input_to_readout else 0)
        self.register_buffer("weight_out", torch.zeros(output_size, features))
        self.register_buffer("bias_out", torch.zeros(output_size))

    def init_state(self, batch: int, device=None, dtype=None) -> EchoState:
        h = self.reservoir.init_state(batch, device, dtype)
        return EchoState(h, h.new_zeros(batch, self.output_size))

    def _as_3d(self, t: Tensor, width: int, what: str) -> Tensor:
        t = t.unsqueeze(1) if t.dim() == 2 else t
        if t.dim() != 3 or t.shape[-1] != width:
            raise ConfigError(
                f"{what} must be [T, B, {width}] or [T, {width}], got {list(t.shape)}"
            )
        return t

    def _run(self, x: Tensor, y_prev: Tensor | None, h: Tensor) -> tuple[Tensor, Tensor]:
        inputs = torch.cat([x, y_prev], dim=-1) if self.feedback else x
        states, h = Recurrent(self.reservoir)(inputs, h)
        features = torch.cat([states, x], dim=-1) if self.input_to_readout else states
        return features, h

    def readout(self, features: Tensor) -> Tensor:
        return features @ self.weight_out.T + self.bias_out

    @torch.no_grad()
    def fit(
        self,
        x: Tensor,
        y: Tensor,
        washout: int = 0,
        ridge: float = 0.0,
        method: str = "ridge",
        state: EchoState | None = None,
    ) -> EchoState:
        """Fit the readout on inputs ``x`` and targets ``y`` (teacher forcing); return the state
        after the last training step, to continue with :meth:`forward` or :meth:`generate`."""
        if method not in ("ridge", "pinv"):
            raise ConfigError(f"method must be 'ridge' or 'pinv', got {method!r}")
        x = self._as_3d(x, self.input_size, "inputs")
        y = self._as_3d(y, self.output_size, "targets").to(x.dtype)
        if y.shape[:2] != x.shape[:2]:
            raise ConfigError(f"targets {list(y.shape)} do not match inputs {list(x.shape)}")
        if not 0 <= washout < x.shape[0]:
            raise ConfigError(f"washout must be in [0, {x.shape[0]}), got {washout}")
        if state is None:
            state = self.init_state(x.shape[1], x.device, x.dtype)
        y_prev = torch.cat([state.y.unsqueeze(0), y[:-1]])
        features, h = self._run(x, y_prev, state.h)
        feats = features[washout:].reshape(-1, features.shape[-1]).double()
        targets = y[washout:].reshape(-1, self.output_size).double()
        if method == "pinv":
            ones = feats.new_ones(feats.shape[0], 1)
            solution = torch.linalg.pinv(torch.cat([feats, ones], dim=1)) @ targets
            weight, bias = solution[:-1].T, solution[-1]
        else:
            mean_x, mean_y = feats.mean(0), targets.mean(0)
            xc, yc = feats - mean_x, targets - mean_y
            gram = xc.T @ xc
            gram.diagonal().add_(ridge)
            weight = torch.linalg.solve(gram, xc.T @ yc).T
            bias = mean_y - weight @ mean_x
        self.weight_out.copy_(weight)
        self.bias_out.copy_(bias)
        return EchoState(h, y[-1])

    def forward(
        self, x: Tensor, state: EchoState | None = None, teacher: Tensor | None = None
    ) -> tuple[Tensor, EchoState]:
        """Outputs ``[T, B, O]`` for inputs ``x``. With feedback, ``teacher [T, B, O]`` (the true
        ``y_t``) is fed back when given (teacher forcing), else the network's own outputs."""
        squeeze = x.dim() == 2
        x = self._as_3d(x, self.input_size, "inputs")
        if state is None:
            state = self.init_state(x.shape[1], x.device, x.dtype)
        if not self.feedback or teacher is not None:
            y_prev = None
            if self.feedback:
                teacher = self._as_3d(teacher, self.output_size, "teacher").to(x.dtype)
                y_prev = torch.cat([state.y.unsqueeze(0), teacher[:-1]])
            features, h = self._run(x, y_prev, state.h)
            y = self.readout(features)
            state = EchoState(h, teacher[-1] if teacher is not None else y[-1])
        else:
            outputs = []
            for x_t in x.unbind(0):
                y_t, state = self._free_step(x_t, state)
                outputs.append(y_t)
            y = torch.stack(outputs)
        return (y.squeeze(1) if squeeze else y), state

    def _free_step(self, x_t: Tensor, state: EchoState) -> tuple[Tensor, EchoState]:
        inputs = torch.cat([x_t, state.y], dim=-1) if self.feedback else x_t
        _, h = self.reservoir(inputs, state.h)
        features = torch.cat([h, x_t], dim=-1) if self.input_to_readout else h
        y = self.readout(features)
        return y, EchoState(h, y)

    @torch.no_grad()
    def generate(self, steps: int, state: EchoState) -> Tensor:
        """Free-running generation ``[steps, B, O]``: each output is the next input (the model
        must predict its own input, ``input_size == output_size``) and the feedback."""
        if self.input_size != self.output_size:
            raise ConfigError(
                "generate feeds outputs back as inputs: it needs input_size == output_size"
            )
        outputs = []
        for _ in range(steps):
            y, state = self._free_step(state.y, state)
            outputs.append(y)
        return torch.stack(outputs)
