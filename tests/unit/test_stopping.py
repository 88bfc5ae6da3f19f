"""suoi.stopping: a stop waits a bounded time for tasks that ignore their cancel and for a
blocking call (an fsync on a stalled disk), and says so in one WARNING."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest

from suoi.stopping import cancel_and_wait, in_thread_bounded


async def _ignores_cancel(stop: threading.Event) -> None:
    """A loop whose cancel was swallowed (as `wait_for` does on Python 3.11): it carries on."""
    while not stop.is_set():
        try:
            await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            continue


def test_cancel_and_wait_gives_up_on_a_task_that_ignores_its_cancel(caplog: pytest.LogCaptureFixture) -> None:
    stop = threading.Event()

    async def main() -> tuple[float, bool, bool]:
        stubborn = asyncio.create_task(_ignores_cancel(stop), name="stubborn")
        polite = asyncio.create_task(asyncio.sleep(60), name="polite")
        await asyncio.sleep(0)
        started = time.monotonic()
        await cancel_and_wait([stubborn, polite], 0.2, "node 9")
        took = time.monotonic() - started
        left = (stubborn.done(), polite.cancelled())
        stop.set()
        await stubborn
        return took, *left

    took, stubborn_done, polite_cancelled = asyncio.run(main())
    assert 0.2 <= took < 2.0
    assert (stubborn_done, polite_cancelled) == (False, True)
    assert "node 9: 1 task(s) did not stop within 0.2 s: stubborn" in caplog.text


def test_in_thread_bounded_leaves_a_stalled_call_behind(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="suoi.stopping")
    release = threading.Event()

    async def main() -> tuple[bool, bool, float]:
        started = time.monotonic()
        stalled = await in_thread_bounded(lambda: release.wait(30), 0.2, "flushing the logs at shutdown")
        took = time.monotonic() - started
        finished = await in_thread_bounded(lambda: None, 5.0, "a quick write")
        release.set()
        return stalled, finished, took

    stalled, finished, took = asyncio.run(main())
    assert (stalled, finished) == (False, True)
    assert took < 2.0
    assert caplog.text.count("did not finish") == 1
    assert "flushing the logs at shutdown did not finish within 0.2 s" in caplog.text
    with pytest.raises(OSError, match="disk gone"):
        asyncio.run(in_thread_bounded(lambda: (_ for _ in ()).throw(OSError("disk gone")), 5.0, "a write"))
