"""acks=all over many partitions: Kafka's DelayedProduce, as one `Pending` per Produce.

Each `AppendResult` of an acks=-1 append carries a `replicated` future (see `Partition`).
`await_replication` answers once every one completed, or after the request's timeout with
REQUEST_TIMED_OUT for those still waiting (the client retries; an idempotent retry is
deduplicated by the log and waits for the original batch). A done callback per future counts
them down, with one timer for the timeout: no task (`ReplicatedAppends`, `suoi.pending`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from suoi.model import ErrorCode
from suoi.partition.partition import AppendResult
from suoi.pending import Pending


def pending(results: Iterable[AppendResult]) -> list[AppendResult]:
    """The acks=all appends still waiting for their ISR (completed ones are settled here)."""
    waiting = []
    for result in results:
        if result.replicated is not None:
            if result.replicated.done():
                _settle(result)
            else:
                waiting.append(result)
    return waiting


def await_replication(waits: list[AppendResult], timeout_s: float) -> ReplicatedAppends:
    """Wait until every one of `waits` is on its ISR, or `timeout_s`; then settle their errors
    (awaitable, or `then` a step: the Produce answer)."""
    return ReplicatedAppends(waits, timeout_s)


class ReplicatedAppends(Pending[None]):
    """One Produce's acks=all wait (Kafka's DelayedProduce) as callbacks: each `replicated`
    future's done callback counts down, one timer answers the rest with REQUEST_TIMED_OUT.
    No task and no coroutine per request (a task's step and then the connection's callback
    were two loop hops after the last follower fetch; this is one). `cancel` (the connection
    closed) withdraws the waits from their partitions."""

    __slots__ = ("_left", "_timer", "_waits")

    def __init__(self, waits: list[AppendResult], timeout_s: float) -> None:
        super().__init__()
        self._waits = waits
        self._timer: asyncio.TimerHandle | None = None
        if timeout_s <= 0:
            self._time_out()
            return
        self._timer = asyncio.get_running_loop().call_later(timeout_s, self._time_out)
        left = 0
        for result in waits:
            future = result.replicated
            if future is not None and not future.done():
                left += 1
                future.add_done_callback(self._one_done)
        self._left = left
        if not left:
            self._answer()

    def _one_done(self, _future: asyncio.Future[int]) -> None:
        self._left -= 1
        if self._left <= 0 and not self.done:
            self._answer()

    def _time_out(self) -> None:
        self._timer = None
        if not self.done:
            _expire(self._waits)
            self._answer()

    def _answer(self) -> None:
        self._withdraw()
        for result in self._waits:
            _settle(result)
        self.resolve(None)

    def _withdraw(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        for result in self._waits:  # timed out or the connection went away
            future = result.replicated
            if future is not None and (not future.done() or future.cancelled()):
                if result.partition is not None:
                    result.partition.cancel_wait(future)
                future.cancel()

    def _cancelled(self) -> None:
        self._withdraw()


def _expire(waits: list[AppendResult]) -> None:
    for result in waits:
        future = result.replicated
        if future is not None and not future.done():
            if result.partition is not None:
                result.partition.cancel_wait(future)
            future.set_result(int(ErrorCode.request_timed_out))


def _settle(result: AppendResult) -> None:
    future = result.replicated
    if future is None:
        return
    error = future.result() if future.done() and not future.cancelled() else int(ErrorCode.request_timed_out)
    result.replicated = None
    if error:
        result.error = ErrorCode(error)
        result.base_offset = result.log_append_time_ms = result.log_start_offset = -1
