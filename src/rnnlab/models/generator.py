"""One-to-many: a sequence generated from a conditioning vector, over any registered cell.

The condition is a class id (embedded into a vector of ``condition_size``) or a given vector
``[B, condition_size]``. It enters the decoder (``condition_mode``):

* ``"init"``: as the initial state, ``s_0 = tanh(W c + b)`` per layer and state tensor;
* ``"input"``: as an extra input at every step, ``x_t = [embed(y_{t-1}); c]`` (the notes'
  ``x^T R`` bias term: a condition-dependent bias of every step's pre-activations);
* ``"both"``.

Trained with teacher forcing (or scheduled sampling via ``teacher_prob < 1``); the end of a
sequence is decided by an ``<eos>`` symbol, a halt output or a predicted length (see
:mod:`rnnlab.models.decoder`).

Shapes: condition ``[B]`` (ids) or ``[B, C]``; targets ``[T, B]`` token ids without specials;
lengths ``[B]``.

Example::

    model = ConditionalGenerator("lstm", vocab_size=60, num_conditions=18)
    loss, metrics = model.loss(languages, targets, lengths)
    names = model.generate(torch.tensor([3, 3, 7]), sample=True)  # lists of token ids
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnlab.errors import ConfigError
from rnnlab.models.bridge import StateBridge
from rnnlab.models.decoder import BOS, EOS, PAD, RecurrentDecoder
from rnnlab.sequences import State

CONDITION_MODES = ("init", "input", "both")


class ConditionalGenerator(nn.Module):
    """Condition -> (initial state and/or per-step input) -> recurrent decoder -> tokens."""

    def __init__(
        self,
        cell: str,
        vocab_size: int,
        num_conditions: int = 0,
        condition_size: int = 32,
        embed_size: int = 64,
        hidden_size: int = 128,
        num_layers: int = 1,
        condition_mode: str = "both",
        dropout: float = 0.0,
        length_mode: str = "eos",
        max_length: int = 30,
        pad_id: int = PAD,
        bos_id: int = BOS,
        eos_id: int = EOS,
        **cell_kwargs,
    ) -> None:
        super().__init__()
        if condition_mode not in CONDITION_MODES:
            raise ConfigError(
                f"condition mode must be one of {', '.join(CONDITION_MODES)}, "
                f"got {condition_mode!r}"
            )
        self.condition_mode = condition_mode
        self.condition_embedding = (
            nn.Embedding(num_conditions, condition_size) if num_conditions else None
        )
        self.decoder = RecurrentDecoder(
            cell,
            vocab_size,
            embed_size,
            hidden_size,
            num_layers,
            extra_size=condition_size if condition_mode != "init" else 0,
            dropout=dropout,
            length_mode=length_mode,
            max_length=max_length,
            length_input_size=condition_size,
            pad_id=pad_id,
            bos_id=bos_id,
            eos_id=eos_id,
            **cell_kwargs,
        )
        self.bridges = (
            nn.ModuleList(StateBridge(condition_size, c) for c in self.decoder.cells)
            if condition_mode != "input"
            else None
        )

    def condition_vector(self, condition: Tensor) -> Tensor:
        """``[B, C]`` from class ids ``[B]`` or a given vector."""
        if self.condition_embedding is not None:
            return self.condition_embedding(condition)
        return condition

    def _start(self, vector: Tensor) -> tuple[list[State], Tensor | None]:
        if self.bridges is not None:
            states = [bridge(vector) for bridge in self.bridges]
        else:
            states = [
                c.init_state(vector.shape[0], vector.device, vector.dtype)
                for c in self.decoder.cells
            ]
        extra = vector if self.condition_mode != "init" else None
        return states, extra

    def forward(self, condition: Tensor, inputs: Tensor):
        """Teacher-forced logits ``[T, B, V]`` (and halt logits) for decoder inputs ``[T, B]``."""
        states, extra = self._start(self.condition_vector(condition))
        logits, halt, _ = self.decoder(inputs, states, extra)
        return logits, halt

    def loss(
        self, condition: Tensor, targets: Tensor, lengths: Tensor, teacher_prob: float = 1.0
    ) -> tuple[Tensor, dict[str, float]]:
        """Mean token cross-entropy (+ halt or length loss); ``teacher_prob < 1`` trains with
        scheduled sampling."""
        vector = self.condition_vector(condition)
        states, extra = self._start(vector)
        batch = self.decoder.teacher(targets, lengths)
        if teacher_prob >= 1.0:
            logits, halt, _ = self.decoder(batch.inputs, states, extra)
        else:
            logits, halt = self.decoder.scheduled(batch.inputs, states, teacher_prob, extra)
        loss, metrics = self.decoder.sequence_loss(logits, halt, batch)
        if self.decoder.length_mode == "length":
            length_loss = self.decoder.length_loss(vector, lengths)
            metrics["length_loss"] = float(length_loss.detach())
            loss = loss + length_loss
        return loss, metrics

    def generate(
        self,
        condition: Tensor,
        max_length: int | None = None,
        sample: bool = True,
        temperature: float = 1.0,
        beam: int = 0,
        generator: torch.Generator | None = None,
    ) -> list[list[int]]:
        """Token ids of one generated sequence per condition (without specials). ``beam > 0``
        runs beam search instead of sampling or greedy decoding; ``generator`` draws the samples
        (default: the global random state)."""
        vector = self.condition_vector(condition)
        if beam:
            out = []
            for b in range(vector.shape[0]):
                states, extra = self._start(vector[b : b + 1])
                out.append(
                    self.decoder.beam_search(
                        states, beam, extra, summary=vector[b : b + 1], max_length=max_length
                    )
                )
            return out
        states, extra = self._start(vector)
        return self.decoder.greedy(
            states,
            vector.shape[0],
            extra,
            summary=vector,
            max_length=max_length,
            sample=sample,
            temperature=temperature,
            generator=generator,
        )
