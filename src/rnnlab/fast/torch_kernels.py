"""Dispatch to torch's fused RNN kernels (oneDNN on CPU, cuDNN on GPU).

These are the kernels behind torch.nn.LSTM/GRU/RNN. rnnlab calls them whenever a cell (or a
stack of cells) computes exactly what they compute, so plain cells run at torch's own speed.

Variable lengths: on a GPU, a PackedSequence goes to cuDNN's packed kernel, as in torch. On the
CPU, torch's packed kernel is a per-step loop whose backward slices the whole packed input at
every step (time quadratic in the length), so a unidirectional batch with ``lengths`` (or a
PackedSequence, padded first) runs as segments instead: the sequences sorted by length, the
padded oneDNN kernel over the steps up to the shortest length for all of them, then on from that
state over the next segment for those still running, and so on (one kernel call per distinct
length).
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
    if lengths is not None and x.device.type == "cpu" and not bidirectional:
        return _run_segments(
            mode, flat_weights, x, hx, lengths, num_layers, dropout, training, has_bias
        )
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


def _run_segments(
    mode: str,
    flat_weights: list[Tensor],
    x: Tensor,
    hx: TorchState,
    lengths: Tensor,
    num_layers: int,
    dropout: float,
    training: bool,
    has_bias: bool,
) -> tuple[Tensor, TorchState]:
    """:func:`run_kernel` with ``lengths``, unidirectional: one padded-kernel call per distinct
    length over the sequences still running (see the module docstring)."""
    kernel = _KERNELS[mode]
    steps, batch = x.shape[:2]
    order = torch.argsort(lengths.cpu(), descending=True, stable=True).to(x.device)
    ends = lengths.cpu()[order.cpu()].tolist()  # longest first
    x, state = x.index_select(1, order), _batch_select(hx, order)
    outputs, finished, start, active = [], [], 0, batch
    for end in sorted(set(ends)):
        out = kernel(
            x[start:end, :active],
            state,
            flat_weights,
            has_bias,
            num_layers,
            dropout,
            training,
            False,
            False,
        )
        y, state = out[0], (out[1] if mode != "LSTM" else (out[1], out[2]))
        if active < batch:  # the sequences that ended earlier output zeros
            y = torch.cat([y, y.new_zeros(end - start, batch - active, y.shape[2])], dim=1)
        outputs.append(y)
        running = sum(1 for n in ends if n > end)
        finished.append(_batch_slice(state, running, active))
        state, start, active = _batch_slice(state, 0, running), end, running
    if start < steps:
        outputs.append(y.new_zeros(steps - start, batch, y.shape[2]))
    final = _cat_batch(finished[::-1])  # shortest sequences ended first, and sit last
    unorder = torch.empty_like(order)
    unorder[order] = torch.arange(batch, device=order.device)
    return torch.cat(outputs).index_select(1, unorder), _batch_select(final, unorder)


def _repack(y: Tensor, like: PackedSequence) -> PackedSequence:
    """Padded ``y [T, B, H]`` (caller's batch order) as a PackedSequence laid out like ``like``."""
    if like.sorted_indices is not None:
        y = y.index_select(1, like.sorted_indices)
    sizes = like.batch_sizes.to(y.device)
    valid = torch.arange(y.shape[1], device=y.device) < sizes.unsqueeze(1)  # [T, B], sorted
    return PackedSequence(
        y[: len(sizes)][valid], like.batch_sizes, like.sorted_indices, like.unsorted_indices
    )


def _batch_slice(hx: TorchState, begin: int, end: int) -> TorchState:
    if isinstance(hx, Tensor):
        return hx[:, begin:end]
    return tuple(h[:, begin:end] for h in hx)


def _cat_batch(parts: list[TorchState]) -> TorchState:
    if isinstance(parts[0], Tensor):
        return torch.cat(parts, dim=1)
    return tuple(torch.cat(p, dim=1) for p in zip(*parts))


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
    if packed.data.device.type == "cpu" and not bidirectional:
        x, lengths = pad_packed_sequence(packed)  # the caller's batch order
        y, hidden = _run_segments(
            mode, flat_weights, x, hx, lengths, num_layers, dropout, training, has_bias
        )
        return _repack(y, packed), hidden
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
