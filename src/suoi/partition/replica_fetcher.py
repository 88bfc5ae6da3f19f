"""Follower side of replication: one fetcher task per source (leader) broker.

Kafka's ReplicaFetcherThread, as an asyncio task. For every partition it follows from that
leader it first validates its log (KIP-101/279): OffsetsForLeaderEpoch with its latest
leader epoch; the leader answers the end offset of that epoch in *its* log, and the follower
truncates to where the two logs agree. Then it fetches from its log end offset with a Fetch
(v13: topics named by id) carrying its replica id (so the leader reads past the high watermark and records the
follower's position), appends the batches as received (offsets, epochs and timestamps kept)
and takes the leader's high watermark. A leader that still finds a divergence answers with a
diverging epoch (Fetch v12+) and the follower truncates again.

The fetches run in a KIP-227 session with the leader (`suoi.replication.fetch_session_handler`,
as Kafka's follower): only partitions whose fetch position changed are named, the leader
answers only partitions with something new, and a caught-up follower's request is the previous
one with the next session epoch. The fetched batches are appended as received: views of the answer's buffer
(`codec.decode_response_views`), checked (CRC32C, framing, offsets) and written, never copied.

Its requests go on their own connection to the leader (`Lane.REPLICA_FETCH`): nothing that
waits for replication (WriteTxnMarkers, forwarded requests) may queue ahead of the fetch that
would advance the high watermark, since answers on a connection come in request order.

Errors: a fenced epoch (the leader knows a newer epoch than ours) parks the partition until
the metadata image brings the new registration; a leader that does not lead (yet) or a
broken connection backs off `replica.fetch.backoff.ms`; a follower below the leader's log
start restarts its log empty at the leader's log start offset.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import importlib
import logging
import uuid
from typing import TYPE_CHECKING, Any

from suoi.client import Lane
from suoi.log.errors import LogError
from suoi.log.leader_epoch import UNDEFINED_EPOCH_OFFSET
from suoi.log_flush import sync_state_off_loop
from suoi.model import ErrorCode, TopicPartition
from suoi.protocol.codec import build
from suoi.protocol.records import RecordValidationError
from suoi.replication.fetch_session_handler import FetchData, FetchSessionHandler

if TYPE_CHECKING:
    from suoi.partition.partition import Partition
    from suoi.partition.replica_host import ReplicaHost

log = logging.getLogger("suoi.replication")

#: top-level Fetch errors about the session itself (KIP-227), not the leader
_SESSION_ERRORS = frozenset(int(e) for e in (ErrorCode.fetch_session_id_not_found, ErrorCode.invalid_fetch_session_epoch,
                                             ErrorCode.fetch_session_topic_id_error))


#: kio's Fetch v13 request entities; its phantom int types are for static checks only (kio writes
#: plain ints), so they are built from plain ints without `codec.build`'s conversions
_v13: Any = importlib.import_module("kio.schema.fetch.v13.request")
#: a fetch session's key for a partition: its topic id (what the request names, as the UUID's int:
#: hashed in C, where a UUID key costs two Python calls per lookup) and the partition index
_Key = tuple[int, int]


class ReplicaFetcher:
    def __init__(self, manager: ReplicaHost, leader_id: int) -> None:
        self.manager = manager
        self.leader_id = leader_id
        self.partitions: dict[TopicPartition, Partition] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        #: KIP-227: the session this follower keeps with the leader, and its last idle request (reused)
        self.session: FetchSessionHandler[_Key] = FetchSessionHandler()
        self._idle: Any = None
        self._max_wait = datetime.timedelta(milliseconds=manager.fetch_wait_max_ms)
        #: the topic ids the session's keys name (by their int), for the requests
        self._topic_ids: dict[int, uuid.UUID] = {}

    @property
    def empty(self) -> bool:
        return not self.partitions

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"replica-fetcher-{self.leader_id}")

    async def stop(self) -> None:
        # The flag, not only the cancellation, ends the loop: on Python 3.11 a cancel that
        # lands as `wait_for`'s inner wait completes can be swallowed (it returns normally).
        self._stopped = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=5.0)
            if not self._task.done():
                log.warning("replica fetcher for broker %d did not stop within 5 s", self.leader_id)

    def add(self, replica: Partition) -> None:
        replica.fetcher_id = self.leader_id
        replica.backoff_until = 0.0
        self.partitions[replica.tp] = replica
        self._topic_ids[replica.topic_id.int] = replica.topic_id
        self._wake.set()

    def remove(self, tp: TopicPartition) -> None:
        self.partitions.pop(tp, None)

    # -- the loop --------------------------------------------------------------------------
    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        backoff = self.manager.fetch_backoff_s
        while not self._stopped:
            try:
                now = loop.time()
                truncating: list[Partition] = []
                fetching: list[Partition] = []
                for r in self.partitions.values():  # one pass: this runs once per fetch round trip
                    if r.blocked_epoch is None and r.backoff_until <= now:
                        (truncating if r.follower.truncation_needed else fetching).append(r)
                if not truncating and not fetching:
                    self._wake.clear()
                    wait = min((r.backoff_until for r in self.partitions.values() if r.blocked_epoch is None),
                               default=now + 1.0) - now
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), max(wait, 0.01))
                    continue
                if truncating:
                    await self._truncate(truncating)
                    # those found in agreement with the leader fetch in this same round; any removed
                    # or replaced while the request was out do not
                    fetching = [r for r in fetching + truncating if self.partitions.get(r.tp) is r
                                and not r.follower.truncation_needed]
                if fetching:
                    fetching = await self._durable_truncations(fetching)
                if fetching:
                    await self._fetch(fetching)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection refused/lost, timeouts, a leader going away
                self.session.on_error()
                log.info("replica fetcher for broker %d: %s; backing off", self.leader_id, exc or type(exc).__name__)
                until = loop.time() + backoff
                for r in self.partitions.values():
                    r.backoff_until = until

    def _current(self, replica: Partition, epoch: int) -> bool:
        """The partition is still fetched here under the same leader epoch (nothing changed
        while the request was in flight)."""
        return self.partitions.get(replica.tp) is replica and replica.follower.leader_epoch == epoch

    def _back_off(self, replica: Partition) -> None:
        replica.backoff_until = asyncio.get_running_loop().time() + self.manager.fetch_backoff_s

    # -- truncation (OffsetsForLeaderEpoch) --------------------------------------------------
    async def _truncate(self, replicas: list[Partition]) -> None:
        from kio.schema.offset_for_leader_epoch.v4.request import OffsetForLeaderEpochRequest

        asked: dict[TopicPartition, tuple[Partition, int, int]] = {}
        topics: dict[str, list[dict[str, int]]] = {}
        for r in replicas:
            latest = r.plog.leader_epoch_cache.latest_epoch
            if r.plog.log_end_offset == r.plog.log_start_offset:
                r.follower.on_truncated(r.plog.log_end_offset)  # nothing that could diverge
                continue
            asked[r.tp] = (r, r.follower.leader_epoch, latest)
            topics.setdefault(r.tp.topic, []).append(
                {"partition": r.tp.partition, "current_leader_epoch": r.follower.leader_epoch, "leader_epoch": latest})
        if not asked:
            return
        request = build(OffsetForLeaderEpochRequest, {
            "replica_id": self.manager.node_id,
            "topics": [{"topic": t, "partitions": ps} for t, ps in topics.items()]})
        response = await self.manager.pool.request(self.leader_id, request, timeout=self.manager.socket_timeout_s,
                                                   lane=Lane.REPLICA_FETCH)
        for topic in response.topics:
            for p in topic.partitions:
                entry = asked.get(TopicPartition(topic.topic, p.partition))
                if entry is None:
                    continue
                replica, epoch, requested = entry
                if not self._current(replica, epoch):
                    continue
                error = int(p.error_code)
                if error == ErrorCode.fenced_leader_epoch:
                    replica.blocked_epoch = epoch
                elif error:
                    log.debug("OffsetsForLeaderEpoch %s from %d: %s", replica.tp, self.leader_id, ErrorCode(error).name)
                    self._back_off(replica)
                else:
                    self._truncate_to_leader(replica, requested, int(p.leader_epoch), int(p.end_offset))

    def _truncate_to_leader(self, replica: Partition, requested: int, leader_epoch: int, end_offset: int) -> None:
        """KIP-279: truncate to where this log and the leader's agree."""
        plog = replica.plog
        if end_offset == UNDEFINED_EPOCH_OFFSET or leader_epoch < 0:
            target = plog.high_watermark  # no epoch information: the pre-KIP-101 rule
        elif leader_epoch == requested:
            target = min(end_offset, plog.log_end_offset)
        else:
            mine_epoch, mine_end = plog.leader_epoch_cache.end_offset_for(leader_epoch, plog.log_end_offset)
            target = end_offset if mine_epoch != leader_epoch or mine_end < 0 else min(end_offset, mine_end)
            target = min(target, plog.log_end_offset)
        self._truncate_log(replica, target)

    def _truncate_log(self, replica: Partition, target: int) -> None:
        plog = replica.plog
        before = plog.log_end_offset
        if target < plog.log_start_offset:
            plog.truncate_fully_and_start_at(target)
        else:  # at the log end too: an epoch this replica led without writing goes (truncate_to)
            plog.truncate_to(target, force=True)
        if plog.log_end_offset != before:
            log.info("truncated %s from %d to %d (leader %d, epoch %d)", replica.tp, before, plog.log_end_offset,
                     self.leader_id, replica.follower.leader_epoch)
        replica.follower.on_truncated(plog.log_end_offset)

    async def _durable_truncations(self, replicas: list[Partition]) -> list[Partition]:
        """Those of `replicas` that may append: a log truncated (here, or by a corrupt-batch
        repair) appends nothing before the lowered recovery point and its directory are on disk,
        synced here off the event loop (as Kafka's fetcher thread checkpoints the recovery points
        right after it truncates; `PartitionLog.truncation_unsynced`). One whose sync failed
        (logged) backs off and is tried again."""
        held = [r.plog for r in replicas if r.plog.truncation_unsynced]
        if not held:
            return replicas
        await sync_state_off_loop(held, truncated=True)
        ready = []
        for r in replicas:
            if r.plog.truncation_unsynced:
                self._back_off(r)
            elif self.partitions.get(r.tp) is r:
                ready.append(r)
        return ready

    # -- fetching --------------------------------------------------------------------------
    async def _fetch(self, replicas: list[Partition]) -> None:
        m = self.manager
        sent: dict[_Key, tuple[Partition, int]] = {}
        wanted: dict[_Key, tuple[int, ...]] = {}
        max_bytes = m.fetch_max_bytes
        for r in replicas:
            f = r.follower
            epoch = f.leader_epoch
            plog = r.plog
            key = (r.topic_id.int, r.tp.partition)
            sent[key] = (r, epoch)
            wanted[key] = (f.log_end_offset, epoch, plog.leader_epoch_cache.latest_epoch, plog.log_start_offset,
                           max_bytes)
        request = self._request(self.session.build(wanted))
        # the records come as views of the received answer (in wire order), appended as they are
        response, views = await m.pool.request(self.leader_id, request, lane=Lane.REPLICA_FETCH, views=True,
                                               timeout=m.socket_timeout_s + m.fetch_wait_max_ms / 1000)
        error = int(response.error_code)
        self.session.on_response(error, int(response.session_id))
        if error in _SESSION_ERRORS:  # the next request is a full one in a new session, at once
            log.info("fetch session with broker %d: %s; starting a new one", self.leader_id, ErrorCode(error).name)
            return
        if error:
            raise ConnectionError(f"fetch answered {ErrorCode(error).name}")
        records = iter(views) if views is not None else (p.records for t in response.responses for p in t.partitions)
        for topic in response.responses:
            topic_key = topic.topic_id.int  # (a UUID's int: hashed in C, not by UUID.__hash__)
            for p in topic.partitions:
                data = next(records)  # (every partition has its records field: taken in order)
                entry = sent.get((topic_key, p.partition_index))
                if entry is None:
                    continue
                replica, epoch = entry
                if self.partitions.get(replica.tp) is replica and replica.follower.leader_epoch == epoch:  # _current
                    self._handle_partition(replica, p, data)

    def _request(self, data: FetchData[_Key]) -> Any:
        """The Fetch for `data`; a caught-up follower's request (nothing to send or forget) is the
        previous one with the next session epoch, not rebuilt. kio's entities are made directly
        (not through `codec.build`'s dicts): this runs once per fetch, the follower's hottest path.
        Topics are named by id (v13+, as Kafka's followers): a topic deleted and created again
        under the same name is a different topic to the leader (UNKNOWN_TOPIC_ID), never read in
        its place."""
        if not data.full and not data.to_send and not data.forgotten and self._idle is not None \
                and self._idle.session_id == data.session_id:
            self._idle = dataclasses.replace(self._idle, session_epoch=data.epoch)
            return self._idle
        m = self.manager
        topic_ids = self._topic_ids
        partition_cls = _v13.FetchPartition
        topics: dict[int, list[Any]] = {}
        for (topic_key, partition), (offset, leader_epoch, last_fetched, log_start, max_bytes) in data.to_send.items():
            fetch = partition_cls(partition=partition, current_leader_epoch=leader_epoch, fetch_offset=offset,
                                  last_fetched_epoch=last_fetched, log_start_offset=log_start,
                                  partition_max_bytes=max_bytes)
            if topic_key in topics:
                topics[topic_key].append(fetch)
            else:
                topics[topic_key] = [fetch]
        forgotten: dict[int, list[int]] = {}
        for topic_key, partition in data.forgotten:
            forgotten.setdefault(topic_key, []).append(partition)
        request = _v13.FetchRequest(
            replica_id=m.node_id, max_wait=self._max_wait, min_bytes=m.fetch_min_bytes,
            max_bytes=m.fetch_response_max_bytes, isolation_level=0, session_id=data.session_id,
            session_epoch=data.epoch,
            topics=tuple(_v13.FetchTopic(topic_id=topic_ids[t], partitions=tuple(ps)) for t, ps in topics.items()),
            forgotten_topics_data=tuple(_v13.ForgottenTopic(topic_id=topic_ids[t], partitions=tuple(ps))
                                        for t, ps in forgotten.items()))
        if forgotten:  # the ids of topics no longer fetched from this leader go once forgotten
            followed = {r.topic_id.int for r in self.partitions.values()}
            for t in [t for t in topic_ids if t not in followed]:
                del topic_ids[t]
        if not topics and not forgotten:
            self._idle = request
        return request

    def _handle_partition(self, replica: Partition, p: Any, records: memoryview | None) -> None:
        """One partition of the answer; `records` is a view of its records in the answer (None: null)."""
        error = int(p.error_code)
        plog = replica.plog
        if error == ErrorCode.none:
            diverging = p.diverging_epoch  # (Fetch v13: always there; epoch -1 when none)
            if diverging.epoch >= 0:
                self._truncate_to_leader(replica, plog.leader_epoch_cache.latest_epoch, int(diverging.epoch),
                                         int(diverging.end_offset))
                return
            old_hw = plog.high_watermark
            try:
                if records:
                    plog.append_as_follower(records)
                hw = replica.follower.on_fetch_response(int(p.high_watermark), plog.log_end_offset)
                plog.set_high_watermark(hw)
                leader_start = int(p.log_start_offset)
                if leader_start > plog.log_start_offset:
                    plog.delete_records_before(min(leader_start, plog.high_watermark))
            except (RecordValidationError, LogError) as exc:
                log.error("cannot append to %s from leader %d: %s", replica.tp, self.leader_id, exc)
                replica.follower.on_diverging_epoch()
                self._back_off(replica)
                return
            if records or plog.high_watermark != old_hw:
                # consumers reading this follower (KIP-392) see records up to its HW
                self.manager.appended(replica.tp)
        elif error == ErrorCode.offset_out_of_range:
            leader_start = int(p.log_start_offset)
            if 0 <= plog.log_end_offset < leader_start:
                log.warning("%s: log end %d is below the leader's log start %d; starting over there",
                            replica.tp, plog.log_end_offset, leader_start)
                plog.truncate_fully_and_start_at(leader_start)
                replica.follower.on_truncated(plog.log_end_offset)
            else:
                replica.follower.on_diverging_epoch()  # ahead of the leader: find the divergence
                self._back_off(replica)
        elif error == ErrorCode.fenced_leader_epoch:
            replica.blocked_epoch = replica.follower.leader_epoch
        else:  # NOT_LEADER_OR_FOLLOWER, UNKNOWN_LEADER_EPOCH, UNKNOWN_TOPIC_OR_PARTITION, UNKNOWN_TOPIC_ID, ...
            log.debug("fetch %s from %d: %s", replica.tp, self.leader_id, ErrorCode(error).name)
            self._back_off(replica)
