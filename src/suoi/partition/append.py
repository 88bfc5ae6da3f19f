"""acks=all over many partitions: Kafka's DelayedProduce, as one await per Produce.

Each `AppendResult` of an acks=-1 append carries a `replicated` future (see `Partition`).
`await_replication` answers once every one completed, or after the request's timeout with
REQUEST_TIMED_OUT for those still waiting (the client retries; an idempotent retry is
deduplicated by the log and waits for the original batch). The futures are awaited directly,
with one timer for the timeout (not asyncio.wait, which chains a callback per future and
resumes this task one loop iteration later).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from suoi.model import ErrorCode
from suoi.partition.partition import AppendResult


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


async def await_replication(waits: list[AppendResult], timeout_s: float) -> None:
    """Wait until every one of `waits` is on its ISR, or `timeout_s`; then settle their errors."""
    timer = asyncio.get_running_loop().call_later(timeout_s, _expire, waits) if timeout_s > 0 else None
    try:
        if timer is not None:
            for result in waits:
                if result.replicated is not None and not result.replicated.done():
                    await result.replicated
    finally:
        if timer is not None:
            timer.cancel()
        for result in waits:  # timed out (timeout_s <= 0) or the connection went away
            future = result.replicated
            if future is not None and (not future.done() or future.cancelled()):
                if result.partition is not None:
                    result.partition.cancel_wait(future)
                future.cancel()
    for result in waits:
        _settle(result)


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
