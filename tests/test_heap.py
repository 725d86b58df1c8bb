"""rnnlab.fast.heap: with glibc keeping freed memory, a loop that allocates and frees big tensors
stops faulting in fresh pages; the setting's environment variable is checked, and the command
line reports a bad one in one line."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from rnnlab.errors import ConfigError
from rnnlab.fast import heap

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

FAULTS = """
import resource, sys, torch
from rnnlab.fast.heap import keep_freed_memory
print(keep_freed_memory(float(sys.argv[1])))
torch.set_num_threads(1)  # other threads allocate from arenas of their own
lstm, x = torch.nn.LSTM(128, 256), torch.randn(100, 32, 128)
def step():  # a training step of torch's own LSTM: about 60 MB allocated and freed
    y, _ = lstm(x)
    torch.autograd.grad(y.sum(), list(lstm.parameters()))
for _ in range(2):
    step()
faults = []
for _ in range(6):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    step()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(sorted(faults)[len(faults) // 2])  # the median step
"""


def page_faults(megabytes: float) -> tuple[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", FAULTS, str(megabytes)],
        capture_output=True,
        text=True,
        check=True,
        env={
            **{k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"},
            "OMP_NUM_THREADS": "1",
        },
    ).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_kept_memory_stops_the_page_faults_of_a_training_step():
    set_, faults_kept = page_faults(256)
    unset, faults_default = page_faults(0)
    assert (set_, unset) == ("True", "False")
    assert faults_default > 2000  # per step; measured here: 7,400 (29 MB of fresh 4 KB pages)
    assert faults_kept < faults_default / 5, (faults_kept, faults_default)  # here: 0


@pytest.mark.parametrize("value, words", [("lots", "not a number"), ("-1", "negative")])
def test_a_bad_setting_is_a_config_error(monkeypatch, value, words):
    monkeypatch.setenv(heap.ENV, value)
    with pytest.raises(ConfigError, match=words):
        heap.keep_freed_memory()


def test_zero_leaves_glibc_as_it_is(monkeypatch):
    monkeypatch.setenv(heap.ENV, "0")
    assert heap.configured_megabytes() == 0
    assert heap.keep_freed_memory() is False
    monkeypatch.delenv(heap.ENV)
    assert heap.configured_megabytes() == heap.DEFAULT_MB


def test_the_command_line_reports_a_bad_setting_in_one_line():
    env = dict(os.environ, **{heap.ENV: "lots"})
    done = subprocess.run(
        [sys.executable, "-m", "rnnlab", "native"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert heap.ENV in done.stderr and "not a number" in done.stderr
