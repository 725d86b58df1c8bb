"""Per-layer gradient norms, --clip-norm auto and its clip-rate warning."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rnnlab.errors import ConfigError
from rnnlab.training import make_config
from rnnlab.training.gradients import HISTORY, GradientMonitor, layer_name


class TwoLayers(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(3, 3), nn.Linear(3, 3)])
        self.decoder = nn.Linear(3, 2)


def set_gradients(model: nn.Module, scale: float, generator: torch.Generator) -> None:
    for p in model.parameters():
        p.grad = torch.randn(p.shape, generator=generator) * scale


def test_layer_names_and_norms():
    assert layer_name("layers.0.cell.weight_hh") == "layers.0"
    assert layer_name("decoder.weight") == "decoder"
    model = TwoLayers()
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    norms = GradientMonitor(model, None, None).layer_norms()
    assert norms == pytest.approx(
        {"grad_norm/layers.0": 12**0.5, "grad_norm/layers.1": 12**0.5, "grad_norm/decoder": 8**0.5}
    )


def test_auto_clips_the_target_fraction_of_stationary_norms():
    model, generator = TwoLayers(), torch.Generator().manual_seed(0)
    monitor = GradientMonitor(model, "auto", None, target=0.1)
    clipped = []
    for _ in range(2000):
        set_gradients(model, float(torch.rand((), generator=generator)) * 2 + 0.1, generator)
        norm, was_clipped, metrics = monitor.clip()
        clipped.append(was_clipped)
        total = torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in model.parameters()]))
        if was_clipped:  # clipped down to the threshold
            assert float(total) == pytest.approx(metrics["clip_threshold"], rel=1e-4)
    rate = sum(clipped[500:]) / len(clipped[500:])
    assert 0.07 < rate < 0.13
    assert monitor.warning() is None


def test_warning_when_norms_keep_falling():
    model, generator = TwoLayers(), torch.Generator().manual_seed(0)
    monitor = GradientMonitor(model, "auto", None, target=0.05)
    for step in range(HISTORY + 10):
        set_gradients(model, 0.995**step, generator)  # every norm is below the recent ones
        monitor.clip()
    assert "far from --clip-target 5.0%" in monitor.warning()
    restored = GradientMonitor(model, "auto", None, target=0.05)
    restored.load_state_dict(monitor.state_dict())
    assert restored.threshold() == monitor.threshold()


def test_fixed_threshold_is_reported_and_clipped():
    model = TwoLayers()
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    norm, clipped, metrics = GradientMonitor(model, 1.0, None).clip()
    assert clipped and norm == pytest.approx(32**0.5) and metrics["clipped"] == 1.0


def test_clip_norm_flag_values():
    assert make_config("charlm", clip_norm="auto").clip_norm == "auto"
    with pytest.raises(ConfigError, match="--clip-norm must be a positive number or auto"):
        make_config("charlm", clip_norm="often")
    with pytest.raises(ConfigError, match="--clip-target must be in"):
        make_config("charlm", clip_target=1.5)
