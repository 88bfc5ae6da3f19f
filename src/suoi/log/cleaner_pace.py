"""How fast the log cleaner's ``build`` goes, on its worker thread: Kafka's I/O throttle
(``log.cleaner.io.max.bytes.per.second``) and its releases of the GIL.

The throttle, as Kafka's ``Throttler``: bytes read and written are counted, and once they run
ahead of the rate the thread sleeps until they no longer do (default: unlimited).

The GIL: in Python the cleaner's thread holds it while it works, and the event loop, woken by a
request, waits for it up to the switch interval (``sys.setswitchinterval``, 0.5 ms under ``suoi
broker``) - for every syscall it makes. Releasing it between batches once per interval
(``time.sleep(0)``) halves that wait on average: on a loop waking every 1 ms, wake-ups late by
0.74 -> 0.18 ms (p50) and 7.0 -> 3.3 ms (p99) for about the same CPU (bench_cleaner_gil.py).
"""

from __future__ import annotations

import math
import sys
import time

__all__ = ["GIL_YIELD_S", "Pace"]

#: Seconds between the cleaner's GIL releases (None: the switch interval; 0: never).
GIL_YIELD_S: float | None = None


class Pace:
    """One ``build``'s pacing; ``batch`` after each batch read, ``io`` for bytes read or written."""

    __slots__ = ("_every", "_next_yield", "_rate", "_start", "_total")

    def __init__(self, max_bytes_per_s: float = math.inf) -> None:
        self._every = sys.getswitchinterval() if GIL_YIELD_S is None else GIL_YIELD_S
        self._next_yield = time.perf_counter() + self._every
        self._rate = max_bytes_per_s
        self._start = time.monotonic()
        self._total = 0

    def batch(self) -> None:
        if self._every and time.perf_counter() >= self._next_yield:
            time.sleep(0)
            self._next_yield = time.perf_counter() + self._every

    def io(self, n: int) -> None:
        if self._rate == math.inf or self._rate <= 0:
            return
        self._total += n
        ahead = self._total / self._rate - (time.monotonic() - self._start)
        if ahead > 0:
            time.sleep(ahead)
