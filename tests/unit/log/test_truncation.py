"""Replica groundwork on the partition log: follower appends, truncate_to, the high watermark."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from suoi.log.config import LogConfig
from suoi.log.errors import OffsetOutOfRangeError, TruncationBelowHighWatermarkError, UnexpectedAppendOffsetError
from suoi.log.leader_epoch import CHECKPOINT_FILE
from suoi.log.partition_log import PartitionLog
from suoi.log.producer_state import snapshot_offsets
from suoi.protocol.records import CorruptRecordError, build_batch, iter_batches, verify_crc
from tests.unit.log.log_helpers import Clock, OpenLog, batch
from tests.unit.log.test_txn_log import plain, txn, txnindex_entries


def leader_log(tmp_path: Path, clock: Clock, **cfg: object) -> PartitionLog:
    return PartitionLog.open(tmp_path / "leader-0", "leader", 0, LogConfig(**cfg), now_ms=clock)  # type: ignore[arg-type]


def offsets(log: PartitionLog, start: int = 0) -> list[tuple[int, int]]:
    data = log.read(start, 1 << 24, max_offset=log.log_end_offset)
    return [(h.base_offset, h.last_offset) for _, h in iter_batches(data)]


def many(log: PartitionLog, n: int, *, epoch: int | None = None, ts0: int = 1000) -> None:
    for i in range(n):
        log.append(batch(2, ts=ts0 + 10 * i, payload=40, tag=i), leader_epoch=epoch)


# ---------------------------------------------------------------- follower appends

def test_follower_copies_the_leaders_batches(tmp_path: Path, clock: Clock, open_log: OpenLog) -> None:
    leader = leader_log(tmp_path, clock, segment_bytes=400)
    many(leader, 3, epoch=1)
    many(leader, 3, epoch=3)
    txn(leader, 9)
    follower = open_log(segment_bytes=400)
    follower.hw_follows_leo = False
    fetched = leader.read(0, 250)
    info = follower.append_as_follower(fetched)
    assert info.base_offset == 0 and info.last_offset == follower.log_end_offset - 1
    follower.append_as_follower(leader.read(follower.log_end_offset, 1 << 20))
    assert follower.log_end_offset == leader.log_end_offset
    assert follower.read(0, 1 << 20, max_offset=follower.log_end_offset) == leader.read(0, 1 << 20)
    assert follower.high_watermark == 0  # owned by the replication layer
    assert follower.set_high_watermark(10**6) == follower.log_end_offset
    assert follower.leader_epoch_cache.entries == leader.leader_epoch_cache.entries == [(1, 0), (3, 6)]
    assert follower.producer_state.ongoing_txns == {9: 12}
    assert follower.describe_producers() == leader.describe_producers()
    leader.close()


def test_follower_append_contiguity_errors(tmp_path: Path, clock: Clock, open_log: OpenLog) -> None:
    leader = leader_log(tmp_path, clock)
    many(leader, 4)  # batches 0-1, 2-3, 4-5, 6-7
    follower = open_log()
    first, second, third, fourth = (bytes(leader.read(o, 1, max_offset=8)) for o in (0, 2, 4, 6))
    with pytest.raises(UnexpectedAppendOffsetError, match="expected 0"):
        follower.append_as_follower(second)  # does not start at the LEO
    with pytest.raises(UnexpectedAppendOffsetError, match="previous batch"):
        follower.append_as_follower(first + third)  # gap between batches
    with pytest.raises(UnexpectedAppendOffsetError):
        follower.append_as_follower(first + first)  # overlap
    corrupt = bytearray(first)
    corrupt[-1] ^= 0xFF
    with pytest.raises(CorruptRecordError):
        follower.append_as_follower(corrupt)
    assert follower.log_end_offset == 0 and follower.size_in_bytes == 0
    follower.append_as_follower(first + second)
    with pytest.raises(UnexpectedAppendOffsetError):
        follower.append_as_follower(second)
    follower.append_as_follower(third + fourth)
    assert offsets(follower) == [(0, 1), (2, 3), (4, 5), (6, 7)]
    leader.close()


def test_compacted_follower_accepts_gaps(tmp_path: Path, clock: Clock, open_log: OpenLog) -> None:
    leader = leader_log(tmp_path, clock)
    many(leader, 3)
    follower = open_log(cleanup_policy="compact")
    follower.append_as_follower(leader.read(0, 1, max_offset=8) + leader.read(4, 1, max_offset=8))
    assert offsets(follower) == [(0, 1), (4, 5)] and follower.log_end_offset == 6
    leader.close()


# ---------------------------------------------------------------- truncation

def test_truncate_across_segment_boundaries(open_log: OpenLog) -> None:
    log = open_log(segment_bytes=400, index_interval_bytes=1)
    many(log, 4, epoch=1)
    many(log, 8, epoch=2, ts0=5000)
    bases = [s.base_offset for s in log.segments]
    assert len(bases) >= 4
    log.set_high_watermark(0)
    log.hw_follows_leo = False
    target = bases[1] + 2  # a batch boundary inside the second segment
    assert log.truncate_to(target) == target
    assert [s.base_offset for s in log.segments] == bases[:2]
    assert log.log_end_offset == target and offsets(log)[-1] == (target - 2, target - 1)
    assert sorted(p.name for p in log.directory.glob("*.log")) == [f"{b:020d}.log" for b in bases[:2]]
    assert log.leader_epoch_cache.entries == [(1, 0)]
    # time lookups only see what is left
    log.set_high_watermark(target)
    assert log.offset_for_timestamp(1010) == (2, 1010)
    assert log.offset_for_timestamp(5000) is None
    assert log.max_timestamp()[0] == 1000 + 10 * (target // 2 - 1)
    # appends continue from the new end, and a reopen agrees
    log.append(batch(2, ts=9000), leader_epoch=3)
    assert log.leader_epoch_cache.entries == [(1, 0), (3, target)]
    end = log.log_end_offset
    log.close()
    again = open_log(segment_bytes=400, index_interval_bytes=1)
    assert again.log_end_offset == end
    assert offsets(again)[-2:] == [(target - 2, target - 1), (target, target + 1)]
    assert again.offset_for_timestamp(9000) == (target, 9000)
    assert again.leader_epoch_cache.entries == [(1, 0), (3, target)]


def test_truncate_mid_batch_drops_the_whole_batch_and_to_a_segment_base(open_log: OpenLog) -> None:
    log = open_log(segment_bytes=400)
    many(log, 8)
    log.set_high_watermark(0)
    assert log.truncate_to(5) == 4
    assert log.truncate_to(100) == 4  # beyond the end: nothing to do
    base = log.segments[-1].base_offset
    if base > 0:
        assert log.truncate_to(base) == base
        assert log.segments[-1].size == 0 and log.segments[-1].base_offset == base
    assert log.truncate_to(0) == 0
    assert len(log.segments) == 1 and log.size_in_bytes == 0
    log.append(batch(1))
    assert offsets(log) == [(0, 0)]


def test_truncate_at_the_log_end_drops_an_epoch_led_without_writing(open_log: OpenLog) -> None:
    """A replica led epoch 1 from its log end and wrote nothing, then follows a leader whose log
    has no epoch 1: the truncation point is its log end. The epoch must go even so, or it stays
    the follower's last fetched epoch and every Fetch gets a diverging epoch back (Kafka's
    truncateTo does the same; the nemesis test's follower that never caught up)."""
    log = open_log()
    many(log, 3, epoch=0)
    log.leader_epoch_cache.assign(1, log.log_end_offset, durable=False)  # makeLeader, no append
    assert log.truncate_to(log.log_end_offset + 5) == 6  # past the end: no record goes
    assert log.leader_epoch_cache.entries == [(0, 0)] and log.leader_epoch_cache.latest_epoch == 0
    assert offsets(log) == [(0, 1), (2, 3), (4, 5)]
    log.leader_epoch_cache.assign(2, log.log_end_offset, durable=False)
    assert log.truncate_to(log.log_end_offset) == 6
    assert log.leader_epoch_cache.entries == [(0, 0)]


def test_truncate_respects_the_high_watermark_and_log_start(open_log: OpenLog) -> None:
    log = open_log(segment_bytes=400)
    many(log, 6)
    assert log.high_watermark == 12
    with pytest.raises(TruncationBelowHighWatermarkError):
        log.truncate_to(8)
    log.set_high_watermark(8)
    assert log.high_watermark == 8
    with pytest.raises(TruncationBelowHighWatermarkError):
        log.truncate_to(7)  # mid-batch: would remove offset 6
    assert log.truncate_to(8) == 8 and log.high_watermark == 8
    assert log.truncate_to(4, force=True) == 4 and log.high_watermark == 4
    log.delete_records_before(2)
    with pytest.raises(OffsetOutOfRangeError):
        log.truncate_to(1, force=True)
    assert log.set_high_watermark(0) == 2  # clamped to [log start, log end]


def test_producer_state_and_txn_index_after_truncation(open_log: OpenLog) -> None:
    log = open_log(segment_bytes=600)
    txn(log, 1)                          # 0-1  producer 1 txn
    plain(log)                           # 2
    txn(log, 2)                          # 3-4  producer 2 txn
    abort1 = log.append_control(1, 0, False, 0).base_offset  # 5: ABORT of producer 1
    log.roll()
    txn(log, 3, transactional=False)     # 6-7  idempotent producer 3 (seq 0-1)
    cut = log.log_end_offset
    txn(log, 3, transactional=False)     # 8-9  seq 2-3
    log.append_control(2, 0, False, 0)   # 10: ABORT of producer 2
    assert len(txnindex_entries(log)) == 2
    log.set_high_watermark(0)
    log.truncate_to(cut)
    assert txnindex_entries(log) == [(0, 1, 0, abort1, 3)]
    assert log.producer_state.ongoing_txns == {2: 3}  # its abort was truncated
    assert log.last_stable_offset == 0  # HW 0
    assert [(p.producer_id, p.last_sequence) for p in log.describe_producers() if p.producer_id == 3] == [(3, 1)]
    assert all(o <= cut for o in snapshot_offsets(log.directory))
    # the retry of the truncated batch (seq 2-3) is appended again, not answered as a duplicate
    info = log.append(build_batch([(None, b"a"), (None, b"b")], producer_id=3, producer_epoch=0, base_sequence=2))
    assert info.base_offset == cut and info.record_count == 2
    log.close()
    again = open_log(segment_bytes=600)
    assert again.producer_state.ongoing_txns == {2: 3}
    assert txnindex_entries(again) == [(0, 1, 0, abort1, 3)]


def test_recovery_after_a_crash_mid_truncation(open_log: OpenLog) -> None:
    log = open_log(segment_bytes=400, index_interval_bytes=1)
    many(log, 4, epoch=1)
    many(log, 6, epoch=2, ts0=5000)
    segs = list(log.segments)
    assert len(segs) >= 3
    victim = segs[1]
    target = victim.base_offset + 2
    pos = victim.locate(target)
    assert pos is not None
    log.close()
    # the crash: later segments already deleted (newest first), the .log of the segment
    # holding the cut truncated, but its indexes, the epoch checkpoint and producer
    # snapshots not yet updated
    for seg in segs[2:]:
        for suffix in (".log", ".index", ".timeindex"):
            (log.directory / f"{seg.base_offset:020d}{suffix}").unlink(missing_ok=True)
    os.truncate(victim.log_path, pos)
    assert "0\n2\n1 0\n" in (log.directory / CHECKPOINT_FILE).read_text()
    again = open_log(segment_bytes=400, index_interval_bytes=1)
    assert again.log_end_offset == target
    assert again.leader_epoch_cache.entries == [(1, 0)]
    data = again.read(0, 1 << 20)
    assert [h.base_offset for _, h in iter_batches(data)] == list(range(0, target, 2))
    assert all(verify_crc(data, p, h) for p, h in iter_batches(data))
    assert again.offset_for_timestamp(1000 + 10 * (target // 2 - 1)) == (target - 2, 1000 + 10 * (target // 2 - 1))
    assert all(o <= target for o in snapshot_offsets(again.directory))
    again.append(batch(1), leader_epoch=4)
    assert offsets(again)[-1] == (target, target)
