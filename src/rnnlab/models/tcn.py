"""Temporal convolutional network (Bai, Kolter & Koltun 2018), the non-recurrent baseline.

A stack of residual blocks; block i has two dilated causal convolutions with dilation ``2^i``::

    z = dropout(relu(causal_conv_{d}(x)))        weight-normalised Conv1d, left padding (k-1) d
    z = dropout(relu(causal_conv_{d}(z)))
    block(x) = relu(z + downsample(x))           downsample: 1x1 conv when the widths differ

The output at step t depends on inputs ``t - R + 1 .. t`` only, with receptive field
``R = 1 + 2 (k - 1) (2^L - 1)`` for L blocks of kernel size k.

Example (the paper's adding-problem setting: 8 levels of 30 channels, k = 7)::

    tcn = TCN(input_size=2, channels=[30] * 8, kernel_size=7)
    y = tcn(torch.randn(600, 32, 2))          # [T, B, 30]; tcn.receptive_field == 3061

Shapes: input ``[T, B, I]`` (or ``[B, T, I]`` with ``batch_first=True``), output ``[T, B, C_L]``
in the same layout. Defaults are the reference implementation's: ``kernel_size=2``,
``dropout=0.2``, conv weights ~ N(0, 0.01).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

from rnnlab.errors import ConfigError
from rnnlab.validation import check_positive


class CausalConv1d(nn.Conv1d):
    """Conv1d that pads ``(kernel_size - 1) * dilation`` steps on the left only."""

    def forward(self, x: Tensor) -> Tensor:  # x [B, C, T]
        return super().forward(F.pad(x, ((self.kernel_size[0] - 1) * self.dilation[0], 0)))


class TemporalBlock(nn.Module):
    """Two weight-normalised dilated causal convolutions with ReLU, dropout and a residual."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, dilation: int, dropout: float
    ) -> None:
        super().__init__()
        convs = [
            CausalConv1d(in_channels, out_channels, kernel_size, dilation=dilation),
            CausalConv1d(out_channels, out_channels, kernel_size, dilation=dilation),
        ]
        for conv in convs:
            nn.init.normal_(conv.weight, 0.0, 0.01)
        self.conv1, self.conv2 = (weight_norm(conv) for conv in convs)
        self.dropout = nn.Dropout(dropout)
        self.downsample = (
            nn.Conv1d(in_channels, out_channels, 1) if in_channels != out_channels else None
        )
        if self.downsample is not None:
            nn.init.normal_(self.downsample.weight, 0.0, 0.01)

    def forward(self, x: Tensor) -> Tensor:  # [B, C, T]
        z = self.dropout(torch.relu(self.conv1(x)))
        z = self.dropout(torch.relu(self.conv2(z)))
        return torch.relu(z + (x if self.downsample is None else self.downsample(x)))


class TCN(nn.Module):
    """Temporal convolutional network over ``[T, B, I]`` sequences.

    Args:
        input_size: input features per step.
        channels: output channels of each residual block (its length = number of levels).
        kernel_size: convolution width ``k``.
        dropout: dropout after each convolution.
        batch_first: inputs and outputs are ``[B, T, ...]``.
    """

    def __init__(
        self,
        input_size: int,
        channels: list[int],
        kernel_size: int = 2,
        dropout: float = 0.2,
        batch_first: bool = False,
    ) -> None:
        super().__init__()
        check_positive(input_size=input_size, kernel_size=kernel_size)
        if not channels:
            raise ConfigError("channels must list at least one block width")
        widths = [input_size, *channels]
        self.blocks = nn.Sequential(
            *(
                TemporalBlock(widths[i], widths[i + 1], kernel_size, 2**i, dropout)
                for i in range(len(channels))
            )
        )
        self.kernel_size, self.batch_first = kernel_size, batch_first
        self.output_size = channels[-1]

    @property
    def receptive_field(self) -> int:
        """How many input steps each output sees: ``1 + 2 (k - 1) (2^L - 1)``."""
        return 1 + 2 * (self.kernel_size - 1) * (2 ** len(self.blocks) - 1)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 3:
            raise ConfigError(f"TCN expects a 3-d input [T, B, F], got shape {list(x.shape)}")
        layout = (0, 2, 1) if self.batch_first else (1, 2, 0)  # -> [B, C, T]
        y = self.blocks(x.permute(*layout))
        return y.permute(0, 2, 1) if self.batch_first else y.permute(2, 0, 1)


class TCNSequenceModel(nn.Module):
    """A :class:`TCN` with a linear readout at every step: the convolutional counterpart of
    :class:`rnnlab.models.sequence.SequenceModel`, with the same ``forward``/``last`` contract, so
    the benchmark tasks can train either (``--model tcn``).

    Shapes: ``x`` float ``[T, B, F]`` (or int64 tokens ``[T, B]`` when ``vocab_size`` is set,
    one-hot encoded); ``lengths`` int64 ``[B]`` (optional); ``forward(x)`` ``[T, B, O]``;
    ``last(x, lengths)`` ``[B, O]``, the output at step ``lengths[b] - 1`` (or ``T - 1``).

    Args:
        input_size: features per step (the vocabulary size for token inputs).
        channels: channels of every residual block (``hidden_size`` of the tasks).
        levels: residual blocks (``--layers``); block i has dilation ``2^i``.
        output_size: outputs per step.
        kernel_size: convolution width.
        dropout: dropout after each convolution.
        vocab_size: if set, inputs are token ids.
    """

    def __init__(
        self,
        input_size: int,
        channels: int,
        levels: int,
        output_size: int,
        kernel_size: int = 2,
        dropout: float = 0.0,
        vocab_size: int | None = None,
    ) -> None:
        super().__init__()
        check_positive(channels=channels, levels=levels, output_size=output_size)
        if vocab_size is not None and vocab_size != input_size:
            raise ConfigError("for token inputs, input_size must equal vocab_size")
        self.vocab_size = vocab_size
        self.tcn = TCN(input_size, [channels] * levels, kernel_size, dropout)
        self.readout = nn.Linear(channels, output_size)
        nn.init.normal_(self.readout.weight, 0.0, 0.01)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``lengths`` is accepted for the contract and not needed: the convolutions are causal,
        so padding after a sequence's end never reaches its valid steps."""
        if self.vocab_size is not None:
            x = F.one_hot(x, self.vocab_size).to(self.readout.weight.dtype)
        return self.readout(self.tcn(x))

    def last(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """The output at each sequence's last valid step: ``[B, O]``."""
        y = self(x)
        if lengths is None:
            return y[-1]
        index = (lengths.to(y.device) - 1).view(1, -1, 1).expand(1, -1, y.shape[-1])
        return y.gather(0, index).squeeze(0)
