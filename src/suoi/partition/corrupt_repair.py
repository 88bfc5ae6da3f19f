"""Repairing a replica's corrupt batch from the other replicas (suoi; Kafka has no equivalent).

The log layer finds bad batches (reads, recovery, the scrubber) and tells this object through
`PartitionLog.on_corrupt` with the batch's position and the offset it should start at. What
happens then depends on this replica's role:

* **follower**: truncate the log to that offset (below the high watermark: the leader still
  has the records) and refetch from the leader - the normal fetch path brings them back;
* **leader with another eligible in-sync replica**: it must not truncate acknowledged records
  while it leads, so it steps down first: an AlterPartition whose new ISR leaves out the
  leader itself (the controller accepts that from a leader when an eligible in-sync member
  remains, and elects it; Kafka's controller refuses such a request). The old leader learns of
  its successor from the metadata and, becoming a follower, truncates to the bad batch before
  it fetches again (`before_following`);
* **sole in-sync replica**: nothing to repair from - readers keep getting CORRUPT_MESSAGE for
  that batch (never the batch, never the records after it silently); logged once.

Everything runs on the event loop; the hook only schedules work (`call_soon`), because it is
called from inside a read.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from suoi.client import Lane
from suoi.log.batch_check import CorruptBatch
from suoi.log.errors import LogError
from suoi.model import ErrorCode, TopicPartition

if TYPE_CHECKING:
    from suoi.log.partition_log import PartitionLog
    from suoi.partition.partition import Partition
    from suoi.partition.replica_host import ReplicaHost

log = logging.getLogger("suoi.replication")

STEP_DOWN_RETRY_S = 0.5
STEP_DOWN_ATTEMPTS = 20


class CorruptionRepair:
    def __init__(self, manager: ReplicaHost) -> None:
        self.manager = manager
        #: partition -> offset to truncate to (the lowest bad batch's) once it can be repaired
        self.pending: dict[TopicPartition, int] = {}
        self._stepping_down: dict[TopicPartition, asyncio.Task[None]] = {}
        self._unrepairable: set[tuple[TopicPartition, int]] = set()

    def watch(self, plog: PartitionLog) -> None:
        """Hear of the bad batches of ``plog``, including those recovery already found."""
        plog.on_corrupt = self.on_corrupt
        bad = plog.first_corrupt()
        if bad is not None:
            self.on_corrupt(plog, bad)

    def on_corrupt(self, plog: PartitionLog, bad: CorruptBatch) -> None:
        tp = TopicPartition(plog.topic, plog.partition)
        offset = bad.expected_offset
        known = self.pending.get(tp)
        if known is not None and known <= offset:
            return
        self.pending[tp] = offset
        asyncio.get_running_loop().call_soon(self._repair, tp)

    def _repair(self, tp: TopicPartition) -> None:
        offset = self.pending.get(tp)
        if offset is None:
            return
        m = self.manager
        leader = m.leaders.get(tp)
        follower = m.followers.get(tp)
        if leader is None and follower is not None:
            self.pending.pop(tp, None)
            self._truncate(follower.plog, tp, offset)
            follower.follower.on_truncated(follower.plog.log_end_offset)
            fetcher = m.fetchers.get(follower.fetcher_id) if follower.fetcher_id is not None else None
            if fetcher is not None:
                fetcher.add(follower)  # wake it: fetch the dropped batches again now
            return
        if leader is None:
            self.pending.pop(tp, None)
            return
        image = m.kraft.image
        successors = [b for b in leader.state.isr if b != m.node_id
                      and (reg := image.brokers.get(b)) is not None and reg.eligible]
        if not successors:
            self.pending.pop(tp, None)
            if (tp, offset) not in self._unrepairable:
                self._unrepairable.add((tp, offset))
                log.error("%s: corrupt batch at offset %d and no other in-sync replica to repair it from; "
                          "readers get CORRUPT_MESSAGE there", tp, offset)
            return
        if tp not in self._stepping_down:
            log.warning("%s: corrupt batch at offset %d in this leader's log; handing leadership to in-sync "
                        "replica(s) %s, then refetching from there", tp, offset, successors)
            self._stepping_down[tp] = asyncio.get_running_loop().create_task(
                self._step_down(leader), name=f"step-down-{tp}")

    def before_following(self, tp: TopicPartition, plog: PartitionLog) -> None:
        """This node becomes (or stays) a follower of ``tp``: drop the bad batch and what follows
        it first, so the fetcher refetches them from the new leader."""
        task = self._stepping_down.pop(tp, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        offset = self.pending.pop(tp, None)
        if offset is not None:
            self._truncate(plog, tp, offset)

    def _truncate(self, plog: PartitionLog, tp: TopicPartition, offset: int) -> None:
        before = plog.log_end_offset
        if offset >= before:
            return
        try:
            if offset <= plog.log_start_offset:
                plog.truncate_fully_and_start_at(plog.log_start_offset)
            else:
                plog.truncate_to(offset, force=True)
        except LogError as exc:
            log.error("%s: cannot drop the corrupt batch at offset %d: %s", tp, offset, exc)
            return
        self.manager.logs.corruption.repaired += 1
        log.warning("%s: dropped the log from the corrupt batch at offset %d (log end %d -> %d); refetching it "
                    "from the leader", tp, offset, before, plog.log_end_offset)

    async def _step_down(self, leader: Partition) -> None:
        """AlterPartition with an ISR without this leader, until the controller has elected
        another leader (the metadata then makes this node a follower) or it stops leading."""
        from suoi.partition.controller_channel import alter_partition_request

        m = self.manager
        tp = leader.tp
        try:
            for _ in range(STEP_DOWN_ATTEMPTS):
                if m.leaders.get(tp) is not leader:
                    return
                state = leader.state
                new_isr = sorted(b for b in state.isr if b != m.node_id)
                if not new_isr:
                    return
                request = alter_partition_request(m.kraft, leader.topic_id, tp.partition,
                                                  leader_epoch=state.leader_epoch,
                                                  partition_epoch=state.partition_epoch, new_isr=new_isr)
                try:
                    response = await m.kraft.call_controller(request, quick=True, lane=Lane.ALTER_PARTITION)
                    error = int(response.error_code) or int(response.topics[0].partitions[0].error_code)
                except Exception as exc:
                    error = -1
                    log.info("%s: stepping down not answered (%s); retrying", tp, exc)
                if error in (ErrorCode.none, ErrorCode.new_leader_elected):
                    return  # the new registration comes with the metadata
                if error > 0:
                    log.info("%s: stepping down refused (%s); retrying", tp, ErrorCode(error).name)
                await asyncio.sleep(STEP_DOWN_RETRY_S)
            log.error("%s: could not hand leadership over; readers get CORRUPT_MESSAGE at the bad batch", tp)
            self.pending.pop(tp, None)  # a later read or scrub may try again
        finally:
            if self._stepping_down.get(tp) is asyncio.current_task():
                del self._stepping_down[tp]
