"""Log compaction of transactional records (found by tests/faults' compacted-topic workload with a
transactional writer): as Kafka's cleaner, records of an aborted transaction never count as a key's
latest value (they are removed), and nothing at or above the last stable offset is cleaned (a
transaction still open may yet abort). Before, an aborted write shadowed the key's committed value,
which cleaning then removed: read_committed consumers lost the key."""

from __future__ import annotations

from suoi.log.cleaner import LogCleaner
from suoi.log.partition_log import PartitionLog
from suoi.protocol.records import build_batch, iter_batches, iter_records
from tests.unit.log.log_helpers import Clock, OpenLog

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
