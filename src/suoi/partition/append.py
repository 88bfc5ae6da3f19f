"""acks=all over many partitions: Kafka's DelayedProduce, as one `Pending` per Produce.

An acks=-1 append the ISR does not have yet names its partition and the offset to wait for
(`AppendResult.partition`, `required_offset`). `DelayedProduce.add` registers a callback
with that partition (`Partition.await_isr`); the partition calls it when its HW passes the
offset (inside the follower fetch that moved it), or when it stops leading. Once every
partition answered, the Produce is answered in that same call (`Pending.resolve`: the
handler's step, dispatch's encode, the connection's write), or after the request's timeout
with REQUEST_TIMED_OUT for those still waiting (the client retries; an idempotent retry is
deduplicated by the log and waits for the original batch). No future, no Task: the previous
shape (a coroutine awaiting one future per partition) cost a Task and two loop hops per
acks=all Produce.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import TYPE_CHECKING, Any

from suoi.model import ErrorCode
from suoi.pending import Pending

if TYPE_CHECKING:
    from suoi.partition.partition import Partition

#: what a `DelayedProduce` resolves with: (slot, error code) of each wait that did not succeed
Failures = list[tuple[Any, int]]


class DelayedProduce(Pending[Failures]):
    """The acks=-1 waits of one Produce (module doc). `slot` is the caller's, handed back
    with the error of each partition whose wait failed (NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT)."""

    __slots__ = ("_failed", "_keys", "_started", "_timer", "_waiting")

    def __init__(self) -> None:
        super().__init__()
        self._waiting: dict[int, tuple[Partition, int, Any]] = {}  # key -> (partition, token, slot)
        self._failed: Failures = []
        self._keys = 0
        self._timer: asyncio.TimerHandle | None = None
        self._started = False

    def add(self, partition: Partition, required_offset: int, slot: Any) -> None:
        """Wait for `partition`'s ISR to have every offset below `required_offset`."""
        self._keys += 1
        key = self._keys
        self._waiting[key] = (partition, partition.await_isr(required_offset, partial(self._replicated, key)), slot)

    def start(self, timeout_s: float) -> DelayedProduce:
        """Every wait is added: arm the request's timeout (<= 0: answer now with what is in)."""
        self._started = True
        if timeout_s > 0 and self._waiting:
            self._timer = asyncio.get_running_loop().call_later(timeout_s, self._expire)
        else:
            self._expire()
        return self

    def _replicated(self, key: int, error: int) -> None:
        entry = self._waiting.pop(key, None)
        if entry is None:
            return
        if error:
            self._failed.append((entry[2], error))
        if not self._waiting and self._started:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self.resolve(self._failed)

    def _expire(self) -> None:
        self._timer = None
        self._withdraw(ErrorCode.request_timed_out)
        self.resolve(self._failed)

    def _withdraw(self, error: int | None) -> None:
        for partition, token, slot in self._waiting.values():
            partition.cancel_wait(token)
            if error is not None:
                self._failed.append((slot, error))
        self._waiting.clear()

    def _cancelled(self) -> None:
        """The connection went away: the partitions forget the waits, the timer is dropped."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._withdraw(None)
