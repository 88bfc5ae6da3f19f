"""`broker_lifecycle.until_stalled`: how a controlled shutdown is bounded. It goes on while it
progresses (the controller answers, the node applies images), however long a loaded controller
takes to move its leaderships, and gives up once nothing happened for the stall bound (the
session timeout) or after the overall cap -- never waits forever for a controller that is gone."""

from __future__ import annotations

import asyncio

import pytest

from suoi.cluster.broker_lifecycle import until_stalled


def test_a_shutdown_that_keeps_progressing_runs_past_the_stall_bound() -> None:
    async def scenario() -> tuple[str, float]:
        loop = asyncio.get_running_loop()
        progressed = loop.time()

        async def work() -> str:
            nonlocal progressed
            for _ in range(8):  # 8 x 0.05 s: twice the stall bound in all, progressing all along
                await asyncio.sleep(0.05)
                progressed = loop.time()
            return "done"

        started = loop.time()
        result = await until_stalled(work(), lambda: progressed, stall_s=0.2, cap_s=10)
        return result, loop.time() - started

    result, took = asyncio.run(scenario())
    assert result == "done" and took >= 0.4


def test_a_shutdown_without_progress_gives_up_after_the_stall_bound_and_is_cancelled() -> None:
    async def scenario() -> tuple[float, bool]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        cancelled = asyncio.Event()

        async def silent_controller() -> None:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                cancelled.set()
                raise

        with pytest.raises(TimeoutError, match="no progress for 0.2 s"):
            await until_stalled(silent_controller(), lambda: started, stall_s=0.2, cap_s=10)
        return loop.time() - started, cancelled.is_set()

    took, cancelled = asyncio.run(scenario())
    assert 0.2 <= took < 5 and cancelled


def test_the_overall_cap_ends_even_a_progressing_shutdown() -> None:
    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(TimeoutError, match="still going after"):
            await until_stalled(asyncio.sleep(30), loop.time, stall_s=10, cap_s=0.3)  # "progress" every call
        return loop.time() - started

    assert 0.3 <= asyncio.run(scenario()) < 5
