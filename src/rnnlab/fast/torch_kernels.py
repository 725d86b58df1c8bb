"""Dispatch to torch's fused RNN kernels (oneDNN on CPU, cuDNN on GPU).

These are the kernels behind torch.nn.LSTM/GRU/RNN. rnnlab calls them whenever a cell (or a
stack of cells) computes exactly what they compute, so plain cells run at torch's own speed.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

_KERNELS = {
    "LSTM": torch._VF.lstm,
    "GRU": torch._VF.gru,
    "RNN_TANH": torch._VF.rnn_tanh,
    "RNN_RELU": torch._VF.rnn_relu,
}

TorchState = Tensor | tuple[Tensor, Tensor]
"""torch's state layout: ``h [L*D, B, H]``, or ``(h, c)`` for LSTM."""


def run_kernel(
    mode: str,
    flat_weights: list[Tensor],
    x: Tensor,
    hx: TorchState,
    lengths: Tensor | None = None,
    num_layers: int = 1,
    bidirectional: bool = False,
    dropout: float = 0.0,
    training: bool = False,
    has_bias: bool = True,
) -> tuple[Tensor, TorchState]:
    """Run torch's fused kernel over a time-major batch.

    Args:
        mode: ``"LSTM"``, ``"GRU"``, ``"RNN_TANH"`` or ``"RNN_RELU"``.
        flat_weights: per layer and direction, ``w_ih, w_hh[, b_ih, b_hh][, w_hr]`` (torch's order).
        x: ``[T, B, I]``.
        hx: initial state in torch's layout.
        lengths: ``[B]`` valid lengths, or ``None`` when every sequence has length T.

    Returns:
        ``y [T, B, D * H_out]`` (zero past each length) and the final state in torch's layout
        (each sequence's state at its own last valid step).
    """
    kernel = _KERNELS[mode]
    if lengths is None:
        out = kernel(
            x, hx, flat_weights, has_bias, num_layers, dropout, training, bidirectional, False
        )
        return out[0], (out[1] if mode != "LSTM" else (out[1], out[2]))
    packed = pack_padded_sequence(x, lengths.cpu(), enforce_sorted=False)
    out, hx = run_kernel_packed(
        mode, flat_weights, packed, hx, num_layers, bidirectional, dropout, training, has_bias
    )
    y, _ = pad_packed_sequence(out, total_length=x.shape[0])
    return y, hx


def run_kernel_packed(
    mode: str,
    flat_weights: list[Tensor],
    packed: PackedSequence,
    hx: TorchState,
    num_layers: int = 1,
    bidirectional: bool = False,
    dropout: float = 0.0,
    training: bool = False,
    has_bias: bool = True,
) -> tuple[PackedSequence, TorchState]:
    """Run torch's fused kernel over a PackedSequence, as torch.nn.LSTM/GRU/RNN do.

    ``hx`` and the returned state are in the caller's batch order (not the packed, sorted one);
    the output PackedSequence has the input's ``batch_sizes`` and index permutations.
    """
    order, unorder = packed.sorted_indices, packed.unsorted_indices
    if order is not None:
        hx = _batch_select(hx, order)
    out = _KERNELS[mode](
        packed.data,
        packed.batch_sizes,
        hx,
        flat_weights,
        has_bias,
        num_layers,
        dropout,
        training,
        bidirectional,
    )
    hidden = (out[1], out[2]) if mode == "LSTM" else out[1]
    if unorder is not None:
        hidden = _batch_select(hidden, unorder)
    return PackedSequence(out[0], packed.batch_sizes, order, unorder), hidden


def _batch_select(hx: TorchState, index: Tensor) -> TorchState:
    """Reorder the batch dimension (dim 1) of a torch-layout state."""
    if isinstance(hx, Tensor):
        return hx.index_select(1, index)
    return tuple(h.index_select(1, index) for h in hx)
