"""Wake long-polling fetches the moment data is appended.

A fetch that found fewer than min_bytes parks itself here (`park`) on each partition it
reads; the produce path calls `appended(tp)` after every append, which wakes every fetch
parked on `tp` (`Waiter.wake`: the fetch unparks from its other partitions and schedules its
re-read). This is what keeps end-to-end latency in milliseconds instead of fetch.max.wait.ms.

Consumers also wait for the high watermark (`high_watermark_moved`): with replication an
append is not readable until every ISR member has it. Followers' fetches (`replica=True`)
read up to the log end, so only appends wake them: a high watermark move would make them
re-read nothing and park again (they learn the new HW with their next fetch, as in Kafka).

Waiters are parked at once, when the Fetch is handled, not when some task first runs: a
Produce read in the same loop iteration must wake it (otherwise the fetch sat out its whole
max wait with the data there).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from suoi.model import TopicPartition


class Waiter(Protocol):
    def wake(self) -> None:
        """Data may be readable on a partition it is parked on (it was just removed from that
        partition's table; it unparks from the others itself)."""


class AppendNotifier:
    def __init__(self) -> None:
        #: consumer fetches: woken by appends and by high watermark moves
        self._waiters: dict[TopicPartition, set[Waiter]] = {}
        #: follower (replica) fetches: woken by appends only
        self._replica_waiters: dict[TopicPartition, set[Waiter]] = {}
        #: the parked fetches' max-wait timer (`partition.fetch_deadlines.FetchDeadlines`, made by the
        #: first one parked: it belongs to the node's loop); kept here, one per node, for the fetch layer
        self.fetch_deadlines: Any = None

    def park(self, waiter: Waiter, partitions: Iterable[TopicPartition], *, replica: bool = False) -> None:
        """Wake `waiter` on the next append to any of `partitions` (or, unless `replica`, a
        high watermark move there)."""
        table = self._replica_waiters if replica else self._waiters
        for tp in partitions:
            waiting = table.get(tp)
            if waiting is None:
                table[tp] = {waiter}
            else:
                waiting.add(waiter)

    def unpark(self, waiter: Waiter, partitions: Iterable[TopicPartition], *, replica: bool = False) -> None:
        table = self._replica_waiters if replica else self._waiters
        for tp in partitions:
            waiting = table.get(tp)
            if waiting is not None:
                waiting.discard(waiter)
                if not waiting:
                    del table[tp]

    def appended(self, tp: TopicPartition) -> None:
        # Every append calls this, mostly with nobody parked: the loops are inline (no call per table).
        waiting = self._waiters.pop(tp, None)
        if waiting:
            for waiter in waiting:
                waiter.wake()
        if self._replica_waiters:
            waiting = self._replica_waiters.pop(tp, None)
            if waiting:
                for waiter in waiting:
                    waiter.wake()

    def high_watermark_moved(self, tp: TopicPartition) -> None:
        """Records below the new HW became readable for consumers (not for followers,
        which read up to the log end)."""
        waiting = self._waiters.pop(tp, None)
        if waiting:
            for waiter in waiting:
                waiter.wake()

    @property
    def parked(self) -> int:
        return sum(len(v) for v in self._waiters.values()) + sum(len(v) for v in self._replica_waiters.values())
