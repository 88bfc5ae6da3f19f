"""One loop timer for the max waits of every parked Fetch (Kafka's purgatory keeps one timing
wheel for all its delayed fetches, not a timer each).

A parked consumer Fetch used to start its own `loop.call_later` and cancel it when an append
answered it first - the usual case at a steady rate: a uvloop timer started and closed per
parked Fetch, ~1.3 µs on warm caches but ~10 µs on the cold ones a paced node runs on (the
loop sleeps between requests; benchmarks/README.md, "seventh session"). Here a parked Fetch
is an entry in a FIFO per max wait (deadlines of the same max wait come in time order: the
loop's clock is monotonic), and one `call_at` is armed for the earliest entry of any of them.
An entry answered before its deadline is left where it is (nothing to cancel) and skipped
when its time comes; the queues are swept of such entries when they grow past twice what was
live at the last sweep, so what they hold stays bounded by the fetches parked within one max
wait, whatever the client's max wait is.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Protocol

log = logging.getLogger(__name__)

#: a queue is swept of answered entries once it holds more than this (and twice its live ones)
SWEEP_AT = 1024
#: deadlines this close are due together (the loop's timers have 1 ms resolution: a deadline a
#: rounding short of the clock must not re-arm for the same instant)
RESOLUTION_S = 0.001


class Expiring(Protocol):
    """A parked Fetch as the deadlines see it."""

    @property
    def done(self) -> bool:
        """Answered, failed or cancelled: its deadline is ignored."""

    def _expire(self) -> None:
        """Its max wait ran out: answer with what there is."""


class FetchDeadlines:
    """The max-wait deadlines of the parked fetches of one event loop (module doc)."""

    __slots__ = ("_armed_at", "_limits", "_queues", "_timer", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._queues: dict[int, deque[tuple[float, Expiring]]] = {}  # max wait ms -> (deadline, fetch)
        self._limits: dict[int, int] = {}  # max wait ms -> the size that triggers the next sweep
        self._timer: asyncio.TimerHandle | None = None
        self._armed_at = float("inf")

    def add(self, max_wait_ms: int, fetch: Expiring) -> None:
        """Call `fetch.expire()` once `max_wait_ms` have passed, unless it is done by then."""
        when = self.loop.time() + max_wait_ms / 1000
        queue = self._queues.get(max_wait_ms)
        if queue is None:
            queue = self._queues[max_wait_ms] = deque()
            self._limits[max_wait_ms] = SWEEP_AT
        queue.append((when, fetch))
        if len(queue) > self._limits[max_wait_ms]:
            self._sweep(max_wait_ms, queue)
        if when < self._armed_at:
            self._arm(when)

    def _sweep(self, max_wait_ms: int, queue: deque[tuple[float, Expiring]]) -> None:
        live = [entry for entry in queue if not entry[1].done]
        queue.clear()
        queue.extend(live)
        self._limits[max_wait_ms] = max(SWEEP_AT, 2 * len(live))

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._armed_at = when
        self._timer = self.loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._armed_at = float("inf")
        now = self.loop.time() + RESOLUTION_S
        due: list[Expiring] = []
        earliest = float("inf")
        for max_wait_ms, queue in list(self._queues.items()):
            while queue and (queue[0][0] <= now or queue[0][1].done):
                fetch = queue.popleft()[1]
                if not fetch.done:
                    due.append(fetch)
            if queue:
                earliest = min(earliest, queue[0][0])
            else:
                del self._queues[max_wait_ms], self._limits[max_wait_ms]
        if earliest < self._armed_at:
            self._arm(earliest)
        for fetch in due:  # (after re-arming: each answers on its own, as its own timer did)
            try:
                fetch._expire()
            except Exception:  # one fetch's answer failing must not keep the others waiting
                log.exception("answering a parked fetch at its max wait failed")
