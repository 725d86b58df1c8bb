"""Shared fixtures. Real datasets come from ``../shared/data`` beside the project (or
``RNNLAB_DATA_DIR``); tests that need one are skipped when it is not there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    env = os.environ.get("RNNLAB_DATA_DIR")
    candidate = Path(env) if env else ROOT.parent / "shared" / "data"
    return candidate if candidate.is_dir() else None


@pytest.fixture
def data_dir() -> Path:
    path = shared_data_dir()
    if path is None:
        pytest.skip("no shared data directory (set RNNLAB_DATA_DIR)")
    return path


# Tests use tiny tensors: one thread avoids oversubscription on a busy 2-core machine.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
