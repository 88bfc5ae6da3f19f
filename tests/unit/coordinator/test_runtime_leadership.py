"""Coordinators follow the leadership of their internal partitions, and answer only once
their writes are replicated.

The group and transaction runtimes are driven directly against real partition logs (a
LogManager in a temp dir), as the replica manager drives them: `on_become_leader` /
`on_resign` per partition, and the `PartitionWriter` they are built with (`Writer`), whose
`wait_replicated` a test may hold: `Held` holds every wait until the test releases it (then
moves the high watermark, as replication would).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from suoi.coordinator import runtime
from suoi.coordinator.group import JoinGroupRequest, Protocol, SyncAssignment, SyncGroupRequest
from suoi.coordinator.group.types import GroupConfig, HeartbeatRequest
from suoi.coordinator.group_coordinator import CoordinatorConfig, GroupCoordinator
from suoi.coordinator.records import OFFSETS_TOPIC, partition_for
from suoi.coordinator.runtime import append_error
from suoi.coordinator.txn import (
    TRANSACTION_STATE_TOPIC,
    AddPartitionsRequest,
    EndTxnRequest,
    InitProducerIdRequest,
    WriteMarkers,
)
from suoi.coordinator.txn_coordinator import TransactionCoordinator, TxnCoordinatorConfig
from suoi.coordinator.writer import MarkerWriter
from suoi.log.config import LogConfig
from suoi.log.manager import LogManager
from suoi.log.partition_log import PartitionLog
from suoi.model import ErrorCode, TopicPartition
from suoi.protocol.record_batch import BatchHeader, iter_batches
from suoi.protocol.record_codec import EndTxnMarker, decode_end_txn_marker

E = ErrorCode
PARTITIONS = 4
DATA = "orders"


def now_ms() -> int:
    return int(time.time() * 1000)


async def until(condition: Callable[[], object], timeout: float = 5.0, message: str = "condition") -> None:
    """Poll `condition` (yielding to the event loop) until it holds or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        await asyncio.sleep(0.001)


def key_in(partition: int, prefix: str) -> str:
    """A group / transactional id that lives in `partition` of a PARTITIONS-partition topic."""
    return next(f"{prefix}{i}" for i in range(10_000) if partition_for(f"{prefix}{i}", PARTITIONS) == partition)


def batches(plog: PartitionLog) -> Iterator[tuple[int, BatchHeader, bytes]]:
    data = plog.read(plog.log_start_offset, 1 << 24, max_offset=plog.log_end_offset) \
        if plog.log_end_offset > plog.log_start_offset else b""
    for pos, header in iter_batches(data):
        yield pos, header, data


def markers(plog: PartitionLog) -> list[tuple[EndTxnMarker, int]]:
    """(marker, partition leader epoch of its batch) for every COMMIT/ABORT in the log."""
    found = []
    for pos, header, data in batches(plog):
        if header.is_control:
            marker = decode_end_txn_marker(data, pos, header)
            assert marker is not None
            found.append((marker, header.partition_leader_epoch))
    return found


class Held:
    """A `wait_replicated` hook that holds each wait until `release`d; releasing with NONE
    moves the partition's high watermark up to the awaited offset, as replication would."""

    def __init__(self, logs: LogManager, topic: str) -> None:
        self._logs = logs
        self._topic = topic
        self.waits: list[tuple[int, int, asyncio.Future[int]]] = []
        for partition in range(PARTITIONS):
            plog = logs.get_log(topic, partition)
            assert plog is not None
            plog.hw_follows_leo = False  # replication owns the high watermark now

    async def __call__(self, partition: int, end_offset: int) -> int:
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.waits.append((partition, end_offset, fut))
        return await fut

    def waiting(self, partition: int) -> bool:
        return any(p == partition and not fut.done() for p, _, fut in self.waits)

    def release(self, partition: int, error: int = E.none) -> None:
        plog = self._logs.get_log(self._topic, partition)
        assert plog is not None
        for p, end, fut in [w for w in self.waits if w[0] == partition]:
            self.waits.remove((p, end, fut))
            if error == E.none:
                plog.set_high_watermark(max(plog.high_watermark, end))
            if not fut.done():
                fut.set_result(int(error))


class Writer:
    """The `PartitionWriter` these runtimes are built with: committed at once, unless a test
    holds its waits (`held`) or writes markers as a cluster would (`markers`)."""

    def __init__(self) -> None:
        self.held: Held | None = None
        self.markers: MarkerWriter | None = None

    def appended(self, tp: TopicPartition) -> None:
        return None

    async def wait_replicated(self, tp: TopicPartition, end_offset: int) -> int:
        return 0 if self.held is None else await self.held(tp.partition, end_offset)

    @property
    def write_markers(self) -> MarkerWriter | None:
        return self.markers
class ProducerIds:
    """Consecutive producer ids (what the controller's blocks give a broker, without one)."""

    def __init__(self) -> None:
        self._next = 0

    def next_id(self) -> int:
        self._next += 1
        return self._next - 1


class Env:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.logs = LogManager([tmp_path / "logs"], LogConfig(), now_ms=now_ms)
        self.logs.load()
        self.logs.create_topic(DATA, 2, {})
        for topic in (OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC):
            self.logs.create_topic(topic, PARTITIONS, {"cleanup.policy": "compact"})
        self.groups, self.txns = self.coordinators()

    def coordinators(self) -> tuple[GroupCoordinator, TransactionCoordinator]:
        groups = GroupCoordinator(self.logs, Writer(), now_ms, CoordinatorConfig(
            offsets_partitions=PARTITIONS, group=GroupConfig(initial_rebalance_delay_ms=0)))
        txns = TransactionCoordinator(self.logs, Writer(), now_ms, TxnCoordinatorConfig(state_partitions=PARTITIONS),
                                      ProducerIds(), groups)
        return groups, txns

    def log(self, topic: str, partition: int) -> PartitionLog:
        plog = self.logs.get_log(topic, partition)
        assert plog is not None
        return plog


def run(tmp_path: Path, scenario: Callable[[Env], Coroutine[Any, Any, None]]) -> None:
    async def main() -> None:
        env = Env(tmp_path)
        await env.groups.start()
        await env.txns.start()
        try:
            await scenario(env)
        finally:
            await env.txns.stop()
            await env.groups.stop()
            env.logs.close()

    asyncio.run(main())


async def commit(groups: GroupCoordinator, group_id: str, offset: int, partition: int = 0, *,
                 generation: int = -1, member: str = "") -> list[ErrorCode]:
    _, errors = await groups.commit_offsets(group_id, generation, member, None, [(DATA, partition, offset, -1, None)])
    return errors


def committed(groups: GroupCoordinator, group_id: str, partition: int = 0) -> int | None:
    error, found = groups.fetch_offsets(group_id, [(DATA, partition)])
    assert error == E.none, error
    oam = found[(DATA, partition)]
    return None if oam is None else oam.offset


async def lead(rt: GroupCoordinator | TransactionCoordinator, partition: int, epoch: int, key: str) -> None:
    rt.on_become_leader(partition, epoch)
    check = rt.check_group_id if isinstance(rt, GroupCoordinator) else rt.check_transactional_id
    await until(lambda: check(key) == E.none, message=f"{rt.topic}-{partition} loaded")


async def lead_held(env: Env, rt: GroupCoordinator | TransactionCoordinator, partition: int, epoch: int,
                    key: str) -> Held:
    """Lead `partition` in `epoch`, then hold every replication wait of the runtime."""
    await lead(rt, partition, epoch, key)
    held = Held(env.logs, rt.topic)
    writer = rt.writer
    assert isinstance(writer, Writer)
    writer.held = held
    return held


def join(group_id: str) -> JoinGroupRequest:
    return JoinGroupRequest(token=None, group_id=group_id, protocol_type="consumer",
                            protocols=(Protocol("range", b"meta"),), session_timeout_ms=10_000,
                            rebalance_timeout_ms=10_000, require_known_member_id=False)


# -- groups ------------------------------------------------------------------------------
def test_become_leader_loads_only_that_partition_while_others_serve(tmp_path: Path) -> None:
    g0, g1 = key_in(0, "g"), key_in(1, "g")

    async def scenario(env: Env) -> None:
        groups = env.groups
        assert groups.check_group_id(g0) == E.not_coordinator  # nothing led yet
        await lead(groups, 1, 1, g1)
        await lead(groups, 0, 1, g0)
        assert await commit(groups, g0, 42) == [E.none]
        assert await commit(groups, g1, 7) == [E.none]

        groups.on_resign(0, 2)
        assert groups.check_group_id(g0) == E.not_coordinator
        assert groups.fetch_offsets(g0, None) == (E.not_coordinator, {})
        assert g0 not in groups.offsets
        assert committed(groups, g1) == 7  # the other partition is untouched

        groups.on_become_leader(0, 3)
        assert groups.check_group_id(g0) == E.coordinator_load_in_progress
        assert groups.check_group_id(g1) == E.none  # only that partition is loading
        assert await commit(groups, g1, 8) == [E.none]
        await until(lambda: groups.check_group_id(g0) == E.none, message="partition 0 loaded")
        assert committed(groups, g0) == 42 and committed(groups, g1) == 8

        # A newer coordinator instance (another broker taking over) loads from the same log.
        other, _ = env.coordinators()
        await lead(other, 0, 4, g0)
        assert committed(other, g0) == 42
        assert other.check_group_id(g1) == E.not_coordinator

    run(tmp_path, scenario)


def test_resign_answers_parked_and_unreplicated_requests_not_coordinator(tmp_path: Path) -> None:
    g0 = key_in(0, "g")

    async def scenario(env: Env) -> None:
        groups = env.groups
        held = await lead_held(env, groups, 0, 1, g0)

        first = await groups.join(join(g0))  # no write yet: answered at once
        assert first.error_code == E.none and first.leader == first.member_id
        sync = asyncio.create_task(groups.sync(SyncGroupRequest(
            token=None, group_id=g0, generation_id=first.generation_id, member_id=first.member_id,
            assignments=(SyncAssignment(first.member_id, b"assigned"),))))
        await until(lambda: held.waiting(0), message="the group record waits for replication")
        assert not sync.done()
        held.release(0)
        synced = await sync
        assert synced.error_code == E.none and synced.assignment == b"assigned"

        pending_commit = asyncio.create_task(commit(groups, g0, 5, generation=first.generation_id,
                                                    member=first.member_id))
        await until(lambda: held.waiting(0), message="the commit waits for replication")
        parked_join = asyncio.create_task(groups.join(join(g0)))  # a second member: a rebalance
        await until(lambda: groups.machine.describe(g0).state == "PreparingRebalance")
        assert not pending_commit.done() and not parked_join.done()

        groups.on_resign(0, 2)
        assert await pending_commit == [E.not_coordinator]
        assert (await parked_join).error_code == E.not_coordinator
        assert groups.check_group_id(g0) == E.not_coordinator
        assert groups.machine.describe(g0).state == "Dead" and g0 not in groups.offsets
        groups.on_resign(0, 2)  # again: nothing happens
        groups.on_resign(0, None)

        # The next leader (here: this node again) loads the log, including the commit of 5 that
        # was never replicated, and answers only once all it loaded is replicated.
        await lead(groups, 0, 3, g0)
        assert groups.machine.describe(g0).state == "Stable" and committed(groups, g0) == 5
        beat = asyncio.create_task(groups.heartbeat(HeartbeatRequest(
            token=None, group_id=g0, generation_id=first.generation_id, member_id=first.member_id)))
        await until(lambda: held.waiting(0), message="the loaded tail waits for replication")
        held.release(0)
        assert (await beat).error_code == E.none

    run(tmp_path, scenario)


def test_failed_replication_maps_to_kafka_coordinator_errors(tmp_path: Path) -> None:
    g0 = key_in(0, "g")

    async def scenario(env: Env) -> None:
        groups = env.groups
        held = await lead_held(env, groups, 0, 6, g0)
        for replication_error, answer in [(E.none, E.none), (E.request_timed_out, E.coordinator_not_available),
                                          (E.not_enough_replicas, E.coordinator_not_available),
                                          (E.not_leader_or_follower, E.not_coordinator),
                                          (E.message_too_large, E.invalid_commit_offset_size)]:
            task = asyncio.create_task(commit(groups, g0, 1))
            await until(lambda: held.waiting(0))
            held.release(0, replication_error)
            assert await task == [answer], replication_error
        # every coordinator append carries the partition's leader epoch
        plog = env.log(OFFSETS_TOPIC, 0)
        assert [h.partition_leader_epoch for _, h, _ in batches(plog)] == [6] * 5

    run(tmp_path, scenario)


def test_resign_during_a_load_and_a_newer_epoch_during_a_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    g0 = key_in(0, "g")

    async def scenario(env: Env) -> None:
        writer = env.groups
        await lead(writer, 0, 1, g0)
        for p in range(20):  # 20 batches in __consumer_offsets-0
            _, errors = await writer.commit_offsets(g0, -1, "", None, [(DATA, p % 2, p, -1, None)])
            assert errors == [E.none]
        writer.on_resign(0, 2)
        monkeypatch.setattr(runtime, "LOAD_CHUNK_BYTES", 64)  # one batch per chunk: a load of many steps

        groups, _ = env.coordinators()
        await groups.start()
        try:
            groups.on_become_leader(0, 3)
            await asyncio.sleep(0)  # the load replays its first chunk, then yields
            assert groups.check_group_id(g0) == E.coordinator_load_in_progress
            assert groups.loading
            groups.on_resign(0, 4)  # mid-load
            assert groups.check_group_id(g0) == E.not_coordinator
            assert g0 not in groups.offsets  # what was replayed so far is dropped
            assert not groups.loading

            groups.on_become_leader(0, 5)
            await asyncio.sleep(0)
            assert groups.check_group_id(g0) == E.coordinator_load_in_progress
            groups.on_become_leader(0, 6)  # a newer epoch while loading: the load goes on
            groups.on_become_leader(0, 5)  # stale: ignored
            await until(lambda: groups.check_group_id(g0) == E.none)
            assert committed(groups, g0, 0) == 18 and committed(groups, g0, 1) == 19
            assert groups.leader_epoch(0) == 6
            assert await commit(groups, g0, 100) == [E.none]
            groups.on_become_leader(0, 6)  # repeated: no reload
            assert groups.check_group_id(g0) == E.none and committed(groups, g0) == 100
            last = list(batches(env.log(OFFSETS_TOPIC, 0)))[-1][1]
            assert last.partition_leader_epoch == 6
        finally:
            await groups.stop()

    run(tmp_path, scenario)


# -- transactions ------------------------------------------------------------------------
async def begin(txns: TransactionCoordinator, held: Held, tid: str, partition: int) -> tuple[int, int]:
    """InitProducerId + AddPartitionsToTxn(orders-0, orders-1), each answered once replicated."""
    init = asyncio.create_task(txns.call(txns.machine.init_producer_id, InitProducerIdRequest(
        token=None, transactional_id=tid, transaction_timeout_ms=60_000)))
    await until(lambda: held.waiting(partition), message="InitProducerId waits for replication")
    assert not init.done()
    held.release(partition)
    reply = await init
    assert reply.error_code == E.none
    add = asyncio.create_task(txns.call(txns.machine.add_partitions, AddPartitionsRequest(
        token=None, transactional_id=tid, producer_id=reply.producer_id, producer_epoch=reply.producer_epoch,
        partitions=(TopicPartition(DATA, 0), TopicPartition(DATA, 1)))))
    await until(lambda: held.waiting(partition), message="AddPartitionsToTxn waits for replication")
    assert not add.done()
    held.release(partition)
    assert (await add).error_code == E.none
    return reply.producer_id, reply.producer_epoch


def end_txn(txns: TransactionCoordinator, tid: str, pid: int, epoch: int) -> asyncio.Task[Any]:
    return asyncio.create_task(txns.call(txns.machine.end_txn, EndTxnRequest(
        token=None, transactional_id=tid, producer_id=pid, producer_epoch=epoch, commit=True)))


def state_of(txns: TransactionCoordinator, tid: str) -> str:
    return txns.machine.describe([tid])[0].state


def test_end_txn_and_markers_wait_for_the_prepare_record_to_replicate(tmp_path: Path) -> None:
    t1 = key_in(1, "t")

    async def scenario(env: Env) -> None:
        txns = env.txns
        held = await lead_held(env, txns, 1, 5, t1)
        sent: list[tuple[WriteMarkers, asyncio.Future[None]]] = []

        async def write_markers(m: WriteMarkers) -> None:  # KRaft mode: to each partition's leader
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            sent.append((m, done))
            await done

        txns.writer.markers = write_markers  # type: ignore[attr-defined]
        pid, epoch = await begin(txns, held, t1, 1)

        end = end_txn(txns, t1, pid, epoch)
        await until(lambda: held.waiting(1), message="PrepareCommit waits for replication")
        assert not end.done() and state_of(txns, t1) == "PrepareCommit"
        assert sent == []  # not before the PrepareCommit record is replicated
        held.release(1)
        assert (await end).error_code == E.none
        await until(lambda: sent, message="the markers sent")
        (m, done), = sent
        assert (m.commit, m.coordinator_epoch, m.producer_id, m.producer_epoch) == (True, 5, pid, epoch)
        assert set(m.partitions) == {TopicPartition(DATA, 0), TopicPartition(DATA, 1)}
        assert state_of(txns, t1) == "PrepareCommit"  # until every marker is written
        done.set_result(None)
        await until(lambda: state_of(txns, t1) == "CompleteCommit", message="the transaction completed")
        assert all(h.partition_leader_epoch == 5 for _, h, _ in batches(env.log(TRANSACTION_STATE_TOPIC, 1)))
        assert markers(env.log(DATA, 0)) == []  # written by `write_markers`, not here

    run(tmp_path, scenario)


async def committed_txn(txns: TransactionCoordinator, held: Held, tid: str, partition: int) -> None:
    """InitProducerId, AddPartitionsToTxn and EndTxn(commit), each released once it waits for
    replication: the transaction is in PrepareCommit, its markers being written."""
    pid, epoch = await begin(txns, held, tid, partition)
    end = end_txn(txns, tid, pid, epoch)
    await until(lambda: held.waiting(partition))
    held.release(partition)
    assert (await end).error_code == E.none


def test_a_failing_marker_writer_is_run_again_until_the_transaction_completes(tmp_path: Path) -> None:
    t1 = key_in(1, "t")

    async def scenario(env: Env) -> None:
        txns = env.txns
        held = await lead_held(env, txns, 1, 5, t1)
        calls: list[WriteMarkers] = []

        async def write_markers(m: WriteMarkers) -> None:
            calls.append(m)
            if len(calls) == 1:
                raise ConnectionError("a bug or an unexpected error in the marker writer")

        txns.writer.markers = write_markers  # type: ignore[attr-defined]
        await committed_txn(txns, held, t1, 1)
        # not left in PrepareCommit: the writer runs again after a backoff, then Complete* is written
        await until(lambda: state_of(txns, t1) == "CompleteCommit", message="the transaction completed")
        assert len(calls) == 2 and calls[0] == calls[1]

    run(tmp_path, scenario)


def test_a_resignation_cancels_the_marker_writer(tmp_path: Path) -> None:
    t1 = key_in(1, "t")

    async def scenario(env: Env) -> None:
        txns = env.txns
        held = await lead_held(env, txns, 1, 5, t1)
        started: list[WriteMarkers] = []
        cancelled: list[WriteMarkers] = []

        async def write_markers(m: WriteMarkers) -> None:  # a leader that never answers
            started.append(m)
            try:
                await asyncio.get_running_loop().create_future()
            except asyncio.CancelledError:
                cancelled.append(m)
                raise

        txns.writer.markers = write_markers  # type: ignore[attr-defined]
        await committed_txn(txns, held, t1, 1)
        await until(lambda: started, message="the markers sent")
        txns.on_resign(1, 6)  # the next coordinator loads PrepareCommit and sends them again
        await until(lambda: cancelled, message="the writer cancelled")
        assert txns.machine.metadata(t1) is None

    run(tmp_path, scenario)


def test_prepare_commit_is_completed_by_the_next_leader(tmp_path: Path) -> None:
    t1, t2 = key_in(1, "t"), key_in(2, "t")

    async def scenario(env: Env) -> None:
        txns = env.txns
        await lead(txns, 2, 5, t2)
        held = await lead_held(env, txns, 1, 5, t1)
        pid, epoch = await begin(txns, held, t1, 1)
        end = end_txn(txns, t1, pid, epoch)
        await until(lambda: held.waiting(1))

        txns.on_resign(1, 6)  # before the PrepareCommit record is replicated
        assert (await end).error_code == E.not_coordinator
        assert txns.check_transactional_id(t1) == E.not_coordinator
        assert txns.machine.metadata(t1) is None
        assert markers(env.log(DATA, 0)) == []  # this coordinator gave the markers up

        # The new leader of __transaction_state-1 (this node again, epoch 7) finds PrepareCommit
        # and completes it, once what it loaded is replicated (markers appended locally here:
        # no `write_markers`; coordinator epoch 7, no data-partition leader epoch).
        txns.on_become_leader(1, 7)
        assert txns.check_transactional_id(t1) == E.coordinator_load_in_progress
        assert txns.check_transactional_id(t2) == E.none  # other partitions keep serving
        await until(lambda: txns.check_transactional_id(t1) == E.none)
        assert state_of(txns, t1) == "PrepareCommit"
        await until(lambda: held.waiting(1), message="markers wait for the loaded records to replicate")
        assert markers(env.log(DATA, 0)) == []
        held.release(1)
        await until(lambda: state_of(txns, t1) == "CompleteCommit", message="the transaction completed")
        for partition in (0, 1):
            assert markers(env.log(DATA, partition)) == [(EndTxnMarker(commit=True, coordinator_epoch=7), -1)]

    run(tmp_path, scenario)


def test_append_errors_follow_kafka() -> None:
    assert append_error(E.none) == E.none
    for code in (E.unknown_topic_or_partition, E.not_enough_replicas, E.not_enough_replicas_after_append,
                 E.request_timed_out):
        assert append_error(code) == E.coordinator_not_available
    for code in (E.not_leader_or_follower, E.kafka_storage_error):
        assert append_error(code) == E.not_coordinator
    for code in (E.message_too_large, E.record_list_too_large, E.invalid_fetch_size):
        assert append_error(code) == E.unknown_server_error
        assert append_error(code, offsets=True) == E.invalid_commit_offset_size
    assert append_error(E.invalid_producer_epoch) == E.invalid_producer_epoch
