"""ISR changes through the controller (KIP-497's AlterPartition), for the partitions this node leads.

The sans-IO `LeaderPartitionState` proposes a change (expansion after a follower fetch, shrink
from the periodic `maybe_shrink_isr`); this object sends it to the active controller and hands
the answer back (`on_alter_partition_response`), retrying retriable errors, one request in flight
per partition. A proposal that adds a fenced or unknown broker is not sent: the controller would
refuse it, so the state drops it as OPERATION_NOT_ATTEMPTED.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from suoi.client import Lane
from suoi.metrics_recorder import MetricsRecorder
from suoi.model import ErrorCode, TopicPartition
from suoi.partition.controller_channel import ControllerChannel, alter_partition_request
from suoi.partition.partition import Partition
from suoi.replication import AlterPartitionProposal

log = logging.getLogger("suoi.replication")

ALTER_PARTITION_RETRY_S = 0.5


class IsrChanges:
    def __init__(self, channel: ControllerChannel, leaders: Mapping[TopicPartition, Partition],
                 now_ms: Callable[[], int], lag_time_max_ms: int, metrics: MetricsRecorder | None = None) -> None:
        self.channel = channel
        #: counts ISR shrinks/expands as they are applied (`suoi.metrics_recorder`)
        self.metrics = metrics
        self.leaders = leaders
        self.now_ms = now_ms
        self.lag_time_max_ms = lag_time_max_ms
        self._tasks: dict[TopicPartition, asyncio.Task[None]] = {}

    def tasks(self) -> list[asyncio.Task[None]]:
        return list(self._tasks.values())

    async def expiration_loop(self) -> None:
        """Kafka's isr-expiration: every replica.lag.time.max.ms / 2, shrink lagging ISRs."""
        interval = max(self.lag_time_max_ms / 2000, 0.05)
        while True:
            await asyncio.sleep(interval)
            now = self.now_ms()
            for leader in list(self.leaders.values()):
                try:
                    proposal = leader.state.maybe_shrink_isr(now)
                except Exception:
                    log.exception("ISR check of %s failed", leader.tp)
                    continue
                if proposal is not None:
                    log.info("shrinking ISR of %s from %s to %s", leader.tp, sorted(leader.state.isr),
                             list(proposal.new_isr))
                    self.propose(leader, proposal)

    def propose(self, leader: Partition, proposal: AlterPartitionProposal) -> None:
        image = self.channel.image
        added = [b for b in proposal.new_isr if b not in leader.state.isr]
        ineligible = [b for b in added if (reg := image.brokers.get(b)) is None or not reg.eligible]
        if ineligible:
            # The controller would refuse; not attempted (the sans-IO state drops the proposal).
            leader.state.on_alter_partition_response(proposal, int(ErrorCode.operation_not_attempted))
            return
        if added:
            log.info("expanding ISR of %s from %s to %s", leader.tp, sorted(leader.state.isr), list(proposal.new_isr))
        self.cancel(leader.tp)
        self._tasks[leader.tp] = asyncio.get_running_loop().create_task(
            self._send(leader, proposal), name=f"alter-partition-{leader.tp}")

    def cancel(self, tp: TopicPartition) -> None:
        task = self._tasks.pop(tp, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _send(self, leader: Partition, proposal: AlterPartitionProposal) -> None:
        def request() -> Any:  # the broker epoch of now: it changes if this broker registers again
            return alter_partition_request(self.channel, leader.topic_id, leader.tp.partition,
                                           leader_epoch=proposal.leader_epoch,
                                           partition_epoch=proposal.partition_epoch, new_isr=proposal.new_isr)

        try:
            while self.leaders.get(leader.tp) is leader and leader.state.pending is proposal:
                try:
                    response = await self.channel.call_controller(request(), quick=True, lane=Lane.ALTER_PARTITION)
                except Exception as exc:
                    log.info("AlterPartition for %s not answered (%s); retrying", leader.tp, exc)
                    await asyncio.sleep(ALTER_PARTITION_RETRY_S)
                    continue
                if response.error_code != ErrorCode.none:
                    log.info("AlterPartition for %s: %s; retrying", leader.tp, ErrorCode(response.error_code).name)
                    await asyncio.sleep(ALTER_PARTITION_RETRY_S)
                    continue
                part = response.topics[0].partitions[0]
                error = int(part.error_code)
                if error:
                    log.info("AlterPartition for %s refused: %s", leader.tp, ErrorCode(error).name)
                if self.leaders.get(leader.tp) is not leader:
                    return
                isr_before = leader.state.isr
                hw = leader.state.on_alter_partition_response(
                    proposal, error, isr=part.isr, leader_epoch=part.leader_epoch,
                    partition_epoch=part.partition_epoch, now_ms=self.now_ms())
                if self.metrics is not None:
                    self.metrics.isr_changed(isr_before, leader.state.isr)
                leader.leader_changed(hw)
                # A stale broker epoch (sent just before this broker registered again) is retried with
                # the new one, as Kafka's AlterPartitionManager does; left pending, the partition's ISR
                # could change no more until the controller happened to rewrite its registration.
                if error in (ErrorCode.request_timed_out, ErrorCode.not_controller, ErrorCode.stale_broker_epoch):
                    await asyncio.sleep(ALTER_PARTITION_RETRY_S)
                    continue
                return
        finally:
            if self._tasks.get(leader.tp) is asyncio.current_task():
                del self._tasks[leader.tp]
