"""Wake long-polling fetches the moment data is appended.

A fetch that found fewer than min_bytes parks a future here for each partition it
reads; the produce path calls `appended(tp)` after every append, which resolves them.
This is what keeps end-to-end latency in milliseconds instead of fetch.max.wait.ms.

Consumers also wait for the high watermark (`high_watermark_moved`): with replication an
append is not readable until every ISR member has it. Followers' fetches (`replica=True`)
read up to the log end, so only appends wake them: a high watermark move would make them
re-read nothing and park again (they learn the new HW with their next fetch, as in Kafka).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from functools import partial

from suoi.model import TopicPartition


def _expire(fut: asyncio.Future[bool]) -> None:
    if not fut.done():
        fut.set_result(False)


def _unpark(table: dict[TopicPartition, set[asyncio.Future[bool]]], tps: list[TopicPartition],
            timer: asyncio.TimerHandle, fut: asyncio.Future[bool]) -> None:
    timer.cancel()
    for tp in tps:
        waiting = table.get(tp)
        if waiting is not None:
            waiting.discard(fut)
            if not waiting:
                del table[tp]


def _wake(waiting: set[asyncio.Future[bool]] | None) -> None:
    if waiting:
        for fut in waiting:
            if not fut.done():
                fut.set_result(True)


class AppendNotifier:
    def __init__(self) -> None:
        #: consumer fetches: woken by appends and by high watermark moves
        self._waiters: dict[TopicPartition, set[asyncio.Future[bool]]] = {}
        #: follower (replica) fetches: woken by appends only
        self._replica_waiters: dict[TopicPartition, set[asyncio.Future[bool]]] = {}

    def wait(self, partitions: Iterable[TopicPartition], timeout: float, *, replica: bool = False
             ) -> asyncio.Future[bool]:
        """A future that completes when any of `partitions` gets an append (or, unless
        `replica`, a high watermark move), True, or after `timeout` seconds, False.

        The future is parked at once, not when a task first awaits it: a fetch handler
        returns its long-poll as a coroutine that starts one loop iteration later, and a
        Produce read in that same iteration would otherwise wake nobody (the fetch then sat
        out its whole max wait with the data there). Whatever completes it (wake, timeout,
        the awaiting task's cancellation) unparks it.
        """
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bool] = loop.create_future()
        table = self._replica_waiters if replica else self._waiters
        tps = list(partitions)
        for tp in tps:
            waiting = table.get(tp)
            if waiting is None:
                table[tp] = {fut}
            else:
                waiting.add(fut)
        # A plain timer instead of asyncio.wait_for: no task or extra callbacks per wait.
        timer = loop.call_later(timeout, _expire, fut)
        fut.add_done_callback(partial(_unpark, table, tps, timer))
        return fut

    def appended(self, tp: TopicPartition) -> None:
        _wake(self._waiters.pop(tp, None))
        _wake(self._replica_waiters.pop(tp, None))

    def high_watermark_moved(self, tp: TopicPartition) -> None:
        """Records below the new HW became readable for consumers (not for followers,
        which read up to the log end)."""
        _wake(self._waiters.pop(tp, None))

    @property
    def parked(self) -> int:
        return sum(len(v) for v in self._waiters.values()) + sum(len(v) for v in self._replica_waiters.values())
