"""Sequence to sequence: an encoder-decoder (Sutskever et al. 2014) over any registered cell,
with optional attention (dot-product, Luong et al. 2015; additive, Bahdanau et al. 2015),
greedy and beam-search decoding.

The encoder (stacked, optionally bidirectional) reads the source; its summary (last valid
output of each direction) becomes each decoder layer's initial state through a ``tanh`` layer.
With ``attention``, every decoder output attends to the encoder outputs of the valid source
steps. The end of the output is decided by ``<eos>``, a halt output or a predicted length
(``length_mode``, see :mod:`rnnlab.models.decoder`).

Shapes: source ``[S, B]`` and target ``[T, B]`` token ids (target without specials),
lengths ``[B]`` each.

Example::

    model = Seq2Seq("gru", src_vocab=8000, tgt_vocab=9000, attention="dot")
    loss, metrics = model.loss(src, src_lengths, tgt, tgt_lengths)
    hyps = model.decode(src, src_lengths, beam=5)  # beam=0: greedy  # lists of target token ids
"""

from __future__ import annotations

from torch import Tensor, nn

from rnnlab.models.bridge import StateBridge
from rnnlab.models.decoder import BOS, EOS, PAD, RecurrentDecoder
from rnnlab.models.encoder import RecurrentEncoder, length_mask
from rnnlab.sequences import map_state


class Seq2Seq(nn.Module):
    """Source tokens -> recurrent encoder -> (attention) recurrent decoder -> target tokens."""

    def __init__(
        self,
        cell: str,
        src_vocab: int,
        tgt_vocab: int,
        embed_size: int = 128,
        hidden_size: int = 256,
        num_layers: int = 1,
        bidirectional: bool = False,
        attention: str | None = "dot",
        dropout: float = 0.0,
        length_mode: str = "eos",
        max_length: int = 60,
        pad_id: int = PAD,
        bos_id: int = BOS,
        eos_id: int = EOS,
        **cell_kwargs,
    ) -> None:
        super().__init__()
        self.src_embedding = nn.Embedding(src_vocab, embed_size, padding_idx=pad_id)
        self.encoder = RecurrentEncoder(
            cell, embed_size, hidden_size, num_layers, bidirectional, dropout, **cell_kwargs
        )
        size = self.encoder.output_size
        self.decoder = RecurrentDecoder(
            cell,
            tgt_vocab,
            embed_size,
            hidden_size,
            num_layers,
            memory_size=size,
            attention=attention,
            dropout=dropout,
            length_mode=length_mode,
            max_length=max_length,
            length_input_size=size,
            pad_id=pad_id,
            bos_id=bos_id,
            eos_id=eos_id,
            **cell_kwargs,
        )
        self.bridges = nn.ModuleList(StateBridge(size, c) for c in self.decoder.cells)
        self.dropout = nn.Dropout(dropout)

    def encode(self, src: Tensor, src_lengths: Tensor | None):
        """``(memory [S, B, M], mask [S, B], summary [B, M])``."""
        memory, summary = self.encoder(self.dropout(self.src_embedding(src)), src_lengths)
        mask = length_mask(src_lengths, src.shape[0], src.shape[1], src.device)
        return memory, mask, summary

    def forward(self, src: Tensor, src_lengths: Tensor | None, inputs: Tensor):
        """Teacher-forced logits ``[T, B, V]`` (and halt logits) for decoder inputs ``[T, B]``."""
        memory, mask, summary = self.encode(src, src_lengths)
        states = [bridge(summary) for bridge in self.bridges]
        logits, halt, _ = self.decoder(inputs, states, memory=memory, mask=mask)
        return logits, halt

    def loss(
        self,
        src: Tensor,
        src_lengths: Tensor | None,
        tgt: Tensor,
        tgt_lengths: Tensor,
        teacher_prob: float = 1.0,
    ):
        """Mean token cross-entropy (+ halt or length loss) and metrics; ``teacher_prob < 1``
        trains with scheduled sampling."""
        memory, mask, summary = self.encode(src, src_lengths)
        states = [bridge(summary) for bridge in self.bridges]
        batch = self.decoder.teacher(tgt, tgt_lengths)
        if teacher_prob >= 1.0:
            logits, halt, _ = self.decoder(batch.inputs, states, memory=memory, mask=mask)
        else:
            logits, halt = self.decoder.scheduled(
                batch.inputs, states, teacher_prob, memory=memory, mask=mask
            )
        loss, metrics = self.decoder.sequence_loss(logits, halt, batch)
        if self.decoder.length_mode == "length":
            length_loss = self.decoder.length_loss(summary, tgt_lengths)
            metrics["length_loss"] = float(length_loss.detach())
            loss = loss + length_loss
        return loss, metrics

    def decode(
        self,
        src: Tensor,
        src_lengths: Tensor | None,
        beam: int = 0,
        max_length: int | None = None,
        length_penalty: float = 0.0,
    ) -> list[list[int]]:
        """Target token ids per source sentence: greedy decoding of the whole batch at once
        (``beam=0``) or beam search with ``beam`` hypotheses, one sentence at a time."""
        memory, mask, summary = self.encode(src, src_lengths)
        states = [bridge(summary) for bridge in self.bridges]
        if beam == 0:
            return self.decoder.greedy(
                states,
                src.shape[1],
                memory=memory,
                mask=mask,
                summary=summary,
                max_length=max_length,
            )
        out = []
        for b in range(src.shape[1]):
            length = int(src_lengths[b]) if src_lengths is not None else src.shape[0]
            one = [map_state(lambda s, b=b: s[b : b + 1], state) for state in states]
            out.append(
                self.decoder.beam_search(
                    one,
                    beam,
                    memory=memory[:length, b : b + 1],
                    mask=mask[:length, b : b + 1],
                    summary=summary[b : b + 1],
                    max_length=max_length,
                    length_penalty=length_penalty,
                )
            )
        return out
