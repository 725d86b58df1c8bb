"""A token-level (e.g. character-level) recurrent language model.

    embedding -> dropout -> [recurrent layer -> dropout] x layers -> decoder

The decoder is a linear layer with a softmax over the vocabulary, or with ``adaptive_softmax``
(Grave et al. 2017) a frequent-word head and smaller tail clusters; ids must then be in order of
frequency, most frequent first.

Every layer is a :class:`rnnlab.layers.Recurrent` around any registered cell (``--cell``), so
plain LSTM/GRU/RNN layers run on torch's fused kernels, variants on their fused paths and every
other cell on the reference loop. Dropout (Zaremba et al., 2014) acts on the non-recurrent
connections only: the embedding output, between layers and before the decoder.

Regularisers (all off by default; see docs/regularize.md):

* ``variational_dropout``: the same dropouts with one mask per sequence (Gal and Ghahramani),
  and that probability on the recurrent state too unless ``recurrent_dropout`` is given;
* ``recurrent_dropout``, ``weight_drop``, ``zoneout_cell``, ``zoneout_hidden``: every layer's
  cell is wrapped by :func:`rnnlab.regularize.wrap_cell` (in training an LSTM or GRU layer then
  runs on its fused path, or on the reference loop with ``weight_drop``);
* ``embedding_dropout``: whole words of the embedding matrix dropped;
* ``ar``, ``tar`` (Merity et al. 2017) and ``recurrent_l2``: penalties that :meth:`loss` adds
  in training mode (AR on the dropped last-layer output, TAR on the undropped one);
* ``omega`` (Pascanu et al. 2013): :meth:`loss` adds ``omega * Omega`` in training mode, Omega of
  the cross-entropy summed over the layers
  (:func:`rnnlab.regularize.penalties.gradient_norm_penalty`); the layers then run on the
  reference loop, which keeps every step's state;
* ``tie_weights``: the decoder uses the embedding matrix (Press and Wolf 2017; Inan et al.
  2017); needs ``embed == hidden``.

``adaptive_softmax=(c_1, ..., c_n)`` (increasing cutoffs, ``0 < c_i < V``): tokens ``0 .. c_1 -
1`` share a head softmax with one entry per tail cluster ``[c_i, c_{i+1})``, and each cluster
projects to ``hidden / 4**i`` units first (:class:`torch.nn.AdaptiveLogSoftmaxWithLoss`). The
loss is the exact negative log-likelihood, without computing the logits of the rare words; the
forward pass returns full log-probabilities (which serve as logits for sampling and export).

=========  ==============================================
tokens     ``[T, B]`` long, time first
logits     ``[T, B, V]`` (log-probabilities with ``adaptive_softmax``)
state      list with one cell state per layer (``None``: zeros)
=========  ==============================================
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnlab import cells
from rnnlab.errors import ConfigError
from rnnlab.layers import Recurrent
from rnnlab.regularize import (
    LockedDropout,
    activation_regularization,
    embedding_dropout,
    keep_plain_names,
    recurrent_l2,
    temporal_activation_regularization,
    wrap_cell,
)
from rnnlab.regularize.penalties import gradient_norm_penalty, unroll_keeping_states
from rnnlab.validation import check_probability


class LanguageModel(nn.Module):
    """Predict the next token at every step.

    Args:
        vocab_size: number of distinct tokens V.
        embed: embedding size.
        hidden: hidden units per layer.
        layers: number of stacked recurrent layers.
        cell: registered cell name (``rnnlab.cells.available()``).
        dropout: dropout probability on non-recurrent connections, fresh mask per element.
        variational_dropout, recurrent_dropout, weight_drop, embedding_dropout, zoneout_cell,
            zoneout_hidden: probabilities in ``[0, 1)`` (see above).
        ar, tar, recurrent_l2, omega: non-negative penalty weights.
        tie_weights: share the embedding matrix with the decoder.
        adaptive_softmax: cutoffs of an adaptive softmax decoder (None: a full softmax).
        **cell_kwargs: passed to every cell (``forget_bias=...``).
    """

    def __init__(
        self,
        vocab_size: int,
        embed: int = 64,
        hidden: int = 256,
        layers: int = 1,
        cell: str = "lstm",
        dropout: float = 0.0,
        *,
        variational_dropout: float = 0.0,
        recurrent_dropout: float | None = None,
        weight_drop: float = 0.0,
        embedding_dropout: float = 0.0,
        zoneout_cell: float = 0.0,
        zoneout_hidden: float = 0.0,
        ar: float = 0.0,
        tar: float = 0.0,
        recurrent_l2: float = 0.0,
        omega: float = 0.0,
        tie_weights: bool = False,
        adaptive_softmax: Sequence[int] | None = None,
        **cell_kwargs: Any,
    ):
        super().__init__()
        check_probability("dropout", dropout)
        check_probability("variational_dropout", variational_dropout)
        check_probability("embedding_dropout", embedding_dropout)
        if dropout and variational_dropout:
            raise ConfigError(
                "--dropout (a fresh mask per element) and --variational-dropout (one mask per "
                "sequence) act on the same connections; give one of them"
            )
        for name, value in (
            ("ar", ar),
            ("tar", tar),
            ("recurrent_l2", recurrent_l2),
            ("omega", omega),
        ):
            if value < 0:
                raise ConfigError(f"{name} must be zero or positive, got {value}")
        if omega and (zoneout_cell or zoneout_hidden):
            raise ConfigError(
                "--omega re-runs each step to get its Jacobian, and zoneout draws new masks at "
                "every step; give --omega or --zoneout-*, not both"
            )
        if tie_weights and embed != hidden:
            raise ConfigError(
                f"tied embeddings need --embed equal to --hidden, got {embed} and {hidden}"
            )
        if recurrent_dropout is None:
            recurrent_dropout = variational_dropout
        for name, value in (
            ("vocab_size", vocab_size),
            ("embed", embed),
            ("hidden", hidden),
            ("layers", layers),
        ):
            if value <= 0:
                raise ConfigError(f"{name} must be positive, got {value}")
        self.vocab_size, self.cell_name = vocab_size, cell
        self.embedding = nn.Embedding(vocab_size, embed)
        self.layers = nn.ModuleList()
        size = embed
        for _ in range(layers):
            layer = Recurrent(
                wrap_cell(
                    cells.create(cell, input_size=size, hidden_size=hidden, **cell_kwargs),
                    recurrent_dropout=recurrent_dropout,
                    weight_drop=weight_drop,
                    zoneout_cell=zoneout_cell,
                    zoneout_hidden=zoneout_hidden,
                )
            )
            self.layers.append(layer)
            size = layer.output_size
        self.dropout = (
            LockedDropout(variational_dropout) if variational_dropout else nn.Dropout(dropout)
        )
        self.embedding_dropout = embedding_dropout
        if tie_weights and size != embed:
            raise ConfigError(
                f"tied embeddings need the last layer's output ({size}) to equal --embed ({embed})"
            )
        self.tie_weights = tie_weights
        self.adaptive = None
        if adaptive_softmax:
            if tie_weights:
                raise ConfigError(
                    "--adaptive-softmax has its own output matrices and cannot share the "
                    "embedding; give --adaptive-softmax or --tie-weights, not both"
                )
            cutoffs = check_cutoffs(adaptive_softmax, vocab_size)
            if size // 4 ** len(cutoffs) == 0:
                raise ConfigError(
                    f"an adaptive softmax with {len(cutoffs)} tail cluster(s) projects the last "
                    f"one to {size} // 4**{len(cutoffs)} = 0 units; give fewer cutoffs or a "
                    "larger --hidden"
                )
            self.adaptive = nn.AdaptiveLogSoftmaxWithLoss(size, vocab_size, cutoffs)
        elif tie_weights:  # only a bias: the weight is embedding.weight (one tensor in state_dict)
            # The shared matrix is also the output layer: nn.Embedding's N(0, 1) would start the
            # logits with a standard deviation of about sqrt(hidden) / 2, so it starts small, as
            # in Zaremba et al. and Press and Wolf.
            nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
            self.decoder_bias = nn.Parameter(torch.zeros(vocab_size))
        else:
            self.decoder = nn.Linear(size, vocab_size)
        self.ar, self.tar, self.recurrent_l2 = float(ar), float(tar), float(recurrent_l2)
        self.omega = float(omega)
        if omega:
            check_omega_cell(self.layers[0].cell, cell)
        keep_plain_names(self)  # checkpoints load with and without regularisers

    def forward(self, tokens: Tensor, state: list | None = None) -> tuple[Tensor, list]:
        """``tokens [T, B]`` -> ``(logits [T, B, V], state per layer)``."""
        states, _, dropped = self._run(tokens, state)
        return self._decode(dropped), states

    def _run(
        self, tokens: Tensor, state: list | None, runs: list | None = None
    ) -> tuple[list, Tensor, Tensor]:
        """``(states, raw, dropped)``: the states per layer, and the last layer's output before
        and after dropout (``dropped [T, B, H]`` is what the decoder reads). With ``runs`` (a
        list), the layers run on the reference loop and append ``(cell, Trajectory)``."""
        x = embedding_dropout(self.embedding, tokens, self.embedding_dropout, self.training)
        x = self.dropout(x)
        states = []
        raw = x
        for i, layer in enumerate(self.layers):
            layer_state = None if state is None else self._as_cell_state(layer, state[i], x)
            if runs is None:
                raw, layer_state = layer(x, layer_state)
            else:
                run = unroll_keeping_states(layer.cell, x, layer_state)
                raw, layer_state = run.outputs, run.states[-1]
                runs.append((layer.cell, run))
            x = self.dropout(raw)
            states.append(layer_state)
        return states, raw, x

    def _decode(self, x: Tensor) -> Tensor:
        """``[T, B, H]`` -> logits ``[T, B, V]``."""
        if self.adaptive is not None:
            return self.adaptive.log_prob(x.reshape(-1, x.shape[-1])).view(*x.shape[:-1], -1)
        if self.tie_weights:
            return F.linear(x, self.embedding.weight, self.decoder_bias)
        return self.decoder(x)

    @staticmethod
    def _as_cell_state(layer: Recurrent, saved: Any, x: Tensor) -> Any:
        """A state read back from a checkpoint (plain lists) as the cell's own state type."""
        if isinstance(saved, Tensor):
            return saved
        template = layer.cell.init_state(1, x.device, x.dtype)
        if isinstance(template, tuple) and not isinstance(saved, type(template)):
            return type(template)(*saved)
        return saved

    def loss(self, tokens: Tensor, targets: Tensor, state: list | None = None):
        """Mean cross-entropy in nats over all ``[T, B]`` targets; returns ``(loss, state)``.

        In training mode the loss includes the AR, TAR, recurrent-L2 and Omega penalties that are
        on.
        """
        runs = [] if self.training and self.omega else None
        state, raw, dropped = self._run(tokens, state, runs)
        if self.adaptive is not None:
            loss = self.adaptive(dropped.reshape(-1, dropped.shape[-1]), targets.reshape(-1)).loss
        else:
            logits = self._decode(dropped)
            loss = F.cross_entropy(logits.reshape(-1, self.vocab_size), targets.reshape(-1))
        if not self.training:
            return loss, state
        total = loss + self.penalty(raw, dropped)
        if runs:
            omega = gradient_norm_penalty(loss, runs)
            if not omega.requires_grad:
                raise ConfigError(
                    f"--omega has no effect on the {self.cell_name!r} cell: once its inputs are "
                    "fixed, its Jacobian dh_t/dh_(t-1) depends on no trainable parameter"
                )
            total = total + self.omega * omega
        return total, state

    def penalty(self, raw: Tensor, dropped: Tensor) -> Tensor:
        """AR on the dropped and TAR on the undropped last-layer output ``[T, B, H]``, plus L2 on
        the recurrent matrices (each term only when its weight is non-zero)."""
        total = raw.new_zeros(())
        if self.ar:
            total = total + activation_regularization(dropped, self.ar)
        if self.tar and raw.shape[0] > 1:
            total = total + temporal_activation_regularization(raw, self.tar)
        if self.recurrent_l2:
            total = total + recurrent_l2(self.layers, self.recurrent_l2)
        return total

    @torch.no_grad()
    def generate(
        self,
        prime: Tensor,
        length: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        seed: int | None = None,
    ) -> Tensor:
        """Sample ``length`` tokens after ``prime [P]`` (P >= 1); returns them as ``[length]``.

        Logits are divided by ``temperature`` (lower: more conservative); ``top_k`` keeps only the
        k most likely tokens. ``seed`` makes the result reproducible without touching the global
        random state.
        """
        if temperature <= 0:
            raise ConfigError(f"temperature must be positive, got {temperature}")
        if top_k is not None and top_k <= 0:
            raise ConfigError(f"top-k must be positive, got {top_k}")
        if prime.numel() == 0:
            raise ConfigError("the prime must have at least one token")
        was_training = self.training
        self.eval()
        device = self.embedding.weight.device
        generator = torch.Generator(device=device)
        generator.manual_seed(seed if seed is not None else int.from_bytes(os.urandom(7), "big"))
        logits, state = self(prime.to(device).view(-1, 1))
        out = torch.empty(length, dtype=torch.long, device=device)
        for t in range(length):
            scores = logits[-1, 0] / temperature
            if top_k is not None and top_k < scores.numel():
                kth = torch.topk(scores, top_k).values[-1]
                scores = scores.masked_fill(scores < kth, -math.inf)
            token = torch.multinomial(F.softmax(scores, dim=-1), 1, generator=generator)
            out[t] = token[0]
            logits, state = self(token.view(1, 1), state)
        self.train(was_training)
        return out.cpu()


def check_cutoffs(cutoffs: Sequence[int], vocab_size: int) -> list[int]:
    """The adaptive-softmax cutoffs as a list; a ConfigError unless they increase strictly
    within ``(0, vocab_size)``."""
    cutoffs = [int(c) for c in cutoffs]
    if any(c <= 0 or c >= vocab_size for c in cutoffs) or cutoffs != sorted(set(cutoffs)):
        raise ConfigError(
            f"--adaptive-softmax cutoffs must increase strictly between 0 and the vocabulary "
            f"size {vocab_size}, got {','.join(map(str, cutoffs))}; e.g. 2000 or 2000,6000"
        )
    return cutoffs


def check_omega_cell(layer_cell: nn.Module, name: str) -> None:
    """Raise a ConfigError when Pascanu's Omega cannot be computed for this cell: its step must
    be repeatable (no batch statistics updated by each call) and have trainable parameters."""
    if any(getattr(m, "batch_norm", False) for m in layer_cell.modules()):
        raise ConfigError(
            "--omega re-runs each step, which would update batch norm's running statistics "
            "twice; drop batch_norm=True or --omega"
        )
    if not any(p.requires_grad for p in layer_cell.parameters()):
        raise ConfigError(f"--omega needs trainable recurrent weights; the {name!r} cell has none")
