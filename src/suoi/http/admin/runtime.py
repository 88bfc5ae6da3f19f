"""Python runtime figures that matter to a one-thread broker: event-loop lag and GC pauses.

A node serves every connection from one event loop, so the time a callback waits behind
another is the Python equivalent of Kafka's "network processor idle" going to zero: a probe
task sleeps `interval` and records how late it wakes. GC pauses stop that loop too; they are
timed with `gc.callbacks`. RSS, CPU and open files come from prometheus-client's own
`ProcessCollector` (see `collector.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from bisect import bisect_left
from typing import Any

#: The loop-lag probe's sleep while the event loop is idle: it used less than `IDLE_LOOP_SHARE` of
#: a core over the last sleep and ran the probe's timer less than `IDLE_LAG_S` late. At 0.25 s, the probe
#: was 4 wake-ups a second of a node nobody uses, half of what its loop did then (issue 19); a
#: loop with work to do (any client at a steady rate) is sampled every `interval_s` as before.
IDLE_INTERVAL_S = 1.0
IDLE_LOOP_SHARE = 0.02
IDLE_LAG_S = 0.005
#: Bucket bounds (seconds) of the loop-lag and GC-pause histograms.
PAUSE_BUCKETS_S: tuple[float, ...] = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class PauseHistogram:
    """Counts per bucket (not cumulative), a sum and the largest value seen."""

    __slots__ = ("buckets", "count", "max", "sum")

    def __init__(self) -> None:
        self.buckets = [0] * (len(PAUSE_BUCKETS_S) + 1)
        self.count = 0
        self.sum = 0.0
        self.max = 0.0

    def observe(self, seconds: float) -> None:
        self.buckets[bisect_left(PAUSE_BUCKETS_S, seconds)] += 1
        self.count += 1
        self.sum += seconds
        self.max = max(self.max, seconds)


class RuntimeMonitor:
    """Event-loop lag probe and GC pause timer; `start`/`stop` with the admin endpoint."""

    def __init__(self, interval_s: float = 0.25) -> None:
        self.interval_s = interval_s
        self.loop_lag = PauseHistogram()
        self.last_loop_lag = 0.0
        self.gc_pauses = PauseHistogram()
        self._gc_started: float | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._probe(), name="admin-loop-lag")
        gc.callbacks.append(self._on_gc)

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._on_gc)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _probe(self) -> None:
        """Sleep, and record how late the loop woke the probe: every `interval_s`, or every
        `IDLE_INTERVAL_S` while the loop is idle (the loop thread's CPU time tells)."""
        loop = asyncio.get_running_loop()
        interval = self.interval_s
        cpu = time.thread_time()  # the loop's thread: this task runs on it
        while True:
            before = loop.time()
            await asyncio.sleep(interval)
            elapsed = loop.time() - before
            self.last_loop_lag = max(elapsed - interval, 0.0)
            self.loop_lag.observe(self.last_loop_lag)
            now = time.thread_time()
            idle = now - cpu < IDLE_LOOP_SHARE * elapsed and self.last_loop_lag < IDLE_LAG_S
            cpu = now
            interval = IDLE_INTERVAL_S if idle else self.interval_s

    def _on_gc(self, phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif self._gc_started is not None:
            self.gc_pauses.observe(time.perf_counter() - self._gc_started)
            self._gc_started = None
