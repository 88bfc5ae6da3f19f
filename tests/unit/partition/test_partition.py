"""`Partition` in-process: a real `PartitionLog` on disk, the sans-IO leader state, no sockets.

The host stands in for the replica manager's small `PartitionHost` role (a clock the test
moves, the wake-ups and AlterPartition proposals recorded), so each test can play the
follower fetches and the controller's answers itself: appends and reads, acks=all waits that
complete when the ISR has the batch or time out, ISR expansion/shrink moving the HW, the
leader-epoch checks of Fetch, and NOT_ENOUGH_REPLICAS.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from suoi.log.config import LogConfig
from suoi.log.manager import LogManager
from suoi.model import ErrorCode, TopicPartition
from suoi.partition.append import DelayedProduce
from suoi.partition.partition import AppendResult, Partition
from suoi.protocol.record_codec import build_batch, iter_records
from suoi.replication import AlterPartitionProposal, FollowerPartitionState, LeaderPartitionState

LEADER, F1, F2 = 1, 2, 3
EPOCH = 5
LAG_MS = 10_000


class Host:
    """The `PartitionHost` of these tests (module doc)."""

    node_id = LEADER

    def __init__(self) -> None:
        self.now = 1_000_000
        self.appends: list[TopicPartition] = []
        self.hw_moves: list[TopicPartition] = []
        self.proposals: list[AlterPartitionProposal] = []
        self.preferred = LEADER

    def now_ms(self) -> int:
        return self.now

    def appended(self, tp: TopicPartition) -> None:
        self.appends.append(tp)

    def high_watermark_moved(self, tp: TopicPartition) -> None:
        self.hw_moves.append(tp)

    def follower_fetched(self, partition: Partition) -> None:
        return None

    def propose(self, partition: Partition, proposal: AlterPartitionProposal) -> None:
        self.proposals.append(proposal)

    def preferred_read_replica(self, partition: Partition, client_rack: str, fetch_offset: int) -> int:
        return self.preferred


@pytest.fixture
def logs(tmp_path: Path) -> Iterator[LogManager]:
    manager = LogManager([tmp_path / "logs"], LogConfig())
    manager.load()
    yield manager
    manager.close()


def lead(logs: LogManager, host: Host, *, replicas: tuple[int, ...] = (LEADER, F1, F2),
         isr: tuple[int, ...] = (LEADER, F1, F2), min_isr: int = 2, topic: str = "t") -> Partition:
    """This node leads `topic`-0 in EPOCH (as `ReplicaManager._become_leader` does)."""
    info = logs.create_topic(topic, 1, {"min.insync.replicas": str(min_isr)})
    plog = logs.get_log(topic, 0)
    assert plog is not None
    plog.hw_follows_leo = False  # replication owns the HW
    plog.leader_epoch_cache.assign(EPOCH, plog.log_end_offset, durable=False)
    state = LeaderPartitionState(topic, 0, LEADER, EPOCH, 0, replicas, isr, min_isr, LAG_MS,
                                 leader_leo=plog.log_end_offset, high_watermark=plog.high_watermark, now_ms=host.now)
    return Partition(TopicPartition(topic, 0), info.topic_id, plog, host, leader_state=state)


def batch(*values: bytes) -> bytes:
    return build_batch([(None, v) for v in values])


def values(data: bytes) -> list[bytes | None]:
    return [r.value for r in iter_records(data)]


async def wait_for(results: list[AppendResult], timeout_s: float) -> dict[int, int]:
    """A Produce's acks=-1 waits over `results` (as `api.produce` does): error code by position."""
    delayed = DelayedProduce()
    for i, result in enumerate(results):
        if result.partition is not None:
            delayed.add(result.partition, result.required_offset, i)
    failed = await delayed.start(timeout_s)
    return {i: int(results[i].error) for i in range(len(results))} | dict(failed)


def follower_fetch(p: Partition, replica: int, offset: int) -> ErrorCode:
    """A follower's Fetch from `offset` (its log end), as the replica fetcher sends it."""
    result = p.read(offset, 1 << 20, replica_id=replica, current_leader_epoch=EPOCH, last_fetched_epoch=-1)
    return result.error


def test_append_then_read_up_to_the_high_watermark(logs: LogManager) -> None:
    host = Host()
    p = lead(logs, host, isr=(LEADER,), min_isr=1)
    first = p.append_records(batch(b"a", b"b"), acks=1)
    second = p.append_records(batch(b"c"), acks=1)
    assert (first.error, first.base_offset, second.base_offset) == (ErrorCode.none, 0, 2)
    assert host.appends == [p.tp, p.tp]
    read = p.read(0, 1 << 20)
    assert (read.error, read.high_watermark, read.log_start_offset) == (ErrorCode.none, 3, 0)
    assert values(read.records) == [b"a", b"b", b"c"]
    assert values(p.read(2, 1 << 20).records) == [b"c"]
    assert p.plog.leader_epoch_cache.latest_epoch == EPOCH  # batches stamped with the leader epoch


def test_records_past_the_high_watermark_wait_for_the_isr(logs: LogManager) -> None:
    host = Host()
    p = lead(logs, host, isr=(LEADER, F1), replicas=(LEADER, F1))
    assert p.append_records(batch(b"a"), acks=1).error == ErrorCode.none
    assert p.read(0, 1 << 20).records == b""  # HW 0: the follower has not fetched it
    assert follower_fetch(p, F1, 0) == ErrorCode.none  # the follower reads it (up to the log end)...
    assert p.plog.high_watermark == 0
    assert follower_fetch(p, F1, 1) == ErrorCode.none  # ...and its next fetch says it has it
    assert p.plog.high_watermark == 1 and host.hw_moves == [p.tp]
    assert values(p.read(0, 1 << 20).records) == [b"a"]


def test_acks_all_completes_once_every_isr_member_has_the_batch(logs: LogManager) -> None:
    async def scenario() -> None:
        host = Host()
        p = lead(logs, host)
        result = p.append_records(batch(b"x"), acks=-1)
        assert (result.error, result.base_offset, result.partition, result.required_offset) == (ErrorCode.none, 0, p, 1)
        delayed = DelayedProduce()
        delayed.add(p, result.required_offset, "slot")
        answered: list[object] = []
        delayed.start(5).sink(lambda value, exc: answered.append(value))
        follower_fetch(p, F1, 1)
        assert answered == []  # F2 is in the ISR too
        follower_fetch(p, F2, 1)
        assert answered == [[]]  # answered inside the follower fetch that moved the HW: no failures
        assert p.plog.high_watermark == 1 and p.waits == {} and len(p.waiters) == 0

    asyncio.run(scenario())


def test_acks_all_times_out_when_a_follower_does_not_fetch(logs: LogManager) -> None:
    async def scenario() -> None:
        p = lead(logs, Host())
        result = p.append_records(batch(b"x"), acks=-1)
        follower_fetch(p, F1, 1)  # F2 never does
        assert await wait_for([result], timeout_s=0.05) == {0: ErrorCode.request_timed_out}
        assert p.waits == {} and len(p.waiters) == 0  # the wait was withdrawn
        assert p.plog.log_end_offset == 1  # appended all the same (the client's retry is deduplicated)

    asyncio.run(scenario())


def test_a_closed_connection_withdraws_the_acks_all_waits(logs: LogManager) -> None:
    async def scenario() -> None:
        p = lead(logs, Host())
        result = p.append_records(batch(b"x"), acks=-1)
        delayed = DelayedProduce()
        delayed.add(p, result.required_offset, 0)
        delayed.start(5)
        delayed.cancel()  # as the connection does when the client goes away
        assert p.waits == {} and len(p.waiters) == 0
        follower_fetch(p, F1, 1)
        follower_fetch(p, F2, 1)  # the HW moves; nothing is answered
        assert p.plog.high_watermark == 1 and delayed.done

    asyncio.run(scenario())


def test_a_failing_waiter_does_not_stop_the_others(logs: LogManager, caplog: pytest.LogCaptureFixture) -> None:
    p = lead(logs, Host(), isr=(LEADER, F1), replicas=(LEADER, F1))
    result = p.append_records(batch(b"x"), acks=-1)
    answered: list[int] = []

    def broken(error: int) -> None:
        raise RuntimeError("connection gone wrong")

    p.await_isr(result.required_offset, broken)
    p.await_isr(result.required_offset, answered.append)
    follower_fetch(p, F1, 1)
    assert answered == [ErrorCode.none] and p.waits == {}
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == ["t-0: an acks=all wait failed to complete"]


def test_acks_all_is_refused_below_min_insync_replicas(logs: LogManager) -> None:
    p = lead(logs, Host(), isr=(LEADER,), min_isr=2)
    refused = p.append_records(batch(b"x"), acks=-1)
    assert (refused.error, refused.partition) == (ErrorCode.not_enough_replicas, None)
    assert p.plog.log_end_offset == 0  # nothing appended
    assert p.append_records(batch(b"x"), acks=1).error == ErrorCode.none  # acks=1 does not need the ISR


def test_a_shrunk_isr_commits_without_the_lagging_follower(logs: LogManager) -> None:
    """F2 stops fetching: after replica.lag.time.max.ms the leader proposes an ISR without it;
    once the controller accepts, the HW moves past F2 and the parked acks=all wait completes."""
    async def scenario() -> None:
        host = Host()
        p = lead(logs, host, min_isr=2)
        result = p.append_records(batch(b"x"), acks=-1)
        assert result.partition is p
        delayed = DelayedProduce()
        delayed.add(p, result.required_offset, 0)
        follower_fetch(p, F1, 1)
        assert p.plog.high_watermark == 0
        host.now += LAG_MS + 1
        follower_fetch(p, F1, 1)  # F1 keeps up
        proposal = p.state.maybe_shrink_isr(host.now)
        assert proposal is not None and proposal.new_isr == (LEADER, F1)
        p.leader_changed(p.state.on_alter_partition_response(proposal, 0, isr=(LEADER, F1), leader_epoch=EPOCH,
                                                             partition_epoch=1, now_ms=host.now))
        assert await delayed.start(5) == []  # no failure
        assert p.plog.high_watermark == 1

    asyncio.run(scenario())


def test_a_caught_up_follower_is_proposed_back_into_the_isr(logs: LogManager) -> None:
    host = Host()
    p = lead(logs, host, isr=(LEADER, F1), min_isr=1)
    p.append_records(batch(b"a", b"b"), acks=1)
    follower_fetch(p, F1, 2)
    assert p.plog.high_watermark == 2 and host.proposals == []
    follower_fetch(p, F2, 2)  # F2 reached the HW in this leader epoch
    assert [x.new_isr for x in host.proposals] == [(LEADER, F1, F2)]
    assert p.state.maximal_isr == {LEADER, F1, F2}  # counted for the HW while the change is pending


def test_the_isr_of_one_commits_at_once_and_answers_after_append(logs: LogManager) -> None:
    """A single node (one voter, RF=1): acks=all is answered without waiting."""
    async def scenario() -> None:
        p = lead(logs, Host(), replicas=(LEADER,), isr=(LEADER,), min_isr=1)
        result = p.append_records(batch(b"x"), acks=-1)
        assert result.partition is None  # already replicated: answered without a wait
        assert (result.error, result.base_offset, p.plog.high_watermark) == (ErrorCode.none, 0, 1)
        assert p.waits == {} and len(p.waiters) == 0

    asyncio.run(scenario())


def test_leader_epoch_checks_of_fetch(logs: LogManager) -> None:
    p = lead(logs, Host(), isr=(LEADER,), min_isr=1)
    p.append_records(batch(b"a"), acks=1)
    assert p.read(0, 1 << 20, current_leader_epoch=EPOCH - 1).error == ErrorCode.fenced_leader_epoch
    assert p.read(0, 1 << 20, current_leader_epoch=EPOCH + 1).error == ErrorCode.unknown_leader_epoch
    ok = p.read(0, 1 << 20, current_leader_epoch=EPOCH)
    assert ok.error == ErrorCode.none and values(ok.records) == [b"a"]
    assert values(p.read(0, 1 << 20).records) == [b"a"]  # -1: not checked
    stale = p.read(0, 1 << 20, current_leader_epoch=EPOCH - 1)
    assert stale.answer_now and stale.records == b""


def test_a_follower_with_a_diverging_epoch_is_told_where_to_truncate(logs: LogManager) -> None:
    p = lead(logs, Host(), isr=(LEADER, F1), min_isr=1)
    p.append_records(batch(b"a", b"b"), acks=1)
    # F1 says its last batch was of epoch EPOCH - 1 (unknown here): it must truncate first
    result = p.read(2, 1 << 20, replica_id=F1, current_leader_epoch=EPOCH, last_fetched_epoch=EPOCH - 1)
    assert result.answer_now and result.records == b""
    assert result.diverging_epoch is not None and result.diverging_epoch["epoch"] < EPOCH
    # newer than any epoch of this log: where it ends cannot be told -> OFFSET_OUT_OF_RANGE, as Kafka
    # answers (a diverging epoch of (-1, -1) is the field's default: the wire would drop it)
    newer = p.read(2, 1 << 20, replica_id=F1, current_leader_epoch=EPOCH, last_fetched_epoch=EPOCH + 3)
    assert (newer.error, newer.answer_now, newer.diverging_epoch, newer.records) == (
        ErrorCode.offset_out_of_range, True, None, b"")
    # below the log start: out of range whether or not the epochs diverge
    assert p.read(2, 1 << 20, replica_id=F1, current_leader_epoch=EPOCH, last_fetched_epoch=EPOCH).error == 0
    p.plog.delete_records_before(2)
    below = p.read(1, 1 << 20, replica_id=F1, current_leader_epoch=EPOCH, last_fetched_epoch=EPOCH - 1)
    assert (below.error, below.answer_now, below.diverging_epoch) == (ErrorCode.offset_out_of_range, True, None)


def test_a_follower_fetching_in_the_latest_epoch_reads_moves_the_hw_and_completes_waits(logs: LogManager) -> None:
    """The fetcher's usual fetch names the leader's latest epoch as its last fetched one: no
    divergence below the log end, nothing read at the log end, and the wait completes when
    the last ISR follower's fetch moves the HW (not on a re-read that moves nothing)."""
    async def scenario() -> None:
        host = Host()
        p = lead(logs, host)
        result = p.append_records(batch(b"x"), acks=-1)
        delayed = DelayedProduce()
        delayed.add(p, result.required_offset, "slot")
        answered: list[object] = []
        delayed.start(5).sink(lambda value, exc: answered.append(value))

        def fetch(replica: int, offset: int) -> Any:
            return p.read(offset, 1 << 20, replica_id=replica, current_leader_epoch=EPOCH, last_fetched_epoch=EPOCH)

        got = fetch(F1, 0)
        assert (got.error, got.diverging_epoch, values(got.records), got.high_watermark) == (ErrorCode.none, None,
                                                                                             [b"x"], 0)
        at_end = fetch(F1, 1)
        assert (at_end.error, at_end.records, at_end.answer_now, at_end.high_watermark) == (ErrorCode.none, b"",
                                                                                           False, 0)
        assert fetch(F1, 1).records == b"" and answered == []  # a re-read: F2 has not got it
        fetch(F2, 1)
        assert answered == [[]]  # answered inside the fetch that moved the HW: no failures
        assert (result.error, p.plog.high_watermark, host.hw_moves) == (ErrorCode.none, 1, [p.tp])
        ahead = fetch(F2, 2)  # past the log end in the latest epoch: told where that epoch ends
        assert ahead.answer_now and ahead.diverging_epoch == {"epoch": EPOCH, "end_offset": 1}

    asyncio.run(scenario())


def test_an_isr_shrunk_by_the_controller_publishes_the_high_watermark_it_allows(logs: LogManager) -> None:
    """The controller drops a lagging follower from the ISR (a registration, e.g. after fencing
    its broker): the HW the smaller ISR allows reaches the log at once, so consumers read what
    the remaining ISR has without waiting for another append."""
    host = Host()
    p = lead(logs, host)
    p.append_records(batch(b"a", b"b"), acks=1)
    follower_fetch(p, F1, 2)  # F1 has both records, F2 nothing
    assert p.plog.high_watermark == 0
    # as ReplicaManager._become_leader applies a registration of this node's partition
    assert p.state.update_registration(EPOCH, 1, (LEADER, F1, F2), (LEADER, F1), host.now)
    p.leader_changed(p.state.on_leader_append(p.plog.log_end_offset, host.now))
    assert p.plog.high_watermark == 2 and host.hw_moves == [p.tp]
    assert values(p.read(0, 1 << 20).records) == [b"a", b"b"]


def test_a_follower_replica_refuses_appends_and_serves_kip392_consumers(logs: LogManager) -> None:
    host = Host()
    info = logs.create_topic("f", 1, {})
    plog = logs.get_log("f", 0)
    assert plog is not None
    p = Partition(TopicPartition("f", 0), info.topic_id, plog, host,
                  follower_state=FollowerPartitionState("f", 0, F1, EPOCH, 0, 0, 0))
    assert p.append_records(batch(b"x"), acks=1).error == ErrorCode.not_leader_or_follower
    assert p.read(0, 1 << 20).error == ErrorCode.not_leader_or_follower  # Fetch < v11: go to the leader
    assert p.read(0, 1 << 20, follower_reads=True).error == ErrorCode.none
    assert p.read(0, 1 << 20, follower_reads=True, replica_id=F2).error == ErrorCode.not_leader_or_follower


def test_a_consumer_in_another_rack_is_sent_to_its_preferred_read_replica(logs: LogManager) -> None:
    host = Host()
    p = lead(logs, host, isr=(LEADER,), min_isr=1)
    p.append_records(batch(b"a"), acks=1)
    host.preferred = F2
    redirected = p.read(0, 1 << 20, client_rack="b", follower_reads=True)
    assert (redirected.preferred_read_replica, redirected.records, redirected.answer_now) == (F2, b"", True)
    assert values(p.read(0, 1 << 20, client_rack="b").records) == [b"a"]  # Fetch < v11: no redirection


def test_losing_leadership_answers_parked_waits(logs: LogManager) -> None:
    async def scenario() -> None:
        p = lead(logs, Host())
        result = p.append_records(batch(b"x"), acks=-1)
        delayed = DelayedProduce()
        delayed.add(p, result.required_offset, 0)
        p.fail_waits()
        assert await delayed.start(5) == [(0, ErrorCode.not_leader_or_follower)]

    asyncio.run(scenario())


def test_an_invalid_batch_is_refused_with_its_error_and_nothing_is_appended(logs: LogManager) -> None:
    p = lead(logs, Host(), isr=(LEADER,), min_isr=1)
    good = bytearray(batch(b"a"))
    good[-1] ^= 0xFF  # breaks the CRC
    refused = p.append_records(bytes(good), acks=1, origin="127.0.0.1")
    assert refused.error == ErrorCode.corrupt_message and refused.message
    assert p.plog.log_end_offset == 0


def test_topic_ids_are_kept(logs: LogManager) -> None:
    p = lead(logs, Host(), topic="named")
    assert isinstance(p.topic_id, uuid.UUID) and p.topic_id == logs.topics()["named"].topic_id
