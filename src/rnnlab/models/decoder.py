"""A recurrent decoder over any registered cell: teacher forcing, scheduled sampling, greedy and
beam-search decoding, and the three ways to decide where a generated sequence ends.

Each step reads the previous token (and, optionally, an extra vector such as a conditioning
code), runs the stacked cells, optionally attends to a memory (Luong et al. 2015:
``o_t = tanh(W_c [h_t; c_t])``), and predicts the next token.

Where a sequence ends (``length_mode``):

* ``"eos"``: an end-of-sequence symbol is a token like any other; generation stops when it is
  produced.
* ``"halt"``: a Bernoulli "halt" output at every step, ``p_t = sigmoid(w . o_t + b)``, trained
  with binary cross-entropy to be 1 at the last token and 0 before; generation stops after the
  token at which ``p_t > 0.5`` (or at a Bernoulli draw when sampling).
* ``"length"``: the length is predicted first, from a summary vector (the conditioning vector
  or the encoder's summary), as a classification over ``1..max_length``; generation then emits
  exactly that many tokens.

Shapes (T = target steps, B = batch, V = vocabulary, S = memory steps):

===============  ===================================================================
inputs           ``[T, B]`` token ids (``<bos>`` then the gold tokens, see :meth:`teacher`)
extra            ``[B, E]`` a vector appended to every step's input, or ``None``
memory / mask    ``[S, B, M]`` / ``[S, B]`` bool (valid steps), for attention
states           a list with one cell state per layer
logits           ``[T, B, V]``; halt logits ``[T, B]`` (``"halt"`` mode, else ``None``)
===============  ===================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab import cells
from rnnlab.errors import ConfigError
from rnnlab.layers import Recurrent
from rnnlab.models.attention import Attention
from rnnlab.sequences import State, map_state
from rnnlab.validation import check_positive

LENGTH_MODES = ("eos", "halt", "length")
PAD, BOS, EOS = 0, 1, 2
"""Default ids of the special symbols (``rnnlab.data.vocabulary`` uses the same order)."""


@dataclass
class TeacherBatch:
    """Decoder inputs and gold outputs built from padded targets (see :meth:`teacher`)."""

    inputs: Tensor  # [T', B] previous tokens, starting with <bos>
    gold: Tensor  # [T', B] tokens to predict (with <eos> in "eos" mode)
    mask: Tensor  # [T', B] bool, true at steps that count
    halt: Tensor  # [T', B] float, 1 at each sequence's last step
    lengths: Tensor  # [B] target lengths (without <eos>)


class RecurrentDecoder(nn.Module):
    """Token decoder: embedding, ``num_layers`` cells, optional attention, output layer."""

    def __init__(
        self,
        cell: str,
        vocab_size: int,
        embed_size: int,
        hidden_size: int,
        num_layers: int = 1,
        extra_size: int = 0,
        memory_size: int = 0,
        attention: str | None = None,
        dropout: float = 0.0,
        length_mode: str = "eos",
        max_length: int = 50,
        length_input_size: int = 0,
        pad_id: int = PAD,
        bos_id: int = BOS,
        eos_id: int = EOS,
        **cell_kwargs,
    ) -> None:
        super().__init__()
        check_positive(vocab_size=vocab_size, num_layers=num_layers, max_length=max_length)
        if length_mode not in LENGTH_MODES:
            raise ConfigError(
                f"length mode must be one of {', '.join(LENGTH_MODES)}, got {length_mode!r}"
            )
        if length_mode == "length" and length_input_size <= 0:
            raise ConfigError("length mode 'length' needs a summary vector to predict it from")
        self.length_mode, self.max_length = length_mode, max_length
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id
        self.embedding = nn.Embedding(vocab_size, embed_size, padding_idx=pad_id)
        self.layers = nn.ModuleList()
        size = embed_size + extra_size
        for _ in range(num_layers):
            cell_ = cells.create(cell, input_size=size, hidden_size=hidden_size, **cell_kwargs)
            self.layers.append(Recurrent(cell_))
            size = cell_.output_size
        self.attention = None
        if attention:
            if memory_size <= 0:
                raise ConfigError("attention needs a memory (an encoder) to attend to")
            self.attention = Attention(size, memory_size, attention)
            self.combine = nn.Linear(size + memory_size, size)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(size, vocab_size)
        self.halt_head = nn.Linear(size, 1) if length_mode == "halt" else None
        self.length_head = (
            nn.Linear(length_input_size, max_length) if length_mode == "length" else None
        )
        # tokens that may never be generated
        banned = [pad_id, bos_id] + ([eos_id] if length_mode != "eos" else [])
        self.register_buffer("banned", torch.tensor(banned), persistent=False)

    @property
    def cells(self) -> list:
        return [layer.cell for layer in self.layers]

    # -- running the network ---------------------------------------------------------------
    def forward(
        self,
        inputs: Tensor,
        states: list[State],
        extra: Tensor | None = None,
        memory: Tensor | None = None,
        mask: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None, list[State]]:
        """All steps of known inputs at once (teacher forcing); see the module docstring."""
        x = self.dropout(self.embedding(inputs))
        if extra is not None:
            x = torch.cat([x, extra.unsqueeze(0).expand(x.shape[0], -1, -1)], dim=-1)
        new_states = []
        for i, layer in enumerate(self.layers):
            if i > 0:
                x = self.dropout(x)
            x, state = layer(x, states[i])
            new_states.append(state)
        if self.attention is not None:
            context, _ = self.attention(x, memory, mask)
            x = torch.tanh(self.combine(torch.cat([x, context], dim=-1)))
        x = self.dropout(x)
        halt = self.halt_head(x).squeeze(-1) if self.halt_head is not None else None
        return self.output(x), halt, new_states

    def step(self, token: Tensor, states: list[State], extra=None, memory=None, mask=None):
        """One step from the previous tokens ``[B]``: ``(logits [B, V], halt [B] | None,
        states)``."""
        logits, halt, states = self.forward(token.unsqueeze(0), states, extra, memory, mask)
        return logits[0], (halt[0] if halt is not None else None), states

    def scheduled(
        self,
        inputs: Tensor,
        states: list[State],
        teacher_prob: float,
        extra=None,
        memory=None,
        mask=None,
    ) -> tuple[Tensor, Tensor | None]:
        """Scheduled sampling (Bengio et al. 2015): step by step; at every step after the first,
        each sequence's input is the gold token with probability ``teacher_prob`` and otherwise
        a token sampled from the model's previous prediction (decided per token)."""
        logits_all, halts = [], []
        token = inputs[0]
        for t in range(inputs.shape[0]):
            if t > 0:
                with torch.no_grad():
                    sampled = torch.multinomial(
                        self._allowed(logits_all[-1]).softmax(-1), 1
                    ).squeeze(1)
                use_gold = torch.rand(token.shape, device=token.device) < teacher_prob
                token = torch.where(use_gold, inputs[t], sampled)
            logits, halt, states = self.step(token, states, extra, memory, mask)
            logits_all.append(logits)
            halts.append(halt)
        halt = torch.stack(halts) if self.halt_head is not None else None
        return torch.stack(logits_all), halt

    # -- training targets and losses ---------------------------------------------------------
    def teacher(self, targets: Tensor, lengths: Tensor) -> TeacherBatch:
        """Inputs and gold outputs from padded targets ``[T, B]`` (no specials) and lengths."""
        steps, batch = targets.shape
        lengths = lengths.to(targets.device)
        bos = torch.full((1, batch), self.bos_id, dtype=targets.dtype, device=targets.device)
        t = torch.arange(steps + 1, device=targets.device).unsqueeze(1)
        if self.length_mode == "eos":
            padded = torch.cat([targets, torch.full_like(bos, self.pad_id)])
            gold = torch.where(t == lengths, torch.full_like(padded, self.eos_id), padded)
            inputs = torch.cat([bos, targets])
            mask = t <= lengths
        else:
            gold, inputs = targets, torch.cat([bos, targets[:-1]])
            t, mask = t[:-1], t[:-1] < lengths
        gold = gold.masked_fill(~mask, self.pad_id)
        halt = (t == lengths - 1).to(torch.float32).expand_as(gold)
        return TeacherBatch(inputs, gold, mask, halt, lengths)

    def sequence_loss(
        self, logits: Tensor, halt: Tensor | None, batch: TeacherBatch
    ) -> tuple[Tensor, dict[str, float]]:
        """Mean token cross-entropy over valid steps (+ the halt loss in ``"halt"`` mode)."""
        token_loss = F.cross_entropy(logits[batch.mask], batch.gold[batch.mask])
        metrics = {"token_loss": float(token_loss.detach())}
        loss = token_loss
        if halt is not None:
            halt_loss = F.binary_cross_entropy_with_logits(
                halt[batch.mask], batch.halt[batch.mask].to(halt.dtype)
            )
            metrics["halt_loss"] = float(halt_loss.detach())
            loss = loss + halt_loss
        return loss, metrics

    def length_loss(self, summary: Tensor, lengths: Tensor) -> Tensor:
        """Cross-entropy of the length prediction (``"length"`` mode)."""
        target = (lengths.to(summary.device) - 1).clamp(max=self.max_length - 1)
        return F.cross_entropy(self.length_head(summary), target)

    # -- decoding ----------------------------------------------------------------------------
    def _allowed(self, logits: Tensor) -> Tensor:
        return logits.index_fill(-1, self.banned, float("-inf"))

    def predict_length(self, summary: Tensor) -> Tensor:
        """Most likely length ``[B]`` in ``1..max_length`` (``"length"`` mode)."""
        return self.length_head(summary).argmax(-1) + 1

    @torch.no_grad()
    def greedy(
        self,
        states: list[State],
        batch: int,
        extra=None,
        memory=None,
        mask=None,
        summary: Tensor | None = None,
        max_length: int | None = None,
        sample: bool = False,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> list[list[int]]:
        """Decode a batch token by token: argmax (or a sample at ``temperature``, drawn with
        ``generator`` when given) each step."""
        max_length = max_length or self.max_length
        device = self.output.weight.device
        token = torch.full((batch,), self.bos_id, dtype=torch.long, device=device)
        done = torch.zeros(batch, dtype=torch.bool, device=device)
        target_length = self.predict_length(summary) if self.length_mode == "length" else None
        out: list[list[int]] = [[] for _ in range(batch)]
        for t in range(max_length):
            logits, halt, states = self.step(token, states, extra, memory, mask)
            logits = self._allowed(logits)
            if sample:
                probs = (logits / temperature).softmax(-1)
                token = torch.multinomial(probs, 1, generator=generator).squeeze(1)
            else:
                token = logits.argmax(-1)
            for b in (~done).nonzero().flatten().tolist():
                if not (self.length_mode == "eos" and token[b] == self.eos_id):
                    out[b].append(int(token[b]))
            if self.length_mode == "eos":
                finished = token == self.eos_id
            elif self.length_mode == "halt":
                p = torch.sigmoid(halt)
                finished = torch.bernoulli(p, generator=generator).bool() if sample else p > 0.5
            else:
                finished = target_length <= t + 1
            done = done | finished
            if bool(done.all()):
                break
        return out

    @torch.no_grad()
    def beam_search(
        self,
        states: list[State],
        beam: int,
        extra=None,
        memory=None,
        mask=None,
        summary: Tensor | None = None,
        max_length: int | None = None,
        length_penalty: float = 0.0,
    ) -> list[int]:
        """Beam search for ONE sequence (all inputs have batch size 1).

        Keeps the ``beam`` best unfinished hypotheses; at each step it ranks the ``2 * beam``
        best extensions, and a finishing extension (``<eos>``, a halt, or the predicted length)
        is kept when it ranks among the first ``beam``. Stops when ``beam`` hypotheses have
        finished. The result maximises ``log p / len ** length_penalty``; ``beam=1`` is exactly
        greedy decoding.
        """
        check_positive(beam=beam)
        max_length = max_length or self.max_length
        device = self.output.weight.device
        target_length = (
            int(self.predict_length(summary)[0]) if self.length_mode == "length" else None
        )
        seqs: list[list[int]] = [[]]
        scores = torch.zeros(1, device=device)
        finished: list[tuple[float, list[int]]] = []
        vocab = self.output.out_features
        for t in range(max_length):
            k = len(seqs)
            token = torch.tensor([s[-1] if s else self.bos_id for s in seqs], device=device)
            expand = _rows(k)
            logits, halt, states = self.step(
                token,
                states,
                expand(extra),
                expand(memory, dim=1),
                expand(mask, dim=1),
            )
            logp = self._allowed(logits).log_softmax(-1)
            cand = scores.unsqueeze(1) + logp  # [k, V]
            if self.length_mode == "halt":
                cand = torch.cat(
                    [
                        cand + F.logsigmoid(halt).unsqueeze(1),
                        cand + F.logsigmoid(-halt).unsqueeze(1),
                    ],
                    dim=1,
                )  # first V columns: emit and stop; last V: emit and continue
            top_scores, top_index = cand.flatten().topk(min(2 * beam, cand.numel()))
            new_seqs, new_rows, new_scores = [], [], []
            for rank, (score, index) in enumerate(zip(top_scores.tolist(), top_index.tolist())):
                row, column = divmod(index, cand.shape[1])
                word = column % vocab
                if self.length_mode == "eos":
                    finishes = word == self.eos_id
                elif self.length_mode == "halt":
                    finishes = column < vocab
                else:
                    finishes = t + 1 >= target_length
                if finishes:
                    if rank < beam:
                        seq = seqs[row] + ([] if self.length_mode == "eos" else [word])
                        norm = max(len(seq), 1) ** length_penalty
                        finished.append((score / norm, seq))
                elif len(new_seqs) < beam and score > float("-inf"):
                    new_seqs.append(seqs[row] + [word])
                    new_rows.append(row)
                    new_scores.append(score)
            if len(finished) >= beam or not new_seqs:
                break
            index = torch.tensor(new_rows, device=device)
            states = [map_state(lambda s, i=index: s.index_select(0, i), st) for st in states]
            seqs, scores = new_seqs, torch.tensor(new_scores, device=device)
        if not finished:
            finished = [
                (s / max(len(q), 1) ** length_penalty, q) for s, q in zip(scores.tolist(), seqs)
            ]
        return max(finished, key=lambda f: f[0])[1]


def _rows(k: int):
    """Repeat a batch-1 tensor to ``k`` rows along ``dim`` (``None`` passes through)."""

    def expand(x: Tensor | None, dim: int = 0) -> Tensor | None:
        if x is None:
            return None
        sizes = [-1] * x.dim()
        sizes[dim] = k
        return x.expand(*sizes)

    return expand
