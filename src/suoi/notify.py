"""Wake long-polling fetches the moment data is appended.

A fetch that found fewer than min_bytes parks a future here for each partition it
reads; the produce path calls `appended(tp)` after every append, which resolves them.
This is what keeps end-to-end latency in milliseconds instead of fetch.max.wait.ms.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from suoi.model import TopicPartition


class AppendNotifier:
    def __init__(self) -> None:
        self._waiters: dict[TopicPartition, set[asyncio.Future[None]]] = {}

    async def wait(self, partitions: Iterable[TopicPartition], timeout: float) -> bool:
        """Wait until any of `partitions` gets an append or `timeout` seconds pass.

        Returns True when woken by an append.
        """
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        tps = list(partitions)
        for tp in tps:
            self._waiters.setdefault(tp, set()).add(fut)
        try:
            await asyncio.wait_for(fut, timeout)
            return True
        except TimeoutError:
            return False
        finally:
            for tp in tps:
                waiting = self._waiters.get(tp)
                if waiting is not None:
                    waiting.discard(fut)
                    if not waiting:
                        del self._waiters[tp]

    def appended(self, tp: TopicPartition) -> None:
        waiting = self._waiters.pop(tp, None)
        if waiting:
            for fut in waiting:
                if not fut.done():
                    fut.set_result(None)

    @property
    def parked(self) -> int:
        return sum(len(v) for v in self._waiters.values())
