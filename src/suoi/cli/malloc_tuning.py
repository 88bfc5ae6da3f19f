"""glibc malloc settings for the `suoi broker` process (issue 19: the produce path's kernel time).

Every Produce of 64 KiB-1 MB moves its bytes through a few short-lived buffers of that size
(the socket read, the frame, the records field, the batch being written). With glibc's
defaults those come from fresh memory each time: a block above the mmap threshold (128 KiB
until the first such block is freed, then dynamic) is `mmap`ed and `munmap`ed, and the heap's
top is given back (`brk`) whenever more than the trim threshold (2x that) is free. Each fresh
page is then a page fault that zeroes it before the copy lands: a third of the broker's CPU
in a 1 KiB produce run (perf: `do_anonymous_page`, `clear_page`, `munmap`), more than the
page-cache write of the data itself.

`tune_malloc` keeps such blocks on the heap (mmap only above `MMAP_THRESHOLD`) and keeps up to
`TRIM_THRESHOLD` of freed heap instead of returning it, so the buffers reuse pages already
mapped. The cost is RSS: the process keeps its high-water mark of heap (bounded by what the
requests in flight need plus `TRIM_THRESHOLD`) instead of shrinking after a burst; it stays
flat after warm-up. Only the `suoi broker` process: an in-process node leaves its host's malloc
alone, and an operator who sets glibc's own variables (``MALLOC_TRIM_THRESHOLD_``,
``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TOP_PAD_``) keeps them. No-op off glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

__all__ = ["MMAP_THRESHOLD", "TOP_PAD", "TRIM_THRESHOLD", "tune_malloc"]

#: Blocks up to this size come from the heap (glibc's mallopt refuses more than 32 MiB).
MMAP_THRESHOLD = 16 * 1024 * 1024
#: Free memory at the top of the heap kept before any is returned to the kernel.
TRIM_THRESHOLD = 128 * 1024 * 1024
#: Extra heap taken (and kept at a trim) each time the heap grows: fewer `brk` calls.
TOP_PAD = 16 * 1024 * 1024

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

_OPERATOR_VARIABLES = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_")


def tune_malloc() -> bool:
    """Apply the settings above; returns whether they were applied (glibc, and the operator
    set none of glibc's variables)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    if any(name in os.environ for name in _OPERATOR_VARIABLES):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    mallopt = libc.mallopt
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in (
        (_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD), (_M_TOP_PAD, TOP_PAD)))
