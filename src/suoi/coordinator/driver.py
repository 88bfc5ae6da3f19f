"""The one asyncio loop shared by coordinator runtimes: fire a sans-IO machine's timers.

A machine exposes `next_deadline()` and `poll(now)`; the runtime sets `wake` whenever
it fed the machine an event (deadlines may have moved). Nothing else here knows time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable


async def drive_timers(next_deadline: Callable[[], int | None], fire: Callable[[int], object],
                       wake: asyncio.Event, now_ms: Callable[[], int]) -> None:
    while True:
        deadline = next_deadline()
        now = now_ms()
        if deadline is not None and deadline <= now:
            fire(now)
            continue
        wake.clear()
        timeout = None if deadline is None else (deadline - now) / 1000
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout)
