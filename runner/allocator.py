"""Keep freed memory in the process while batches run (glibc malloc).

A model allocates the same large buffers for every batch. With glibc's adaptive defaults, freeing
them can hand the pages back to the kernel (the heap top is trimmed past twice the adaptive mmap
threshold), and the next batch faults them in again. On the benchmark machine that churn cost up to
a third of a prediction run's CPU time, all of it in the kernel (benchmarks/README.md). PyTorch's
CPU tuning guide suggests preloading jemalloc or TCMalloc for this; fixed glibc thresholds give
the same reuse with no library to install. Memory then stays at the run's peak instead of being
returned between batches.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import threading

logger = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's largest on 64-bit: bigger blocks are mapped and unmapped each time
TRIM_THRESHOLD = 512 << 20
# a user's own allocator settings win
_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES")

_lock = threading.Lock()
_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds once per process; whether they are set. Nothing is done
    off Linux, with another C library, or when the environment already tunes malloc."""
    global _applied
    with _lock:
        if _applied is None:
            _applied = _apply()
        return _applied


def _apply() -> bool:
    if not sys.platform.startswith("linux") or any(name in os.environ for name in _USER_SETTINGS):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    applied = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    logger.debug("malloc thresholds fixed (mmap %d MiB, trim %d MiB): %s", MMAP_THRESHOLD >> 20,
                 TRIM_THRESHOLD >> 20, applied)
    return applied
