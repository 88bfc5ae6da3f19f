"""How fast the log cleaner's ``build`` goes, on its worker thread: Kafka's I/O throttle
(``log.cleaner.io.max.bytes.per.second``) and its releases of the GIL.

The throttle, as Kafka's ``Throttler``: bytes read and written are counted, and once they run
ahead of the rate the thread sleeps until they no longer do (default: unlimited). The rate is a
dynamic broker config (``LogCleaner.reconfigure`` in Kafka): ``IoThrottle`` is the one mutable
setting the broker changes and every ``Pace`` reads at each count, so a build in progress follows
a new rate from its next batch (the window restarts then). As in Kafka, which validates nothing
but the type: a negative (or NaN) rate never throttles, and 0 stops the cleaner's I/O - here until
the rate changes or the node stops (the sleep is taken in slices, so neither waits for it).

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

__all__ = ["GIL_YIELD_S", "CleanerStopped", "IoThrottle", "Pace"]

#: Seconds between the cleaner's GIL releases (None: the switch interval; 0: never).
GIL_YIELD_S: float | None = None


#: Longest single sleep of a throttled build: how late it sees a new rate or the node stopping.
SLEEP_SLICE_S = 0.1


class CleanerStopped(Exception):
    """The node stopped while a build was throttled: the build gives up (its files removed)."""


class IoThrottle:
    """``log.cleaner.io.max.bytes.per.second`` as it is now: written by the event loop
    (``Broker.reconfigure``), read by the cleaner's thread; one attribute, so no lock."""

    __slots__ = ("bytes_per_s", "stopped")

    def __init__(self, bytes_per_s: float = math.inf) -> None:
        self.bytes_per_s = bytes_per_s
        #: Set when the node stops: a throttled build raises ``CleanerStopped`` rather than sleep on.
        self.stopped = False


class Pace:
    """One ``build``'s pacing; ``batch`` after each batch read, ``io`` for bytes read or written."""

    __slots__ = ("_every", "_next_yield", "_rate", "_start", "_throttle", "_total")

    def __init__(self, throttle: IoThrottle | float = math.inf) -> None:
        self._every = sys.getswitchinterval() if GIL_YIELD_S is None else GIL_YIELD_S
        self._next_yield = time.perf_counter() + self._every
        self._throttle = throttle if isinstance(throttle, IoThrottle) else IoThrottle(throttle)
        self._rate = self._throttle.bytes_per_s
        self._start = time.monotonic()
        self._total = 0

    def batch(self) -> None:
        if self._every and time.perf_counter() >= self._next_yield:
            time.sleep(0)
            self._next_yield = time.perf_counter() + self._every

    def io(self, n: int) -> None:
        if self._throttle.bytes_per_s != self._rate:  # NaN never equals: treated as a change, harmless
            self._restart()
        rate = self._rate
        if not rate >= 0 or rate == math.inf:  # negative or NaN: Kafka's Throttler never sleeps
            return
        self._total += n
        while True:
            ahead = math.inf if rate == 0 else self._total / rate - (time.monotonic() - self._start)
            if ahead <= 0:
                return
            if self._throttle.stopped:
                raise CleanerStopped("the node is stopping")
            time.sleep(min(ahead, SLEEP_SLICE_S))
            if self._throttle.bytes_per_s != rate:  # changed while asleep: this count in the new window
                self._restart()
                rate = self._rate
                if not rate >= 0 or rate == math.inf:
                    return
                self._total = n

    def _restart(self) -> None:
        """A new rate: count from now (what ran ahead at the old rate is forgiven)."""
        self._rate = self._throttle.bytes_per_s
        self._start = time.monotonic()
        self._total = 0
