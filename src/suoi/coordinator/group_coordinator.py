"""The group coordinator runtime: the sans-IO group machine plus durability and timers.

Division of labour (ARCHITECTURE.md "coordinator runtime"):
- `group.machine` decides (joins, syncs, heartbeats, expiry) and returns replies and
  `PersistGroup` effects; it never touches a clock, a socket or a file.
- This class appends those effects as records to `__consumer_offsets` *before* the
  replies are released (and releases them once those records are replicated), keeps
  committed offsets in memory, replays a partition into memory when this node becomes
  its leader (its groups answer COORDINATOR_LOAD_IN_PROGRESS until that finishes) and
  forgets it on resignation, and drives the machine's timers from the event loop.

Every group lives in partition `abs(hash(group)) % offsets.topic.num.partitions`, as in
Kafka, and is coordinated by that partition's leader.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, replace
from typing import Any

from suoi.coordinator.group.machine import GroupStateMachine
from suoi.coordinator.group.types import (
    GroupConfig,
    GroupSnapshot,
    HeartbeatRequest,
    HeartbeatResult,
    JoinGroupRequest,
    JoinGroupResult,
    LeaveGroupRequest,
    LeaveGroupResult,
    Output,
    PersistGroup,
    Reply,
    SyncGroupRequest,
    SyncGroupResult,
)
from suoi.coordinator.records import (
    OFFSETS_TOPIC,
    OffsetAndMetadata,
    group_key,
    group_value,
    offset_key,
    offset_value,
    parse,
    partition_for,
)
from suoi.coordinator.runtime import CoordinatorRuntime, append_error
from suoi.coordinator.writer import PartitionWriter
from suoi.log.errors import LogError
from suoi.log.manager import LogManager
from suoi.model import ErrorCode
from suoi.protocol.consumer_protocol import subscribed_topics
from suoi.protocol.records import BatchHeader, SimpleRecord, build_batch

log = logging.getLogger("suoi.coordinator")

MAX_GROUP_ID_LENGTH = 255  # Kafka has no explicit limit; we refuse absurd ids clearly.

@dataclass(frozen=True, slots=True)
class CoordinatorConfig:
    offsets_partitions: int = 50  # offsets.topic.num.partitions
    offsets_segment_bytes: int = 100 * 1024 * 1024  # offsets.topic.segment.bytes
    offsets_retention_ms: int = 7 * 24 * 3_600_000  # offsets.retention.minutes
    offsets_retention_check_ms: int = 600_000  # offsets.retention.check.interval.ms
    offset_metadata_max_bytes: int = 4096  # offset.metadata.max.bytes
    group: GroupConfig = GroupConfig()


class GroupCoordinator(CoordinatorRuntime):
    """Coordinates the consumer groups of the __consumer_offsets partitions this node leads."""

    topic = OFFSETS_TOPIC

    def __init__(self, logs: LogManager, writer: PartitionWriter, now_ms: Callable[[], int],
                 config: CoordinatorConfig) -> None:
        super().__init__(logs, writer, now_ms)
        self.config = config
        self.machine = GroupStateMachine(config.group, new_member_id=lambda client_id: f"{client_id}-{uuid.uuid4()}")
        self.offsets: dict[str, dict[tuple[str, int], OffsetAndMetadata]] = {}
        #: Offsets committed inside open transactions: producer id -> group -> partition -> offset.
        #: They become visible only when the transaction's commit marker reaches the group's
        #: __consumer_offsets partition (`complete_transaction`).
        self.pending_txn_offsets: dict[int, dict[str, dict[tuple[str, int], OffsetAndMetadata]]] = {}
        #: Requests the machine has not answered yet: token -> (future, group's partition).
        self._pending: dict[object, tuple[asyncio.Future[Any], int]] = {}
        #: Last group record per group of each partition being loaded.
        self._replaying: dict[int, dict[str, GroupSnapshot | None]] = {}

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        await super().start()
        self._spawn(self._expiry_loop(), "offset-expiry")

    async def stop(self) -> None:
        await super().stop()
        for fut, _ in self._pending.values():
            if not fut.done():
                fut.cancel()

    def _replay_batch(self, partition: int, header: BatchHeader, records: list[SimpleRecord]) -> None:
        if header.is_control:
            self._replay_marker(partition, header.producer_id, records)
        elif header.is_transactional:
            for record in records:
                self._replay_txn_offset(header.producer_id, record.key, record.value)
        else:
            for record in records:
                self._replay(record.key, record.value, self._replaying.setdefault(partition, {}))

    def _loaded(self, partition: int, now: int) -> None:
        snapshots = self._replaying.pop(partition, {})
        for snapshot in snapshots.values():
            if snapshot is not None:
                self._process(self.machine.restore(snapshot, now))
        groups = sum(1 for s in snapshots.values() if s)  # an empty partition: no INFO line (50 at every start)
        log.log(logging.INFO if groups else logging.DEBUG, "%s-%d: loaded %d groups", OFFSETS_TOPIC, partition, groups)

    def _unload(self, partition: int) -> None:
        """Forget the groups of `partition`: parked joins/syncs get NOT_COORDINATOR."""
        self._replaying.pop(partition, None)

        def here(group_id: str) -> bool:
            return self.partition_for(group_id) == partition

        self._process(self.machine.unload([g.group_id for g in self.machine.list_groups() if here(g.group_id)]))
        for group_id in [g for g in self.offsets if here(g)]:
            del self.offsets[group_id]
        for producer_id, groups in list(self.pending_txn_offsets.items()):
            for group_id in [g for g in groups if here(g)]:
                del groups[group_id]
            if not groups:
                del self.pending_txn_offsets[producer_id]

    def _replay(self, key: bytes | None, value: bytes | None, snapshots: dict[str, GroupSnapshot | None]) -> None:
        parsed = parse(key, value)
        if parsed is None:
            log.warning("skipping an unreadable record in %s", OFFSETS_TOPIC)
            return
        if parsed.kind == "offset":
            assert parsed.topic is not None and parsed.partition is not None
            group = self.offsets.setdefault(parsed.group, {})
            if parsed.offset is None:
                group.pop((parsed.topic, parsed.partition), None)
                if not group:
                    del self.offsets[parsed.group]
            else:
                group[(parsed.topic, parsed.partition)] = parsed.offset
        else:
            snapshots[parsed.group] = (GroupSnapshot.from_dict(parsed.group_snapshot)
                                       if parsed.group_snapshot is not None else None)

    def _replay_txn_offset(self, producer_id: int, key: bytes | None, value: bytes | None) -> None:
        parsed = parse(key, value)
        if parsed is None or parsed.kind != "offset" or parsed.offset is None:
            return
        assert parsed.topic is not None and parsed.partition is not None
        pending = self.pending_txn_offsets.setdefault(producer_id, {}).setdefault(parsed.group, {})
        pending[(parsed.topic, parsed.partition)] = parsed.offset

    def _replay_marker(self, partition: int, producer_id: int, records: list[Any]) -> None:
        """A control record: key = (version int16, type int16), 1 = COMMIT, 0 = ABORT."""
        if not records or records[0].key is None or len(records[0].key) < 4:
            return
        commit = int.from_bytes(records[0].key[2:4], "big") == 1
        self.complete_transaction(partition, producer_id, commit)

    # -- the offsets topic -----------------------------------------------------------
    def partition_for(self, group_id: str) -> int:
        return partition_for(group_id, self.config.offsets_partitions)

    def _append(self, group_id: str, records: list[tuple[bytes, bytes | None]]) -> None:
        """Append records for one group to its partition; raises LogError on failure."""
        self._append_to(self.partition_for(group_id), build_batch(records, timestamp_ms=self._now_ms()))

    # -- checks shared by the group APIs ---------------------------------------------
    def check_group_id(self, group_id: str | None) -> ErrorCode:
        if not group_id or len(group_id) > MAX_GROUP_ID_LENGTH:
            return ErrorCode.invalid_group_id
        return self.partition_error(self.partition_for(group_id))

    async def _written(self, group_id: str, *, offsets: bool = False) -> ErrorCode:
        """Once every write so far to the group's partition is replicated: NONE, or what the
        client is told instead (Kafka's mapping of a failed append)."""
        return append_error(await self._replicated(self.mark(self.partition_for(group_id))), offsets=offsets)

    # -- group membership (answered by the machine, maybe later) ----------------------
    async def join(self, request: JoinGroupRequest) -> Any:
        return await self._call(self.machine.join, request)

    async def sync(self, request: SyncGroupRequest) -> Any:
        return await self._call(self.machine.sync, request)

    async def heartbeat(self, request: HeartbeatRequest) -> Any:
        return await self._call(self.machine.heartbeat, request)

    async def leave(self, request: LeaveGroupRequest) -> Any:
        return await self._call(self.machine.leave, request)

    async def _call(self, method: Callable[[Any, int], list[Output]], request: Any) -> Any:
        """Run one request through the machine; its answer (maybe from a later event) is sent
        once the group's partition has replicated every write made before it."""
        token = object()
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[token] = (fut, self.partition_for(request.group_id))
        self._process(method(replace(request, token=token), self._now_ms()))
        self._kick()
        data, mark = await fut
        if data.error_code:
            return data  # an error depends on no write
        error = append_error(await self._replicated(mark))
        return data if error == ErrorCode.none else _failed(data, error)

    def _process(self, outputs: Iterable[Output]) -> None:
        """Persist effects first, then release replies (Kafka writes before answering); each
        reply carries what it must wait for (`mark`)."""
        replies: list[Reply] = []
        for out in outputs:
            if isinstance(out, PersistGroup):
                self._persist_group(out)
            else:
                replies.append(out)
        for reply in replies:
            fut, partition = self._pending.pop(reply.token, (None, 0))
            if fut is not None and not fut.done():
                fut.set_result((reply.data, self.mark(partition)))

    def _persist_group(self, effect: PersistGroup) -> None:
        value = group_value(effect.snapshot.to_dict()) if effect.snapshot is not None else None
        try:
            self._append(effect.group_id, [(group_key(effect.group_id), value)])
        except (LogError, OSError) as exc:
            log.error("cannot persist group %s: %s", effect.group_id, exc)

    # -- offsets ---------------------------------------------------------------------
    async def commit_offsets(self, group_id: str, generation_id: int, member_id: str,
                             group_instance_id: str | None, offsets: list[tuple[str, int, int, int, str | None]], *,
                             retention_ms: int = -1) -> tuple[ErrorCode, list[ErrorCode]]:
        """OffsetCommit: returns (error for every partition, or NONE, per-partition errors),
        once the commit is replicated.

        `offsets` are (topic, partition, offset, leader epoch, metadata); `retention_ms`
        is OffsetCommit v2-v4's explicit retention (-1: the broker's offsets.retention).
        The offsets are visible at once (as the log has them), as the machines' state is.
        """
        error = self.check_group_id(group_id)
        if error == ErrorCode.none:
            error = ErrorCode(self.machine.validate_offset_commit(
                group_id, member_id, generation_id, group_instance_id, self._now_ms()))
        if error != ErrorCode.none:
            return error, [error] * len(offsets)
        now = self._now_ms()
        errors, records, accepted = self._offset_records(
            group_id, offsets, now, now + retention_ms if retention_ms > 0 else -1)
        if records:
            try:
                self._append(group_id, records)
            except (LogError, OSError) as exc:
                log.error("cannot persist offsets of group %s: %s", group_id, exc)
                return ErrorCode.none, [ErrorCode.coordinator_not_available if e == ErrorCode.none else e
                                        for e in errors]
            stored = self.offsets.setdefault(group_id, {})
            stored.update(accepted)
            failed = await self._written(group_id, offsets=True)
            errors = [failed if e == ErrorCode.none else e for e in errors]
        return ErrorCode.none, errors

    def _offset_records(self, group_id: str, offsets: list[tuple[str, int, int, int, str | None]], now: int,
                        expire_ts: int) -> tuple[list[ErrorCode], list[tuple[bytes, bytes | None]],
                                                 list[tuple[tuple[str, int], OffsetAndMetadata]]]:
        """Validate commits and build their records: (per-partition errors, records, accepted)."""
        errors: list[ErrorCode] = []
        records: list[tuple[bytes, bytes | None]] = []
        accepted: list[tuple[tuple[str, int], OffsetAndMetadata]] = []
        for topic, partition, offset, leader_epoch, metadata in offsets:
            count = self.partition_count(topic)
            if count is None or not 0 <= partition < count:
                errors.append(ErrorCode.unknown_topic_or_partition)
            elif metadata is not None and len(metadata.encode()) > self.config.offset_metadata_max_bytes:
                errors.append(ErrorCode.offset_metadata_too_large)
            else:
                oam = OffsetAndMetadata(offset, leader_epoch, metadata, now, expire_ts)
                records.append((offset_key(group_id, topic, partition), offset_value(oam)))
                accepted.append(((topic, partition), oam))
                errors.append(ErrorCode.none)
        return errors, records, accepted

    def fetch_offsets(self, group_id: str, partitions: list[tuple[str, int]] | None
                      ) -> tuple[ErrorCode, dict[tuple[str, int], OffsetAndMetadata | None]]:
        """OffsetFetch: committed offsets (None where nothing is committed)."""
        error = self.check_group_id(group_id)
        if error != ErrorCode.none:
            return error, {}
        stored = self.offsets.get(group_id, {})
        if partitions is None:
            return ErrorCode.none, dict(stored)
        return ErrorCode.none, {tp: stored.get(tp) for tp in partitions}

    async def delete_offsets(self, group_id: str, partitions: list[tuple[str, int]]
                             ) -> tuple[ErrorCode, list[ErrorCode]]:
        """OffsetDelete: only for partitions the group is not consuming (Kafka's rule)."""
        error = self.check_group_id(group_id)
        if error != ErrorCode.none:
            return error, []
        description = self.machine.describe(group_id)
        if description.state == "Dead" and group_id not in self.offsets:
            return ErrorCode.group_id_not_found, []
        subscribed = {topic for member in description.members for topic in subscribed_topics(member.metadata)}
        errors: list[ErrorCode] = []
        tombstones: list[tuple[bytes, bytes | None]] = []
        stored = self.offsets.get(group_id, {})
        for topic, partition in partitions:
            count = self.partition_count(topic)
            if count is None or not 0 <= partition < count:
                # Kafka's handleOffsetDeleteRequest answers a partition missing from the metadata
                # before it asks the coordinator: nothing is deleted for it
                errors.append(ErrorCode.unknown_topic_or_partition)
                continue
            if topic in subscribed:
                errors.append(ErrorCode.group_subscribed_to_topic)
                continue
            if (topic, partition) in stored:
                tombstones.append((offset_key(group_id, topic, partition), None))
            errors.append(ErrorCode.none)
        if tombstones:
            self._append(group_id, tombstones)
            for (topic, partition), error in zip(partitions, errors, strict=True):
                if error == ErrorCode.none:
                    stored.pop((topic, partition), None)
            failed = await self._written(group_id)
            if failed != ErrorCode.none:
                return failed, []
        return ErrorCode.none, errors

    async def delete_groups(self, group_ids: list[str]) -> list[ErrorCode]:
        """DeleteGroups: per-group errors, once the tombstones are replicated."""
        results: list[ErrorCode] = []
        written: list[int] = []
        for group_id in group_ids:
            error = self.check_group_id(group_id)
            if error != ErrorCode.none:
                results.append(error)
                continue
            error = ErrorCode(self.machine.delete_group(group_id))
            if error == ErrorCode.group_id_not_found and group_id in self.offsets:
                error = ErrorCode.none  # a "simple" group that only has committed offsets
            if error == ErrorCode.none:
                records: list[tuple[bytes, bytes | None]] = [
                    (offset_key(group_id, t, p), None) for (t, p) in self.offsets.pop(group_id, {})]
                records.append((group_key(group_id), None))
                try:
                    self._append(group_id, records)
                    written.append(len(results))
                except (LogError, OSError) as exc:
                    log.error("cannot persist deletion of group %s: %s", group_id, exc)
            results.append(error)
        for i in written:
            results[i] = await self._written(group_ids[i])
        return results

    # -- transactional offsets (TxnOffsetCommit) -------------------------------------
    async def txn_commit_offsets(self, group_id: str, producer_id: int, producer_epoch: int, generation_id: int,
                                 member_id: str, group_instance_id: str | None,
                                 offsets: list[tuple[str, int, int, int, str | None]]
                                 ) -> tuple[ErrorCode, list[ErrorCode]]:
        """TxnOffsetCommit: written now as a transactional batch (answered once replicated),
        visible on commit.

        The producer must have added the group's __consumer_offsets partition to its
        transaction (AddOffsetsToTxn) before; the transaction coordinator checks that.
        """
        error = self.check_group_id(group_id)
        if error == ErrorCode.none and generation_id >= 0:
            error = ErrorCode(self.machine.validate_offset_commit(
                group_id, member_id, generation_id, group_instance_id, self._now_ms(), transactional=True))
        if error != ErrorCode.none:
            return error, [error] * len(offsets)
        now = self._now_ms()
        errors, records, accepted = self._offset_records(group_id, offsets, now, -1)
        if records:
            try:
                self._append_to(self.partition_for(group_id), build_batch(
                    records, timestamp_ms=now, producer_id=producer_id, producer_epoch=producer_epoch,
                    is_transactional=True))
            except (LogError, OSError) as exc:
                code = getattr(exc, "error_code", None)
                log.warning("cannot write transactional offsets of group %s: %s", group_id, exc)
                failed = ErrorCode(code) if code in (ErrorCode.invalid_producer_epoch, ErrorCode.producer_fenced) \
                    else ErrorCode.coordinator_not_available
                return ErrorCode.none, [failed if e == ErrorCode.none else e for e in errors]
            pending = self.pending_txn_offsets.setdefault(producer_id, {}).setdefault(group_id, {})
            pending.update(accepted)
            failed = await self._written(group_id, offsets=True)
            errors = [failed if e == ErrorCode.none else e for e in errors]
        return ErrorCode.none, errors

    def complete_transaction(self, partition: int, producer_id: int, commit: bool) -> None:
        """A marker reached __consumer_offsets-`partition`: publish or drop the
        producer's pending offsets of the groups living in that partition."""
        groups = self.pending_txn_offsets.get(producer_id)
        if not groups:
            return
        for group_id in [g for g in groups if self.partition_for(g) == partition]:
            offsets = groups.pop(group_id)
            if commit:
                self.offsets.setdefault(group_id, {}).update(offsets)
        if not groups:
            del self.pending_txn_offsets[producer_id]

    def unstable_offsets(self, group_id: str) -> set[tuple[str, int]]:
        """The group's partitions with transactional offsets written and their transaction not
        yet ended here: OffsetFetch with require_stable (KIP-447) answers UNSTABLE_OFFSET_COMMIT
        for them, as Kafka, so a consumer taking a partition over does not start before offsets
        a transaction is committing (exactly-once copies would be made twice)."""
        out: set[tuple[str, int]] = set()
        for groups in self.pending_txn_offsets.values():
            out.update(groups.get(group_id, ()))
        return out

    async def _expiry_loop(self) -> None:
        """offsets.retention.minutes: drop offsets of groups that have been empty that long."""
        while True:
            await asyncio.sleep(self.config.offsets_retention_check_ms / 1000)
            self.expire_offsets(self._now_ms())

    def on_topics_deleted(self, topics: Collection[str]) -> int:
        """Drop the committed offsets of deleted topics (Kafka's onPartitionsDeleted), in the
        groups this node coordinates, with tombstones: a topic recreated under the same name
        starts with no committed offsets, as in Kafka, instead of a consumer resuming from
        (or resetting at) a position of the old topic's log. Returns how many were dropped."""
        gone = set(topics)
        dropped = 0
        for group_id in list(self.offsets):
            if self.partition_error(self.partition_for(group_id)) != ErrorCode.none:
                continue  # not coordinated here (or still loading)
            stale = [tp for tp in self.offsets[group_id] if tp[0] in gone]
            dropped += self._drop_offsets(group_id, stale, "drop deleted topics'")
        if dropped:
            log.info("dropped %d committed offsets of deleted topics %s", dropped, sorted(gone))
        return dropped

    def _drop_offsets(self, group_id: str, stale: list[tuple[str, int]], action: str) -> int:
        """Tombstone ``stale`` offsets of ``group_id`` and forget them; how many (0 on a failed write)."""
        if not stale:
            return 0
        try:
            self._append(group_id, [(offset_key(group_id, t, p), None) for t, p in stale])
        except (LogError, OSError) as exc:
            log.error("cannot %s offsets of group %s: %s", action, group_id, exc)
            return 0
        stored = self.offsets[group_id]
        for tp in stale:
            del stored[tp]
        if not stored:
            del self.offsets[group_id]
        return len(stale)

    def expire_offsets(self, now: int) -> int:
        expired = 0
        retention = self.config.offsets_retention_ms
        for group_id in list(self.offsets):
            if self.partition_error(self.partition_for(group_id)) != ErrorCode.none:
                continue  # its partition is still loading
            empty_since = self.machine.empty_since(group_id)
            if empty_since is None:
                continue  # the group has members: its offsets never expire
            stored = self.offsets[group_id]
            stale = [tp for tp, oam in stored.items()
                     if (oam.expire_timestamp > 0 and oam.expire_timestamp <= now)
                     or now - max(oam.commit_timestamp, empty_since) >= retention]
            expired += self._drop_offsets(group_id, stale, "expire")
        if expired:
            log.info("expired %d committed offsets", expired)
        return expired


def _failed(result: Any, error: ErrorCode) -> Any:
    """The answer to send instead of `result` when the writes it depends on did not replicate."""
    if isinstance(result, JoinGroupResult):
        return JoinGroupResult(error_code=error, member_id=result.member_id)
    if isinstance(result, SyncGroupResult):
        return SyncGroupResult(error_code=error)
    if isinstance(result, LeaveGroupResult):
        return LeaveGroupResult(error_code=error)
    return HeartbeatResult(error_code=error)
