"""Keeping freed memory in the process, for CPU training with glibc's ``malloc``.

A training step allocates its activations, gradients and temporaries (tens of megabytes for an
LSTM of a few hundred units) and frees them again. glibc returns such memory to the system as
soon as it is free (it trims the top of its heap, and maps big blocks of their own), so the next
step takes it back page by page and the kernel zeroes every page on first touch. Measured here
(AMD EPYC, torch 2.13.0+cpu, one thread, T=100, B=32, I=128, H=256): a ``torch.nn.LSTM`` training
step took 59 ms with 7,400 page faults (16 ms in the kernel), and 45 ms with none once glibc keeps
256 MB of padding at the top of its heap (``mallopt(M_TOP_PAD)``, with the mmap threshold at its
32 MB maximum). The quick start's ``rnnlab train --max-steps 300`` took 18% less wall time.

:func:`keep_freed_memory` asks for that; the ``rnnlab`` command does it at start
(``RNNLAB_MALLOC_TOP_PAD_MB``, default 256; 0 leaves glibc as it is). The cost is that up to that
much freed memory stays with the process instead of going back to the system. Elsewhere than
glibc (macOS, Windows, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import os

from rnnlab.errors import ConfigError

ENV = "RNNLAB_MALLOC_TOP_PAD_MB"
DEFAULT_MB = 256
_M_TOP_PAD, _M_MMAP_THRESHOLD = -2, -3  # glibc's malloc.h
_MMAP_THRESHOLD = 32 * 2**20  # the largest glibc takes on 64-bit systems


def keep_freed_memory(megabytes: float | None = None) -> bool:
    """Ask glibc to keep up to ``megabytes`` (default: ``RNNLAB_MALLOC_TOP_PAD_MB``, else 256)
    of freed memory at the top of its heap; ``True`` when it was set, ``False`` when there is no
    glibc ``mallopt`` here or the size is 0."""
    if megabytes is None:
        megabytes = configured_megabytes()
    if megabytes <= 0:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # Setting either fixes glibc's sliding mmap threshold; at its default (128 KB) every tensor
    # over it would be mapped, and faulted in, anew. Blocks under 32 MB come from the heap.
    pad = min(int(megabytes * 2**20), 2**31 - 1)
    return mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD) == 1 and mallopt(_M_TOP_PAD, pad) == 1


def configured_megabytes() -> float:
    """``RNNLAB_MALLOC_TOP_PAD_MB`` as a number of megabytes (default 256)."""
    return megabytes_setting(ENV, DEFAULT_MB, "leaves glibc as it is")


def megabytes_setting(name: str, default: float, zero: str) -> float:
    """The environment variable ``name`` as a number of megabytes (``default`` when unset); a
    :class:`ConfigError` naming it when it is not a number or is negative (``zero`` says what 0
    does)."""
    text = os.environ.get(name, str(default))
    try:
        megabytes = float(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r} is not a number of megabytes (0 {zero})") from None
    if megabytes < 0:
        raise ConfigError(f"{name}={text!r} is negative; give megabytes (0 {zero})")
    return megabytes
