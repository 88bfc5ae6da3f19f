"""The parked fetches' max waits share one loop timer (`partition.fetch_deadlines`): each fetch
still expires at its own deadline, in time order across max waits; one answered first is
skipped (never expired), and the queues of answered entries stay bounded."""

from __future__ import annotations

import asyncio

import pytest

from suoi.partition import fetch_deadlines
from suoi.partition.fetch_deadlines import FetchDeadlines

pytestmark = pytest.mark.timeout(20)


class _Fetch:
    def __init__(self, name: str, log: list[tuple[str, float]], loop: asyncio.AbstractEventLoop) -> None:
        self.name, self._log, self._loop, self.done = name, log, loop, False

    def _expire(self) -> None:
        self.done = True
        self._log.append((self.name, self._loop.time()))


async def _until_done(fetch: _Fetch) -> None:
    """Poll until `fetch` is answered (bounded by the caller's wait_for)."""
    while not fetch.done:
        await asyncio.sleep(0.01)


async def _scenario() -> tuple[list[tuple[str, float]], float, int]:
    loop = asyncio.get_running_loop()
    deadlines = FetchDeadlines(loop)
    log: list[tuple[str, float]] = []
    start = loop.time()
    slow, answered, fast, fast2 = (_Fetch(n, log, loop) for n in ("slow", "answered", "fast", "fast2"))
    deadlines.add(300, slow)
    deadlines.add(100, answered)
    deadlines.add(100, fast)  # an earlier deadline than the armed one: re-armed
    deadlines.add(150, fast2)
    answered.done = True  # answered by an append before its deadline
    deadline = start + 5
    while len(log) < 3 and loop.time() < deadline:
        await asyncio.sleep(0.01)
    return log, start, len(deadlines._queues)


def test_each_fetch_expires_at_its_own_deadline_in_order_and_an_answered_one_never() -> None:
    log, start, queues_left = asyncio.run(_scenario())
    assert [name for name, _ in log] == ["fast", "fast2", "slow"]
    waited = {name: at - start for name, at in log}
    assert 0.099 <= waited["fast"] < 0.3
    assert 0.149 <= waited["fast2"] < 0.35
    assert 0.299 <= waited["slow"] < 0.6
    assert queues_left == 0  # nothing left behind once every deadline passed


async def _many_answered(n: int) -> tuple[int, int, int]:
    loop = asyncio.get_running_loop()
    deadlines = FetchDeadlines(loop)
    log: list[tuple[str, float]] = []
    live = _Fetch("live", log, loop)
    deadlines.add(60_000, live)
    for i in range(n):  # answered at once, as at a steady rate: entries nobody cancels
        f = _Fetch(str(i), log, loop)
        deadlines.add(60_000, f)
        f.done = True
    held = len(deadlines._queues[60_000])
    deadlines.add(50, expiring := _Fetch("short", log, loop))
    await asyncio.wait_for(_until_done(expiring), 5)
    return held, len(log), int(live.done)


def test_answered_entries_are_swept_so_a_long_max_wait_holds_a_bounded_queue() -> None:
    held, expired, live_expired = asyncio.run(_many_answered(10 * fetch_deadlines.SWEEP_AT))
    assert held <= fetch_deadlines.SWEEP_AT + 1
    assert expired == 1 and live_expired == 0  # only the short one expired; the live long one still waits


async def _one_fails() -> list[tuple[str, float]]:
    loop = asyncio.get_running_loop()
    deadlines = FetchDeadlines(loop)
    log: list[tuple[str, float]] = []

    class Broken(_Fetch):
        def _expire(self) -> None:
            raise RuntimeError("answer failed")

    deadlines.add(20, Broken("broken", log, loop))
    deadlines.add(20, ok := _Fetch("ok", log, loop))
    await asyncio.wait_for(_until_done(ok), 5)
    return log


def test_a_fetch_whose_expiry_fails_does_not_keep_the_others_waiting(caplog: pytest.LogCaptureFixture) -> None:
    assert [name for name, _ in asyncio.run(_one_fails())] == ["ok"]
    assert "max wait failed" in caplog.text
