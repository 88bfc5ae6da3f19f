"""DeleteRecords on a partition leader (Kafka's `deleteRecordsOnLeader` + `DelayedDeleteRecords`).

Only the leader moves a partition's log start offset on request; followers move theirs when
a Fetch response names the leader's (`replica_fetcher`), and report it in their next Fetch.
The request is answered once the partition's *low watermark* -- the smallest log start offset
among the leader and its followers on alive brokers -- has reached the requested offset (so
no replica still serves the deleted records), or when its timeout runs out
(REQUEST_TIMED_OUT, as Kafka answers), or with NOT_LEADER_OR_FOLLOWER if leadership moves first.

Lifecycle: one `DeleteRecordsPurgatory` per `ReplicaManager`; `check(leader)` after each
follower fetch, `fail(tp)` when this node stops leading `tp`. Everything on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

from suoi.log.errors import LogError
from suoi.model import ErrorCode, TopicPartition

if TYPE_CHECKING:
    from suoi.partition.partition import Partition

__all__ = ["DeleteRecordsPurgatory"]

log = logging.getLogger("suoi.partition")


class DeleteRecordsPurgatory:
    def __init__(self, alive_brokers: Callable[[], Collection[int]], wake_followers: Callable[[TopicPartition], None]) -> None:
        self._alive = alive_brokers
        self._wake_followers = wake_followers
        self._waiting: dict[TopicPartition, list[tuple[int, asyncio.Future[ErrorCode]]]] = {}

    def low_watermark(self, leader: Partition) -> int:
        return leader.state.low_watermark(leader.plog.log_start_offset, self._alive())

    async def delete(self, leader: Partition, offset: int, timeout_s: float) -> tuple[ErrorCode, int]:
        """Move the leader's log start to `offset` (-1: the high watermark), then wait for the
        low watermark. Returns (error, low watermark). A topic whose cleanup.policy lacks
        ``delete`` (compact only) refuses it: POLICY_VIOLATION, as Kafka's deleteRecordsOnLeader."""
        if not leader.plog.config.deletes:
            log.warning("DeleteRecords on %s-%d refused: cleanup.policy=%s has no 'delete'",
                        leader.tp.topic, leader.tp.partition, ",".join(leader.plog.config.cleanup_policy))
            return ErrorCode.policy_violation, -1
        target = leader.plog.high_watermark if offset == -1 else offset
        try:
            leader.plog.delete_records_before(target)
        except LogError as exc:
            return ErrorCode(exc.error_code), -1
        self._wake_followers(leader.tp)  # their parked fetches answer now, naming the new log start
        if self.low_watermark(leader) >= target:
            return ErrorCode.none, self.low_watermark(leader)
        fut: asyncio.Future[ErrorCode] = asyncio.get_running_loop().create_future()
        waiter = (target, fut)
        self._waiting.setdefault(leader.tp, []).append(waiter)
        try:
            error = await asyncio.wait_for(asyncio.shield(fut), max(timeout_s, 0.0))
        except TimeoutError:
            error = ErrorCode.request_timed_out
        finally:
            waiters = self._waiting.get(leader.tp, [])
            with contextlib.suppress(ValueError):
                waiters.remove(waiter)
            if not waiters:
                self._waiting.pop(leader.tp, None)
        return error, self.low_watermark(leader) if error != ErrorCode.not_leader_or_follower else -1

    def check(self, leader: Partition) -> None:
        """A follower reported its log start: complete the deletions it satisfies."""
        waiters = self._waiting.get(leader.tp)
        if not waiters:
            return
        low = self.low_watermark(leader)
        for target, fut in waiters:
            if target <= low and not fut.done():
                fut.set_result(ErrorCode.none)

    def fail(self, tp: TopicPartition) -> None:
        """This node no longer leads `tp`."""
        for _, fut in self._waiting.get(tp, []):
            if not fut.done():
                fut.set_result(ErrorCode.not_leader_or_follower)
