"""The admin endpoint's event-loop lag probe samples every `interval_s` while the loop works and
every `IDLE_INTERVAL_S` while it is idle (issue 19: 4 wake-ups a second of an idle node before)."""

from __future__ import annotations

import asyncio
import time

import pytest

import suoi.http.admin.runtime as runtime
from suoi.http.admin.runtime import RuntimeMonitor

INTERVAL_S = 0.05
IDLE_INTERVAL_S = 0.5
PHASE_S = 1.5  # each phase: 30 samples at INTERVAL_S, 3 at IDLE_INTERVAL_S


def test_the_lag_probe_samples_less_often_while_the_loop_is_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "IDLE_INTERVAL_S", IDLE_INTERVAL_S)

    async def scenario() -> tuple[int, int]:
        monitor = RuntimeMonitor(interval_s=INTERVAL_S)
        monitor.start()
        try:
            await asyncio.sleep(PHASE_S)  # the idle phase itself (nothing to wait for)
            idle = monitor.loop_lag.count
            end = time.monotonic() + PHASE_S
            while time.monotonic() < end:  # the loop busy: CPU in 2 ms slices, the probe's timer between
                sliced = time.thread_time()
                while time.thread_time() - sliced < 0.002:
                    pass
                await asyncio.sleep(0)
            return idle, monitor.loop_lag.count - idle
        finally:
            await monitor.stop()

    idle, busy = asyncio.run(scenario())
    assert 1 <= idle <= 10, idle  # ~3 (and the first), not ~30
    assert busy >= 10, busy  # ~30, not ~3
