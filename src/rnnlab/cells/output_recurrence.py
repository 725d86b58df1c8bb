"""Output-recurrence network (Jordan 1986): the hidden units see the previous *output*, not the
previous hidden state.

    h_t = act(W_ih x_t + b_ih + W_yh s_{t-1})
    y_t = W_ho h_t + b_ho
    s_t = feedback(y_t)                    closed loop (generation)
    s_t = y*_t                             teacher forcing: the true output of step t

``act`` is tanh or relu; ``feedback`` is identity, tanh, sigmoid or softmax (use softmax when
``y`` are logits and the true outputs are one-hot vectors, so that both loops feed back a
distribution). With teacher forcing no step depends on another step's computation, so
:meth:`OutputRecurrenceCell.teacher_forced` computes all steps in one batched pass and training
needs no backpropagation through time; at generation the cell runs closed loop, one step at a
time (``rnnlab.Recurrent``, or ``cell(x_t, state)``), and a model may replace the state by the
one-hot vector of the symbol it sampled.

Example (a character model whose outputs are next-character logits)::

    cell = rnnlab.cells.create("jordan", input_size=65, hidden_size=128, output_size=65,
                               feedback="softmax")
    targets = F.one_hot(next_chars, 65).float()          # [T, B, 65]
    logits, state = cell.teacher_forced(x, targets)      # [T, B, 65], parallel over time
    y, state = cell(x_t, state)                          # one closed-loop step

Attributes: ``weight_ih [H, I]``, ``bias_ih [H]``, ``weight_yh [H, O]``, ``weight_ho [O, H]``,
``bias_ho [O]``, all ~ U(-1/sqrt(H), 1/sqrt(H)); state ``s [B, O]`` (zeros at the start).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnlab.cells.base import Cell, register
from rnnlab.cells.init import init_uniform_
from rnnlab.errors import ConfigError
from rnnlab.validation import check_positive

ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu}
FEEDBACKS = {
    "identity": lambda y: y,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "softmax": lambda y: torch.softmax(y, dim=-1),
}


@register("jordan", "output_recurrence")
class OutputRecurrenceCell(Cell):
    """Jordan network: recurrence from the previous output to the hidden units; state ``s [B, O]``.

    Args:
        input_size: I.
        hidden_size: H.
        output_size: O (default: H).
        bias: learn ``b_ih`` and ``b_ho``.
        nonlinearity: ``"tanh"`` or ``"relu"`` for the hidden units.
        feedback: what the closed loop feeds back: ``"identity"``, ``"tanh"``, ``"sigmoid"`` or
            ``"softmax"`` of ``y_t``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        output_size: int | None = None,
        bias: bool = True,
        nonlinearity: str = "tanh",
        feedback: str = "identity",
    ) -> None:
        super().__init__()
        output_size = hidden_size if output_size is None else output_size
        check_positive(input_size=input_size, hidden_size=hidden_size, output_size=output_size)
        if nonlinearity not in ACTIVATIONS:
            raise ConfigError(
                f"unknown nonlinearity {nonlinearity!r}; choose one of {', '.join(ACTIVATIONS)}"
            )
        if feedback not in FEEDBACKS:
            raise ConfigError(
                f"unknown feedback {feedback!r}; choose one of {', '.join(FEEDBACKS)}"
            )
        self.input_size, self.hidden_size, self._output_size = input_size, hidden_size, output_size
        self.bias, self.nonlinearity, self.feedback = bias, nonlinearity, feedback
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))
        self.weight_yh = nn.Parameter(torch.empty(hidden_size, output_size))
        self.weight_ho = nn.Parameter(torch.empty(output_size, hidden_size))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(hidden_size))
            self.bias_ho = nn.Parameter(torch.empty(output_size))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_ho", None)
        self.reset_parameters()

    @property
    def output_size(self) -> int:
        return self._output_size

    def reset_parameters(self) -> None:
        for p in self.parameters():
            init_uniform_(p, self.hidden_size)

    def init_state(self, batch, device=None, dtype=None) -> Tensor:
        return torch.zeros(batch, self.output_size, device=device, dtype=dtype)

    def precompute(self, x: Tensor) -> Tensor:
        xp = x @ self.weight_ih.T
        return xp + self.bias_ih if self.bias else xp

    def _readout(self, h: Tensor) -> Tensor:
        y = h @ self.weight_ho.T
        return y + self.bias_ho if self.bias else y

    def step(self, xp_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        h = ACTIVATIONS[self.nonlinearity](torch.addmm(xp_t, state, self.weight_yh.T))
        y = self._readout(h)
        return y, FEEDBACKS[self.feedback](y)

    def teacher_forced(
        self, x: Tensor, targets: Tensor, state: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """All steps at once, each fed the true previous output.

        Args:
            x: ``[T, B, I]``.
            targets: ``[T, B, O]``, the true output ``y*_t`` of every step (fed back at t + 1).
            state: ``[B, O]``, fed back at step 0 (default zeros).

        Returns:
            ``y [T, B, O]`` and the state after the last step (``targets[-1]``), exactly what the
            step-by-step loop gives when its state is set to ``y*_{t-1}`` before each step.
        """
        if targets.shape[:2] != x.shape[:2] or targets.shape[-1] != self.output_size:
            raise ConfigError(
                f"targets must have shape [{x.shape[0]}, {x.shape[1]}, {self.output_size}], "
                f"got {list(targets.shape)}"
            )
        if state is None:
            state = self.init_state(x.shape[1], x.device, x.dtype)
        previous = torch.cat([state.unsqueeze(0), targets[:-1]])
        h = ACTIVATIONS[self.nonlinearity](self.precompute(x) + previous @ self.weight_yh.T)
        return self._readout(h), targets[-1]
