"""Native step kernels of the fused LSTM/GRU variant paths, compiled just in time.

The gate maths of one time step (forward or backward) is one call into C++
(``native_kernels.cpp``) instead of about ten tensor operations from Python, each paying
Python's and the dispatcher's overhead; without autograd a whole sequence is one call
(:mod:`rnnlab.fast.native_sequence`). The kernels are compiled with
``torch.utils.cpp_extension.load_inline`` on first use (g++ and ninja needed; measured here:
about 40 s of CPU, 80-150 s of wall time on the loaded 2-core machine) into torch's extension cache
(``~/.cache/torch_extensions``, or ``$TORCH_EXTENSIONS_DIR``), and loaded from there afterwards.
Build them ahead with ``rnnlab native``.

When they cannot be built (no compiler) the fused paths run their Python form, with one warning;
so do tensors on other devices or of other types than float32/float64 (without a warning).
``RNNLAB_NATIVE=0`` chooses the Python form without trying.

The whole-sequence kernels take their ``[T, B, ...]`` outputs from a pool of reused buffers
(``native_buffers.cpp``): a training step then reuses the pages of the last one instead of
faulting in fresh ones from the system. ``RNNLAB_BUFFER_POOL_MB`` bounds the idle memory it keeps
(default 1024; 0 turns it off); :func:`release_buffers` frees it.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import torch
from torch import Tensor

from rnnlab.fast.heap import megabytes_setting
from rnnlab.fast.onednn import REORDER_STEPS, packed_weight

SOURCE = Path(__file__).with_name("native_kernels.cpp")
BUFFERS = Path(__file__).with_name("native_buffers.cpp")  # compiled first, into the same library
GEMM = Path(__file__).with_name("native_gemm.cpp")  # second
POOL_ENV = "RNNLAB_BUFFER_POOL_MB"
DEFAULT_POOL_MB = 1024
_state: dict = {}


def kernels():
    """The ``torch.ops.rnnlab_native`` namespace, built and loaded on first call; ``None`` when
    disabled (``RNNLAB_NATIVE=0``) or when the build failed (warned once)."""
    if disabled():
        return None
    if "ops" not in _state:
        _state["ops"] = _build()
    return _state["ops"]


def disabled() -> bool:
    """True when ``RNNLAB_NATIVE=0`` asks for the Python form."""
    return os.environ.get("RNNLAB_NATIVE", "1") == "0"


def build_seconds() -> float:
    """Wall time the build (or the load from the cache) took in this process."""
    return _state.get("build_seconds", 0.0)


def _build():
    from torch.utils.cpp_extension import load_inline

    start = time.perf_counter()
    try:
        load_inline(
            "rnnlab_native",
            cpp_sources=[BUFFERS.read_text(), GEMM.read_text(), SOURCE.read_text()],
            is_python_module=False,
            # vectorise the loops marked "omp simd"; without trapping maths the clamps of the
            # inference loops' exp are selects, so the AVX2 and SSE2 builds vectorise them too
            extra_cflags=["-O3", "-fopenmp-simd", "-fno-trapping-math"],
        )
    except Exception as error:  # a missing compiler shows as one of several error types
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        warnings.warn(
            f"rnnlab: the native step kernels could not be built ({first}); the fused LSTM/GRU "
            "variants run their slower Python form (set RNNLAB_NATIVE=0 to skip the attempt)",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    _state["build_seconds"] = time.perf_counter() - start
    ops = torch.ops.rnnlab_native
    ops.set_buffer_pool_limit(_pool_limit_bytes())
    return ops


def _pool_limit_bytes() -> int:
    """The buffer pool's limit from ``RNNLAB_BUFFER_POOL_MB`` (default 1024; 0: no pool)."""
    return int(megabytes_setting(POOL_ENV, DEFAULT_POOL_MB, "turns the pool off") * 2**20)


def release_buffers() -> int:
    """Frees the idle buffers the native kernels keep for reuse; returns how many bytes that was.

    The whole-sequence kernels take their ``[T, B, ...]`` outputs from a pool, so that a training
    step reuses the memory of the last one instead of faulting in fresh pages (see
    ``native_buffers.cpp``); ``RNNLAB_BUFFER_POOL_MB`` bounds what it keeps idle."""
    ops = _state.get("ops")
    if ops is None:
        return 0
    idle = ops.buffer_pool_bytes()
    ops.set_buffer_pool_limit(ops.set_buffer_pool_limit(0))
    return idle


def native_for(*tensors: Tensor | None):
    """The kernels when they can run on these tensors (all on CPU, float32 or float64), else
    ``None``."""
    for t in tensors:
        if t is not None and (t.device.type != "cpu" or t.dtype not in _DTYPES):
            return None
    return kernels()


def step_weight(ops, weight: Tensor, batch: int, steps: int) -> Tensor | None:
    """``weight [N, K]`` prepared once for a native loop's ``steps`` products ``x [batch, K] @
    weight.T``: packed into panels for rnnlab's own product (``native_gemm.cpp``; float32 with
    N a multiple of 64 on an AVX-512 CPU, unless ``RNNLAB_PANEL_GEMM=0``), else reordered for
    oneDNN as :class:`~rnnlab.fast.onednn.StepWeight` would, else ``None`` (plain products)."""
    weight = weight.detach()
    panels = os.environ.get("RNNLAB_PANEL_GEMM", "1") != "0"
    if panels and steps >= REORDER_STEPS and ops.panel_gemm_covers(weight):
        return ops.pack_panels(weight)
    return packed_weight(weight, batch, steps)


_DTYPES = (torch.float32, torch.float64)
