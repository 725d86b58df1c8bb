"""Native step kernels of the fused LSTM/GRU variant paths, compiled just in time.

The gate maths of one time step (forward or backward) is one call into C++
(``native_kernels.cpp``) instead of about ten tensor operations from Python, each paying
Python's and the dispatcher's overhead. The kernels are compiled with
``torch.utils.cpp_extension.load_inline`` on first use (g++ and ninja needed; measured here:
30 s of CPU, 80 s on a loaded 2-core machine) into torch's extension cache
(``~/.cache/torch_extensions``, or ``$TORCH_EXTENSIONS_DIR``), and loaded from there afterwards.
Build them ahead with ``python -m rnnlab.fast.native``.

When they cannot be built (no compiler, another device than CPU) the fused paths run their
Python form, with one warning; ``RNNLAB_NATIVE=0`` chooses the Python form without trying.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path

import torch
from torch import Tensor

SOURCE = Path(__file__).with_name("native_kernels.cpp")
_state: dict = {}


def kernels():
    """The ``torch.ops.rnnlab_native`` namespace, built and loaded on first call; ``None`` when
    disabled (``RNNLAB_NATIVE=0``) or when the build failed (warned once)."""
    if os.environ.get("RNNLAB_NATIVE", "1") == "0":
        return None
    if "ops" not in _state:
        _state["ops"] = _build()
    return _state["ops"]


def _build():
    from torch.utils.cpp_extension import load_inline

    start = time.perf_counter()
    try:
        load_inline(
            "rnnlab_native",
            cpp_sources=[SOURCE.read_text()],
            is_python_module=False,
            extra_cflags=["-O3"],
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
    return torch.ops.rnnlab_native


def native_for(*tensors: Tensor | None):
    """The kernels when they can run on these tensors (all on CPU, float32 or float64), else
    ``None``."""
    for t in tensors:
        if t is not None and (t.device.type != "cpu" or t.dtype not in _DTYPES):
            return None
    return kernels()


_DTYPES = (torch.float32, torch.float64)


def main() -> int:
    """``python -m rnnlab.fast.native``: build the kernels now and say how long it took."""
    ops = kernels()
    if ops is None:
        print("native step kernels: not available (see the warning above)", file=sys.stderr)
        return 1
    seconds = _state.get("build_seconds", 0.0)
    print(f"native step kernels: ready ({seconds:.1f} s to build or load)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
