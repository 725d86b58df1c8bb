"""Moving digits: synthetic videos of MNIST digits bouncing inside a square frame.

The task of Srivastava et al. (2015) and Shi et al. (2015): each video shows ``num_digits``
28x28 digits, each starting at a random position with a random direction and speed, moving in
straight lines and bouncing off the frame's edges; where digits overlap the brighter pixel wins.
Generation is deterministic given the seed (a ``torch.Generator``), so a test set is the same
set of videos on every machine.

Shapes: ``videos [N, T, 1, S, S]`` float in ``[0, 1]`` (T frames, S = frame size, default 64).

Example::

    digits, _ = load_mnist_split("test", protocol="test-split", data_dir="/work/shared/data")
    videos = moving_digits(digits, num_videos=8, steps=20, seed=0)   # [8, 20, 1, 64, 64]
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from rnnlab.errors import ConfigError


def moving_digits(
    digits: Tensor,
    num_videos: int,
    steps: int = 20,
    frame_size: int = 64,
    num_digits: int = 2,
    seed: int = 0,
    speed: tuple[float, float] = (2.0, 4.0),
) -> Tensor:
    """``num_videos`` videos ``[N, steps, 1, frame_size, frame_size]`` of bouncing digits.

    Args:
        digits: the images to draw from, ``[M, h, w]`` uint8 (0-255) or float in ``[0, 1]``.
        num_videos: number of videos ``N``.
        steps: frames per video ``T``.
        frame_size: side ``S`` of the square frame; must exceed the digits' size.
        num_digits: digits per video.
        seed: seeds the choice of digits, starting positions, directions and speeds.
        speed: range of speeds in pixels per frame (uniform).
    """
    if digits.dim() != 3 or len(digits) == 0:
        raise ConfigError(f"digits must be a non-empty [M, h, w] tensor, got {list(digits.shape)}")
    height, width = digits.shape[1:]
    if frame_size <= max(height, width):
        raise ConfigError(f"frame_size {frame_size} must exceed the digit size {height}x{width}")
    for name, value in (("num_videos", num_videos), ("steps", steps), ("num_digits", num_digits)):
        if value < 1:
            raise ConfigError(f"{name} must be at least 1, got {value}")
    images = digits.float() / 255.0 if digits.dtype == torch.uint8 else digits.float()
    generator = torch.Generator().manual_seed(seed)
    choice = torch.randint(len(images), (num_videos, num_digits), generator=generator)
    limit = torch.tensor([frame_size - height, frame_size - width], dtype=torch.float64)
    position = torch.rand(num_videos, num_digits, 2, generator=generator, dtype=torch.float64)
    position = position * limit
    angle = torch.rand(num_videos, num_digits, generator=generator, dtype=torch.float64)
    angle = angle * 2 * math.pi
    low, high = speed
    magnitude = low + (high - low) * torch.rand(
        num_videos, num_digits, generator=generator, dtype=torch.float64
    )
    velocity = torch.stack([torch.sin(angle), torch.cos(angle)], -1) * magnitude.unsqueeze(-1)

    videos = torch.zeros(num_videos, steps, frame_size, frame_size)
    video_index = torch.arange(num_videos)[:, None, None]
    row_offsets, col_offsets = torch.arange(height), torch.arange(width)
    for t in range(steps):
        corner = position.round().long()
        for d in range(num_digits):
            rows = (corner[:, d, 0, None] + row_offsets)[:, :, None]
            cols = (corner[:, d, 1, None] + col_offsets)[:, None, :]
            frame = videos[:, t]
            frame[video_index, rows, cols] = torch.maximum(
                frame[video_index, rows, cols], images[choice[:, d]]
            )
        position, velocity = _bounce(position + velocity, velocity, limit)
    return videos.unsqueeze(2)


def _bounce(position: Tensor, velocity: Tensor, limit: Tensor) -> tuple[Tensor, Tensor]:
    """Reflect positions that left ``[0, limit]`` back inside and flip their velocity."""
    below, above = position < 0, position > limit
    position = torch.where(below, -position, position)
    position = torch.where(above, 2 * limit - position, position)
    velocity = torch.where(below | above, -velocity, velocity)
    return position, velocity
