"""Hand the heap's freed pages back to the operating system between estimation steps.

The estimation allocates and frees float64 tensors of many sizes (covariances, their fold
left-outs, the N/2 check's halves), one group of pairs after another. glibc keeps what is freed
in its heap for reuse, and the mix of sizes fragments it, so the resident memory grew with every
block: over the README command's estimation by 1.7 GB, to twice what the capture needed (issue
35; measured by `studies/benchmarks/memory.py`). `release()` after each block returns the free
pages (glibc's `malloc_trim`); elsewhere (no glibc) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

__all__ = ["release"]


@functools.cache
def _malloc_trim() -> ctypes._CFuncPtr | None:
    """glibc's `malloc_trim`, or None where the C library has none."""
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


def release() -> None:
    """Return the heap's free pages to the operating system, where the C library can."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
