"""Log compaction of transactional records (found by tests/faults' compacted-topic workload with a
transactional writer): as Kafka's cleaner, records of an aborted transaction never count as a key's
latest value (they are removed), and nothing at or above the last stable offset is cleaned (a
transaction still open may yet abort). Before, an aborted write shadowed the key's committed value,
which cleaning then removed: read_committed consumers lost the key."""

from __future__ import annotations

import shutil
from pathlib import Path

from suoi.log.cleaner import LogCleaner
from suoi.log.cleaner_txn import AbortedRanges
from suoi.log.config import LogConfig
from suoi.log.partition_log import PartitionLog
from suoi.log.producer_state import SNAPSHOT_SUFFIX, snapshot_offsets
from suoi.log.txn_index import AbortedTxn
from suoi.log.txn_upgrade import TxnIndexCheck
from suoi.protocol.records import build_batch, iter_batches, iter_records
from tests.unit.log.log_helpers import Clock, OpenLog
from tests.unit.log.test_txn_upgrade import age

COMPACT = {"cleanup_policy": ("compact",), "segment_bytes": 10_000_000}


def put(log: PartitionLog, key: bytes, value: bytes, *, pid: int = -1, seq: int = -1) -> int:
    batch = build_batch([(key, value)], timestamp_ms=1000, producer_id=pid, producer_epoch=0 if pid >= 0 else -1,
                        base_sequence=seq, is_transactional=pid >= 0)
    return log.append(batch).base_offset


def committed_view(log: PartitionLog) -> dict[bytes, bytes]:
    """The latest value per key a read_committed consumer sees (aborted ranges filtered)."""
    data = log.read(log.log_start_offset, 1 << 30)
    aborted = log.aborted_transactions(log.log_start_offset, log.log_end_offset)
    ranges: dict[int, list[int]] = {}
    for a in aborted:
        ranges.setdefault(a.producer_id, []).append(a.first_offset)
    out: dict[bytes, bytes] = {}
    for pos, h in iter_batches(data):
        if h.is_control:
            if h.producer_id in ranges:  # an ABORT ends the aborted range that began before it
                ranges[h.producer_id] = [f for f in ranges[h.producer_id] if f > h.base_offset]
            continue
        if h.is_transactional and any(f <= h.base_offset for f in ranges.get(h.producer_id, [])):
            continue
        for r in iter_records(data[pos:pos + h.size]):
            assert r.key is not None and r.value is not None
            out[r.key] = r.value
    return out


def test_an_aborted_write_does_not_shadow_the_committed_value(open_log: OpenLog, clock: Clock) -> None:
    log = open_log(**COMPACT)
    put(log, b"a", b"committed")
    put(log, b"a", b"aborted", pid=5, seq=0)
    log.append_control(5, 0, False, 0)  # ABORT
    log.roll()
    put(log, b"z", b"z")
    log.roll()
    assert committed_view(log) == {b"a": b"committed", b"z": b"z"}
    result = LogCleaner().clean(log, clock.now, force=True)
    assert result is not None
    assert committed_view(log) == {b"a": b"committed", b"z": b"z"}
    values = [r.value for r in iter_records(log.read(0, 1 << 30))]
    assert b"aborted" not in values  # removed, as Kafka's cleaner discards aborted records
    assert b"committed" in values


def test_nothing_at_or_above_the_last_stable_offset_is_cleaned(open_log: OpenLog, clock: Clock) -> None:
    log = open_log(**COMPACT)
    put(log, b"a", b"committed")
    log.roll()
    put(log, b"a", b"open", pid=7, seq=0)  # a transaction still open: it may abort
    log.roll()
    put(log, b"a", b"plain-after")
    log.roll()
    put(log, b"z", b"z")
    assert log.last_stable_offset == 1
    LogCleaner().clean(log, clock.now, force=True)
    assert [r.value for r in iter_records(log.read(0, 1 << 30))][:1] == [b"committed"]
    log.append_control(7, 0, False, 0)  # it aborts
    log.roll()
    LogCleaner().clean(log, clock.now, force=True)
    assert committed_view(log) == {b"a": b"plain-after", b"z": b"z"}
    assert b"open" not in [r.value for r in iter_records(log.read(0, 1 << 30))]


def test_committed_transactional_writes_are_compacted_like_any_other(open_log: OpenLog, clock: Clock) -> None:
    log = open_log(**COMPACT)
    put(log, b"a", b"old")
    put(log, b"a", b"new", pid=3, seq=0)
    log.append_control(3, 0, True, 0)  # COMMIT
    log.roll()
    put(log, b"z", b"z")
    log.roll()
    LogCleaner().clean(log, clock.now, force=True)
    assert committed_view(log) == {b"a": b"new", b"z": b"z"}
    assert b"old" not in [r.value for r in iter_records(log.read(0, 1 << 30))]


def data_values(log: PartitionLog) -> list[bytes | None]:
    """The values of every data record in the log, in offset order (markers left out)."""
    data = log.read(log.log_start_offset, 1 << 30)
    return [r.value for pos, h in iter_batches(data) if not h.is_control for r in iter_records(data[pos:pos + h.size])]


def test_an_abort_whose_marker_is_past_the_cleaned_range_is_known_from_the_index(
    open_log: OpenLog, clock: Clock
) -> None:
    """The abort index is searched past the cleaned range (Kafka's collectAbortedTransactions):
    a transaction whose ABORT lies in the active segment is removed, and one whose COMMIT lies
    there is cleaned like any committed data (the range ends below the LSO: both are decided)."""
    log = open_log(**COMPACT)
    put(log, b"a", b"plain-1")
    put(log, b"a", b"aborted", pid=5, seq=0)
    put(log, b"b", b"plain-1")
    put(log, b"b", b"committed", pid=6, seq=0)
    log.roll()
    log.append_control(5, 0, False, 0)
    log.append_control(6, 0, True, 0)
    assert log.last_stable_offset == log.log_end_offset
    result = LogCleaner().clean(log, clock.now, force=True)
    assert result is not None and result.end_offset == 4
    assert data_values(log) == [b"plain-1", b"committed"]
    assert committed_view(log) == {b"a": b"plain-1", b"b": b"committed"}


def test_the_cleaner_after_an_old_replicas_abort_index_is_rebuilt(
    open_log: OpenLog, clock: Clock, tmp_path: Path
) -> None:
    """An abort index written by a version before the follower fix may miss entries; the cleaner,
    like a read_committed fetch, then takes the aborted write for committed data. `txn_upgrade`
    rebuilds such indexes at the first open (the producer snapshots say version 2), so the
    cleaner after the upgrade removes the aborted write and keeps the committed value."""
    log = open_log(**COMPACT)
    put(log, b"a", b"committed")
    put(log, b"a", b"aborted", pid=5, seq=0)
    log.append_control(5, 0, False, 0)
    put(log, b"b", b"committed", pid=6, seq=0)
    log.append_control(6, 0, True, 0)
    log.roll()
    put(log, b"z", b"z")
    log.close()
    age(log.directory)

    # what happens without the rebuild: the same files vouched for by a current snapshot
    unrepaired = tmp_path / "unrepaired-0"
    shutil.copytree(log.directory, unrepaired)
    for offset in snapshot_offsets(unrepaired):
        path = unrepaired / f"{offset:020d}{SNAPSHOT_SUFFIX}"
        path.write_text(path.read_text().replace('"version": 2', '"version": 3'))
    trusted = PartitionLog.open(unrepaired, "t", 0, LogConfig(**COMPACT), now_ms=clock)  # type: ignore[arg-type]
    try:
        assert trusted.txn_index_check is TxnIndexCheck.TRUSTED
        assert trusted.aborted_transactions(0, trusted.log_end_offset) == []
        assert LogCleaner().clean(trusted, clock.now, force=True) is not None
        assert data_values(trusted) == [b"aborted", b"committed", b"z"]  # a's committed value lost
        assert committed_view(trusted) == {b"a": b"aborted", b"b": b"committed", b"z": b"z"}
    finally:
        trusted.close()

    upgraded = PartitionLog.open(log.directory, "t", 0, LogConfig(**COMPACT), now_ms=clock)  # type: ignore[arg-type]
    try:
        assert upgraded.txn_index_check is TxnIndexCheck.REBUILT
        assert upgraded.aborted_transactions(0, upgraded.log_end_offset) == [AbortedTxn(5, 1, 2, 3)]
        assert LogCleaner().clean(upgraded, clock.now, force=True) is not None
        assert data_values(upgraded) == [b"committed", b"committed", b"z"]
        assert committed_view(upgraded) == {b"a": b"committed", b"b": b"committed", b"z": b"z"}
    finally:
        upgraded.close()


def test_aborted_ranges_answer_by_producer_and_inclusive_bounds() -> None:
    ranges = AbortedRanges([AbortedTxn(1, 10, 14, 15), AbortedTxn(2, 11, 20, 21), AbortedTxn(1, 30, 31, 32),
                            AbortedTxn(3, 100, 110, 111)], start=0, end=50)
    assert [o for o in range(0, 40) if ranges.aborted(1, o)] == [10, 11, 12, 13, 14, 30, 31]
    assert [o for o in range(0, 40) if ranges.aborted(2, o)] == list(range(11, 21))
    assert not ranges.aborted(3, 105)  # beyond the cleaned range: left out
    assert not ranges.aborted(4, 12) and ranges and not AbortedRanges()
