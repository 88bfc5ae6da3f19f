"""Transaction markers in a cluster: written by each partition's leader, replicated like data.

Kafka's TransactionMarkerChannelManager: when a transaction ends, its coordinator sends
WriteTxnMarkers to the leader of every partition the transaction wrote to, grouped by
leader; a leader appends the COMMIT/ABORT control batch with its leader epoch and answers
once the ISR has it (the append uses acks=all). Markers are retried, with exponential
backoff, to the leader the metadata image names *at each attempt* (so a leader that moved or
came back is found) until every one is written or its partition no longer exists; the sender
never gives up on its own, its coordinator cancels it when it resigns (the next coordinator
loads the PrepareCommit/PrepareAbort record and sends the markers again). While markers are
pending, why is logged (which partitions, which leader, which error), at most every
`WAIT_LOG_INTERVAL_S` per transaction.

The requests go on their own connection to each leader (`Lane.TXN_MARKERS`): a
WriteTxnMarkers is answered only once the leader's followers have fetched the marker, and
answers on one connection come in request order, so sharing the replica fetcher's connection
would park the very fetch that lets the leader answer (until a 30 s timeout).

`append_marker` is the leader's half (also used by the WriteTxnMarkers handler);
`TxnMarkerSender.write` is the coordinator's half.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from suoi.client import Lane
from suoi.coordinator.records import OFFSETS_TOPIC
from suoi.log.errors import LogError
from suoi.model import ErrorCode, TopicPartition
from suoi.protocol.codec import build

if TYPE_CHECKING:
    from suoi.coordinator.txn.types import WriteMarkers
    from suoi.partition.controller_channel import HostingNode
    from suoi.partition.replica_host import ReplicaHost

log = logging.getLogger("suoi.txn")

#: retry.backoff.ms and retry.backoff.max.ms of the marker channel.
RETRY_BACKOFF_S = 0.1
RETRY_BACKOFF_MAX_S = 1.0
#: How often (at most) a transaction still waiting for markers says why.
WAIT_LOG_INTERVAL_S = 10.0
#: How long a leader waits for its ISR to take a marker before answering REQUEST_TIMED_OUT.
MARKER_REPLICATION_TIMEOUT_S = 30.0


async def append_marker(broker: HostingNode, replicas: ReplicaHost, tp: TopicPartition, producer_id: int,
                        producer_epoch: int, commit: bool, coordinator_epoch: int) -> int:
    """Append one marker as the partition's leader and wait for the ISR; an error code."""
    leader = replicas.leader(tp.topic, tp.partition)
    if leader is None:
        known = replicas.kraft.image.partition(tp.topic, tp.partition) is not None
        return int(ErrorCode.not_leader_or_follower if known else ErrorCode.unknown_topic_or_partition)
    try:
        info = leader.plog.append_control(producer_id, producer_epoch, commit, coordinator_epoch,
                                          leader_epoch=leader.state.leader_epoch)
    except LogError as exc:
        log.warning("marker for producer %d on %s refused: %s", producer_id, tp, exc)
        return int(exc.error_code)
    if tp.topic == OFFSETS_TOPIC:
        broker.groups.complete_transaction(tp.partition, producer_id, commit)
    leader.on_append()
    return await leader.wait_replicated(info.last_offset + 1, MARKER_REPLICATION_TIMEOUT_S)


class TxnMarkerSender:
    def __init__(self, broker: HostingNode, replicas: ReplicaHost) -> None:
        self.broker = broker
        self.replicas = replicas

    async def write(self, m: WriteMarkers) -> None:
        """Write `m`'s marker to every partition (retrying as leaders move); returns when all
        are written or their partitions are gone. Cancel it to stop (a resigned coordinator)."""
        kraft = self.replicas.kraft
        loop = asyncio.get_running_loop()
        #: partition -> why its marker is not written yet
        pending: dict[TopicPartition, str] = dict.fromkeys(m.partitions, "not sent yet")
        started = last_log = loop.time()
        attempt = 0
        while pending:
            if attempt:
                await asyncio.sleep(min(RETRY_BACKOFF_S * 2 ** (attempt - 1), RETRY_BACKOFF_MAX_S))
            attempt += 1
            by_leader: dict[int, list[TopicPartition]] = defaultdict(list)
            for tp in list(pending):
                reg = kraft.image.partition(tp.topic, tp.partition)
                if reg is None:
                    log.warning("transaction %s: partition %s is gone; skipping its marker", m.transactional_id, tp)
                    del pending[tp]
                elif reg.leader < 0:
                    pending[tp] = "no leader"
                else:
                    by_leader[reg.leader].append(tp)
            leaders = list(by_leader)
            results = await asyncio.gather(*(self._write_to(leader, m, by_leader[leader]) for leader in leaders),
                                           return_exceptions=True)
            for leader, result in zip(leaders, results, strict=True):
                if isinstance(result, asyncio.CancelledError):
                    raise result
                if isinstance(result, BaseException):
                    for tp in by_leader[leader]:
                        pending[tp] = f"leader {leader}: {result or type(result).__name__}"
                    continue
                for tp, code in result.items():
                    if self._done(m, tp, code):
                        del pending[tp]
                    else:
                        pending[tp] = f"leader {leader}: {_error_name(code)}"
            now = loop.time()
            if pending and (attempt == 1 or now - last_log >= WAIT_LOG_INTERVAL_S):
                last_log = now
                (log.info if attempt == 1 else log.warning)(
                    "transaction %s (producer %d) waiting %.1f s for its %s markers on %s; retrying",
                    m.transactional_id, m.producer_id, now - started, "COMMIT" if m.commit else "ABORT",
                    ", ".join(f"{tp.topic}-{tp.partition} ({why})" for tp, why in sorted(pending.items())))
        if attempt > 1:
            log.info("transaction %s: markers written after %d attempts in %.1f s", m.transactional_id, attempt,
                     loop.time() - started)

    async def _write_to(self, leader_id: int, m: WriteMarkers, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        """The error code of each partition's marker at `leader_id`."""
        if leader_id == self.broker.node_id:
            local = await asyncio.gather(*(append_marker(
                self.broker, self.replicas, tp, m.producer_id, m.producer_epoch, m.commit, m.coordinator_epoch)
                for tp in tps))
            return dict(zip(tps, local, strict=True))
        from kio.schema.write_txn_markers.v1.request import WriteTxnMarkersRequest

        topics: dict[str, list[int]] = defaultdict(list)
        for tp in tps:
            topics[tp.topic].append(tp.partition)
        request = build(WriteTxnMarkersRequest, {"markers": [{
            "producer_id": m.producer_id, "producer_epoch": m.producer_epoch, "transaction_result": m.commit,
            "coordinator_epoch": m.coordinator_epoch,
            "topics": [{"name": t, "partition_indexes": ps} for t, ps in topics.items()]}]})
        response: Any = await self.replicas.pool.request(leader_id, request, lane=Lane.TXN_MARKERS,
                                                         timeout=MARKER_REPLICATION_TIMEOUT_S + 5)
        codes = dict.fromkeys(tps, int(ErrorCode.unknown_server_error))  # a partition left out of the answer
        for marker in response.markers:
            for topic in marker.topics:
                for p in topic.partitions:
                    tp = TopicPartition(topic.name, p.partition_index)
                    if tp in codes:
                        codes[tp] = int(p.error_code)
        return codes

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


def _error_name(code: int) -> str:
    try:
        return ErrorCode(code).name.upper()
    except ValueError:
        return f"error {code}"
