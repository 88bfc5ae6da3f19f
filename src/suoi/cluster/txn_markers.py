"""Transaction markers in a cluster: written by each partition's leader, replicated like data.

Kafka's TransactionMarkerChannelManager: when a transaction ends, its coordinator sends
WriteTxnMarkers to the leader of every partition the transaction wrote to, grouped by
leader; a leader appends the COMMIT/ABORT control batch with its leader epoch and answers
once the ISR has it (the append uses acks=all). Partitions whose leader moved are retried
with the new leader until every marker is written, or the partition no longer exists.

`append_marker` is the leader's half (also used by the WriteTxnMarkers handler);
`TxnMarkerSender.write` is the coordinator's half.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from suoi.coordinator.records import OFFSETS_TOPIC
from suoi.log.errors import LogError
from suoi.model import ErrorCode, TopicPartition
from suoi.protocol.codec import build

if TYPE_CHECKING:
    from suoi.broker import Broker
    from suoi.cluster.replica_manager import ReplicaManager
    from suoi.coordinator.txn.types import WriteMarkers

log = logging.getLogger("suoi.txn")

RETRY_BACKOFF_S = 0.1
#: How long a leader waits for its ISR to take a marker before answering REQUEST_TIMED_OUT.
MARKER_REPLICATION_TIMEOUT_S = 30.0


async def append_marker(broker: Broker, replicas: ReplicaManager, tp: TopicPartition, producer_id: int,
                        producer_epoch: int, commit: bool, coordinator_epoch: int) -> int:
    """Append one marker as the partition's leader and wait for the ISR; an error code."""
    leader = replicas.leader(tp.topic, tp.partition)
    if leader is None:
        known = broker.kraft is not None and broker.kraft.image.partition(tp.topic, tp.partition) is not None
        return int(ErrorCode.not_leader_or_follower if known else ErrorCode.unknown_topic_or_partition)
    try:
        info = leader.plog.append_control(producer_id, producer_epoch, commit, coordinator_epoch,
                                          leader_epoch=leader.state.leader_epoch)
    except LogError as exc:
        log.warning("marker for producer %d on %s refused: %s", producer_id, tp, exc)
        return int(exc.error_code)
    replicas.on_leader_append(leader)
    if tp.topic == OFFSETS_TOPIC:
        broker.groups.complete_transaction(tp.partition, producer_id, commit)
    broker.notifier.appended(tp)
    return await replicas.wait_replicated(tp.topic, tp.partition, info.last_offset + 1,
                                          MARKER_REPLICATION_TIMEOUT_S)


class TxnMarkerSender:
    def __init__(self, broker: Broker, replicas: ReplicaManager) -> None:
        self.broker = broker
        self.replicas = replicas

    async def write(self, m: WriteMarkers) -> None:
        """Write `m`'s marker to every partition (retrying as leaders move); returns when all
        are written or their partitions are gone."""
        kraft = self.broker.kraft
        assert kraft is not None
        pending = set(m.partitions)
        attempt = 0
        while pending:
            if attempt:
                await asyncio.sleep(min(RETRY_BACKOFF_S * attempt, 1.0))
            attempt += 1
            by_leader: dict[int, list[TopicPartition]] = defaultdict(list)
            for tp in list(pending):
                reg = kraft.image.partition(tp.topic, tp.partition)
                if reg is None:
                    log.warning("transaction %s: partition %s is gone; skipping its marker", m.transactional_id, tp)
                    pending.discard(tp)
                elif reg.leader >= 0:
                    by_leader[reg.leader].append(tp)
            results = await asyncio.gather(*(self._write_to(leader, m, tps) for leader, tps in by_leader.items()),
                                           return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    log.info("transaction %s: marker request failed (%s); retrying", m.transactional_id, result)
                    continue
                pending -= result

    async def _write_to(self, leader_id: int, m: WriteMarkers, tps: list[TopicPartition]) -> set[TopicPartition]:
        """The partitions whose marker `leader_id` wrote."""
        if leader_id == self.broker.node_id:
            codes = await asyncio.gather(*(append_marker(
                self.broker, self.replicas, tp, m.producer_id, m.producer_epoch, m.commit, m.coordinator_epoch)
                for tp in tps))
            return {tp for tp, code in zip(tps, codes, strict=True) if self._done(m, tp, code)}
        from kio.schema.write_txn_markers.v1.request import WriteTxnMarkersRequest

        topics: dict[str, list[int]] = defaultdict(list)
        for tp in tps:
            topics[tp.topic].append(tp.partition)
        request = build(WriteTxnMarkersRequest, {"markers": [{
            "producer_id": m.producer_id, "producer_epoch": m.producer_epoch, "transaction_result": m.commit,
            "coordinator_epoch": m.coordinator_epoch,
            "topics": [{"name": t, "partition_indexes": ps} for t, ps in topics.items()]}]})
        response: Any = await self.replicas.pool.request(leader_id, request,
                                                         timeout=MARKER_REPLICATION_TIMEOUT_S + 5)
        done = set()
        for marker in response.markers:
            for topic in marker.topics:
                for p in topic.partitions:
                    tp = TopicPartition(topic.name, p.partition_index)
                    if self._done(m, tp, int(p.error_code)):
                        done.add(tp)
        return done

    @staticmethod
    def _done(m: WriteMarkers, tp: TopicPartition, code: int) -> bool:
        if code == ErrorCode.none:
            return True
        if code in (ErrorCode.invalid_producer_epoch, ErrorCode.transaction_coordinator_fenced):
            # Kafka drops the marker: a newer epoch/coordinator already settled this producer here.
            log.warning("transaction %s: marker on %s refused (%s); dropped", m.transactional_id, tp,
                        ErrorCode(code).name)
            return True
        return False
