"""Next-frame prediction with stacked ConvLSTM layers (Shi et al. 2015).

Frames are folded into ``patch x patch`` blocks first (``pixel_unshuffle``: a 64x64 frame
becomes 16 channels of 16x16 with ``patch=4``, as Shi et al. do), run through the ConvLSTM
layers, and a 1x1 convolution unfolds the top layer's state back into per-pixel logits of the
*next* frame.

Shapes (B batch, T frames, C channels, S x S frame):

=========  ==========================================================================
frames     ``[B, T, C, S, S]`` in ``[0, 1]``
forward    ``[B, T, C, S, S]`` logits; step ``t`` predicts frame ``t + 1`` from frames ``<= t``
rollout    ``[B, steps, C, S, S]`` probabilities, each predicted frame fed back as input
=========  ==========================================================================

Example::

    model = ConvLSTMFramePredictor(hidden_size=32, layers=2)
    logits = model(videos[:, :-1])
    loss = F.binary_cross_entropy_with_logits(logits, videos[:, 1:])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.cells.conv_lstm import ConvLSTMCell
from rnnlab.cells.lstm import LSTMState
from rnnlab.errors import ConfigError
from rnnlab.layers.unroll import unroll


class ConvLSTMFramePredictor(nn.Module):
    """Stacked ConvLSTM next-frame predictor for Bernoulli pixels.

    Args:
        channels: channels ``C`` of a frame (1 for grey).
        hidden_size: hidden channels of every ConvLSTM layer.
        layers: stacked ConvLSTM layers.
        kernel_size: odd kernel size of every ConvLSTM.
        patch: side of the blocks folded into channels (the frame side must be a multiple).
    """

    def __init__(
        self,
        channels: int = 1,
        hidden_size: int = 32,
        layers: int = 2,
        kernel_size: int = 5,
        patch: int = 4,
    ) -> None:
        super().__init__()
        self.patch = patch
        folded = channels * patch * patch
        self.cells = nn.ModuleList(
            ConvLSTMCell(folded if i == 0 else hidden_size, hidden_size, kernel_size)
            for i in range(layers)
        )
        self.readout = nn.Conv2d(hidden_size, folded, 1)

    def _fold(self, frames: Tensor) -> Tensor:
        """``[B, T, C, S, S] -> [T, B, C p^2, S/p, S/p]``."""
        if frames.shape[-1] % self.patch or frames.shape[-2] % self.patch:
            raise ConfigError(
                f"frame size {list(frames.shape[-2:])} is not a multiple of the patch"
            )
        folded = F.pixel_unshuffle(frames.flatten(0, 1), self.patch)
        return folded.view(*frames.shape[:2], *folded.shape[1:]).transpose(0, 1)

    def _unfold(self, h: Tensor) -> Tensor:
        """Top states ``[T, B, H, s, s] -> [B, T, C, S, S]`` logits."""
        logits = F.pixel_shuffle(self.readout(h.flatten(0, 1)), self.patch)
        return logits.view(*h.shape[:2], *logits.shape[1:]).transpose(0, 1)

    def _init_states(self, x: Tensor) -> list[LSTMState]:
        batch, size = x.shape[1], tuple(x.shape[-2:])
        return [cell.init_state(batch, x.device, x.dtype, size) for cell in self.cells]

    def encode(
        self, frames: Tensor, states: list[LSTMState] | None = None
    ) -> tuple[Tensor, list[LSTMState]]:
        """Top-layer states ``[T, B, H, s, s]`` after each frame, and every layer's last state."""
        x = self._fold(frames)
        states = states if states is not None else self._init_states(x)
        finals = []
        for cell, state in zip(self.cells, states):
            x, state = unroll(cell, x, state)
            finals.append(state)
        return x, finals

    def forward(self, frames: Tensor) -> Tensor:
        return self._unfold(self.encode(frames)[0])

    def rollout(self, context: Tensor, steps: int) -> Tensor:
        """Condition on ``context [B, Tc, C, S, S]``, then predict ``steps`` frames, each from
        the previous prediction (probabilities, not samples): ``[B, steps, C, S, S]``."""
        h, states = self.encode(context)
        frame = torch.sigmoid(self._unfold(h[-1:]))
        predicted = [frame]
        for _ in range(steps - 1):
            h, states = self.encode(frame, states)
            frame = torch.sigmoid(self._unfold(h))
            predicted.append(frame)
        return torch.cat(predicted, 1)
