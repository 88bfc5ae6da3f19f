"""`suoi.pending.Pending`: the callback chain a parked Fetch and an acks=all Produce answer through."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from suoi.pending import Pending


class _Held(Pending[int]):
    __slots__ = ("released",)

    def __init__(self) -> None:
        super().__init__()
        self.released = 0

    def _cancelled(self) -> None:
        self.released += 1


def test_steps_run_in_order_when_resolved_and_the_sink_gets_the_last_value() -> None:
    got: list[tuple[Any, Any]] = []
    p = Pending[int]()
    p.then(lambda v: v + 1).then(lambda v: f"answer {v}")
    p.sink(lambda value, exc: got.append((value, exc)))
    assert got == []
    p.resolve(41)
    p.resolve(7)  # once only
    assert got == [("answer 42", None)]


def test_a_value_resolved_before_the_later_steps_and_the_sink_still_goes_through_them() -> None:
    """A producer may resolve before the layers above it added their steps (e.g. in its constructor)."""
    got: list[tuple[Any, Any]] = []
    p = Pending[int]()
    p.resolve(1)
    p.then(lambda v: v * 10)
    p.sink(lambda value, exc: got.append((value, exc)))
    assert got == [(10, None)]


def test_an_exception_skips_steps_until_one_that_handles_it() -> None:
    got: list[tuple[Any, Any]] = []
    p = Pending[int]()

    def boom(_: int) -> int:
        raise ValueError("bad read")

    p.then(boom).then(lambda v: ("not run", v)).then(lambda v: ("encoded", v), lambda exc: ("failed", str(exc)))
    p.sink(lambda value, exc: got.append((value, exc)))
    p.resolve(1)
    assert got == [(("failed", "bad read"), None)]
    unhandled: list[Any] = []
    q = Pending[int]()
    q.then(boom).sink(lambda value, exc: unhandled.append((value, type(exc))))
    q.resolve(1)
    assert unhandled == [(None, ValueError)]


def test_cancel_releases_once_and_delivers_nothing() -> None:
    got: list[Any] = []
    p = _Held()
    p.sink(lambda value, exc: got.append(value))
    p.cancel()
    p.cancel()
    p.resolve(3)
    assert (p.released, got, p.done) == (1, [], True)


def test_awaiting_it_gives_the_value_and_cancelling_the_awaiter_cancels_it() -> None:
    async def run() -> tuple[int, int]:
        p = _Held()
        asyncio.get_running_loop().call_soon(p.resolve, 5)
        value = await p
        q = _Held()
        task = asyncio.ensure_future(_wait(q))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return value, q.released

    async def _wait(q: _Held) -> int:
        return await q

    assert asyncio.run(asyncio.wait_for(run(), 5)) == (5, 1)
