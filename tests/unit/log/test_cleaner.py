"""Log compaction on real files: what survives, offsets, tombstones, lag/ratio, codecs."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from suoi.log.cleaner import LogCleaner
from suoi.log.cleaner_files import read_checkpoint
from suoi.log.config import LogConfig
from suoi.log.partition_log import PartitionLog
from suoi.protocol.records import (
    InvalidRecordError,
    SimpleRecord,
    build_batch,
    iter_batches,
    iter_records,
)
from tests.unit.log.log_helpers import Clock, OpenLog

COMPACT = {"cleanup_policy": ("compact",), "segment_bytes": 10_000_000}
DAY = 86_400_000


def C(**kw: object) -> dict[str, object]:
    return {**COMPACT, **kw}


def put(log: PartitionLog, *pairs: tuple[bytes | None, bytes | None], ts: int = 1000, **kw: object) -> int:
    """Append one batch; returns its base offset."""
    return log.append(build_batch(list(pairs), timestamp_ms=ts, **kw)).base_offset  # type: ignore[arg-type]


def contents(log: PartitionLog, start: int | None = None) -> list[tuple[int, bytes | None, bytes | None]]:
    data = log.read(log.log_start_offset if start is None else start, 1 << 30)
    return [(r.offset, r.key, r.value) for r in iter_records(data)]  # type: ignore[misc]


def latest(log_records: list[tuple[int, bytes | None, bytes | None]]) -> dict[bytes | None, tuple[int, bytes | None]]:
    out: dict[bytes | None, tuple[int, bytes | None]] = {}
    for off, k, v in log_records:
        out[k] = (off, v)
    return out


def fill(log: PartitionLog, rounds: int = 5, keys: int = 4, roll_every: int = 1) -> None:
    """``rounds`` batches each updating every key, rolling after each ``roll_every`` batches."""
    for r in range(rounds):
        put(log, *[(b"k%d" % k, b"v%d-%d" % (k, r)) for k in range(keys)])
        if (r + 1) % roll_every == 0:
            log.roll()


@pytest.fixture
def cleaner() -> LogCleaner:
    return LogCleaner()


def test_keeps_latest_value_per_key_at_original_offsets(open_log: OpenLog, cleaner: LogCleaner, clock: Clock) -> None:
    log = open_log(**COMPACT)
    fill(log, rounds=5, keys=4)
    put(log, (b"k0", b"active"))  # active segment
    before = contents(log)
    active_before = log.segments[-1]
    result = cleaner.clean(log, clock.now)
    assert result is not None and result.records_removed == 16
    after = contents(log)
    # every key keeps only its latest value, at the offset it was written at
    assert after == [(16, b"k0", b"v0-4"), (17, b"k1", b"v1-4"), (18, b"k2", b"v2-4"), (19, b"k3", b"v3-4"),
                     (20, b"k0", b"active")]
    assert latest(after) == latest(before)
    assert log.segments[-1] is active_before and log.log_end_offset == 21
    # the five sealed segments were grouped into one
    assert len(log.segments) == 2 and log.segments[0].base_offset == 0


def test_fetch_at_removed_offset_returns_next_retained(open_log: OpenLog, cleaner: LogCleaner, clock: Clock) -> None:
    log = open_log(**C(segment_bytes=200))  # keep segments from being grouped much
    fill(log, rounds=6, keys=3)
    put(log, (b"x", b"y"))
    cleaner.clean(log, clock.now)
    assert contents(log, 0)[0][0] == 15
    for off in range(0, 19):
        got = contents(log, off)
        assert got and got[0][0] >= 15 and got[-1][0] == 18
    assert log.read(5, 1 << 20) != b""


def test_reopen_after_cleaning_reads_the_same(open_log: OpenLog, cleaner: LogCleaner, clock: Clock) -> None:
    log = open_log(**C(segment_bytes=250))
    fill(log, rounds=8, keys=3)
    cleaner.clean(log, clock.now)
    expected = contents(log)
    bases = [s.base_offset for s in log.segments]
    log.close()
    log2 = open_log(**C(segment_bytes=250))
    assert contents(log2) == expected and [s.base_offset for s in log2.segments] == bases
    assert log2.log_end_offset == 24 and log2.log_start_offset == 0


def test_active_segment_is_never_cleaned(open_log: OpenLog, cleaner: LogCleaner, clock: Clock) -> None:
    log = open_log(**COMPACT)
    for r in range(5):
        put(log, (b"k", b"%d" % r))
    assert cleaner.clean(log, clock.now, force=True) is None
    assert len(contents(log)) == 5


def test_checkpoint_is_persisted_and_clean_logs_are_not_due(open_log: OpenLog, cleaner: LogCleaner,
                                                            clock: Clock, tmp_path: Path) -> None:
    log = open_log(**COMPACT)
    fill(log, rounds=4, keys=2)
    assert cleaner.clean(log, clock.now) is not None
    assert read_checkpoint(tmp_path / "t-0").first_dirty_offset == 8
    assert cleaner.plan(log, clock.now) is None  # nothing dirty
    # one new dirty segment: dirty 2 batches vs 1 clean -> ratio 0.67 > 0.5
    fill(log, rounds=2, keys=2)
    plan = cleaner.plan(log, clock.now)
    assert plan is not None and plan.first_dirty_offset == 8
    plan.close()


def test_dirty_ratio_threshold(open_log: OpenLog, cleaner: LogCleaner, clock: Clock) -> None:
    log = open_log(**C(min_cleanable_dirty_ratio=0.9))
    fill(log, rounds=3, keys=2)
    assert cleaner.clean(log, clock.now) is not None  # everything dirty: ratio 1.0
    fill(log, rounds=1, keys=2)  # now dirty/total = 1/2
    assert cleaner.plan(log, clock.now) is None
    fill(log, rounds=9, keys=2)  # 10 dirty vs 1 clean -> 0.91
    assert cleaner.clean(log, clock.now) is not None
    assert [v for _, _, v in contents(log)] == [b"v0-8", b"v1-8"]


def test_min_compaction_lag(open_log: OpenLog, cleaner: LogCleaner, clock: Clock) -> None:
    now = clock.now
    log = open_log(**C(min_compaction_lag_ms=60_000))
    put(log, (b"k", b"old"), ts=now - 120_000)
    log.roll()
    put(log, (b"k", b"recent"), ts=now - 10_000)
    log.roll()
    put(log, (b"k", b"active"), ts=now)
    result = cleaner.clean(log, now, force=True)
    # only the first segment is old enough; the record in it is its own latest within that range
    assert result is not None and result.end_offset == 1
    assert [v for _, _, v in contents(log)] == [b"old", b"recent", b"active"]
    clock.advance(60_000)
    assert cleaner.clean(log, clock.now) is not None
    assert [v for _, _, v in contents(log)] == [b"recent", b"active"]


def test_tombstones_kept_until_delete_retention_then_removed(open_log: OpenLog, cleaner: LogCleaner,
                                                            clock: Clock, tmp_path: Path) -> None:
    log = open_log(**C(delete_retention_ms=DAY))
    put(log, (b"a", b"1"), (b"b", b"1"))
    log.roll()
    put(log, (b"a", None), (b"b", b"2"))
    log.roll()
    put(log, (b"c", b"active"))
    cleaner.clean(log, clock.now)
    assert contents(log) == [(2, b"a", None), (3, b"b", b"2"), (4, b"c", b"active")]
    # the tombstone's batch now carries the delete horizon (KIP-534)
    headers = [h for _, h in iter_batches(log.read(0, 1 << 20))]
    assert headers[0].has_delete_horizon and headers[0].base_timestamp == clock.now + DAY
    assert read_checkpoint(tmp_path / "t-0").delete_horizon_ms == clock.now + DAY
    # record timestamps survive the re-encoding relative to the horizon
    assert [r.timestamp_ms for r in iter_records(log.read(2, 1 << 20))][:2] == [1000, 1000]

    clock.advance(DAY - 1)
    assert cleaner.plan(log, clock.now) is None  # horizon not reached, nothing dirty
    cleaner.clean(log, clock.now, force=True)
    assert (2, b"a", None) in contents(log)
    clock.advance(1)
    assert cleaner.clean(log, clock.now) is not None  # due because the horizon passed
    assert contents(log) == [(3, b"b", b"2"), (4, b"c", b"active")]
    assert read_checkpoint(tmp_path / "t-0").delete_horizon_ms == -1


def test_unchanged_batches_are_copied_byte_for_byte(open_log: OpenLog, cleaner: LogCleaner, clock: Clock) -> None:
    log = open_log(**COMPACT)
    put(log, (b"a", b"1"), (b"b", b"1"))
    put(log, (b"c", b"1"), (b"d", b"1"))
    log.roll()
    put(log, (b"a", b"2"))
    log.roll()
    raw_before = log.read(2, 1 << 20, max_offset=4)
    cleaner.clean(log, clock.now)
    assert log.read(2, 1 << 20, max_offset=4) == raw_before
    assert contents(log) == [(1, b"b", b"1"), (2, b"c", b"1"), (3, b"d", b"1"), (4, b"a", b"2")]


@pytest.mark.parametrize("codec", [1, 2, 3, 4])
def test_compressed_batches_are_filtered_and_reencoded(open_log: OpenLog, cleaner: LogCleaner,
                                                       clock: Clock, codec: int) -> None:
    log = open_log(**COMPACT)
    recs = [SimpleRecord(b"k%d" % (i % 3), b"v%d" % i, 1000 + i, (("h", b"x"),)) for i in range(9)]
    log.append(build_batch(recs, compression=codec, producer_id=7, producer_epoch=2, base_sequence=0))
    log.roll()
    put(log, (b"other", b"x"))
    log.roll()
    cleaner.clean(log, clock.now)
    batches = list(iter_batches(log.read(0, 1 << 20)))
    h = batches[0][1]
    assert h.compression == codec and h.base_offset == 0 and h.last_offset == 8
    assert (h.producer_id, h.producer_epoch, h.base_sequence, h.records_count) == (7, 2, 0, 3)
    got = list(iter_records(log.read(0, 1 << 20)))
    assert [(r.offset, r.key, r.value, r.timestamp_ms, r.headers) for r in got[:3]] == [
        (6, b"k0", b"v6", 1006, (("h", b"x"),)), (7, b"k1", b"v7", 1007, (("h", b"x"),)),
        (8, b"k2", b"v8", 1008, (("h", b"x"),))]
    assert h.max_timestamp == 1008


def test_log_append_time_batches_keep_their_timestamp(open_log: OpenLog, cleaner: LogCleaner, clock: Clock) -> None:
    log = open_log(**C(message_timestamp_type="LogAppendTime"))
    put(log, (b"a", b"1"), (b"a", b"2"), (b"b", b"1"))
    log.roll()
    put(log, (b"x", b"x"))
    log.roll()
    cleaner.clean(log, clock.now)
    got = list(iter_records(log.read(0, 1 << 20)))
    assert [(r.offset, r.timestamp_ms) for r in got] == [(1, clock.now), (2, clock.now), (3, clock.now)]
    h = next(iter_batches(log.read(0, 1 << 20)))[1]
    assert h.timestamp_type == 1 and h.last_offset == 2


def test_control_batches_are_kept(open_log: OpenLog, cleaner: LogCleaner, clock: Clock) -> None:
    log = open_log(**COMPACT)
    put(log, (b"a", b"1"), producer_id=5, producer_epoch=0, base_sequence=0, is_transactional=True)
    marker = SimpleRecord(b"\x00\x00\x00\x01", b"\x00\x00\x00\x00\x00\x00")  # COMMIT
    # the marker ends producer 5's transaction (committed: its record is data; an open one is never cleaned)
    log.append(build_batch([marker], producer_id=5, producer_epoch=0, is_transactional=True, is_control=True))
    log.roll()
    put(log, (b"a", b"2"))
    log.roll()
    cleaner.clean(log, clock.now)
    headers = [h for _, h in iter_batches(log.read(0, 1 << 20))]
    assert [h.base_offset for h in headers if h.is_control] == [1]
    assert [(o, v) for o, _, v in contents(log) if o != 1] == [(2, b"2")]


def test_last_batch_of_an_active_producer_is_kept_header_only(open_log: OpenLog, cleaner: LogCleaner,
                                                              clock: Clock) -> None:
    log = open_log(**COMPACT)
    put(log, (b"a", b"1"), (b"b", b"1"), producer_id=9, producer_epoch=1, base_sequence=0)
    put(log, (b"z", b"z"))
    log.roll()
    put(log, (b"a", b"2"), (b"b", b"2"))
    log.roll()
    cleaner.clean(log, clock.now)
    headers = [h for _, h in iter_batches(log.read(0, 1 << 20))]
    empty = headers[0]
    assert (empty.base_offset, empty.last_offset, empty.records_count) == (0, 1, 0)
    assert (empty.producer_id, empty.producer_epoch, empty.base_sequence) == (9, 1, 0)
    # a restart rebuilding producer state from the log still knows the sequence
    log.close()
    log2 = open_log(**COMPACT)
    assert log2.producer_state.producers[9].last_seq == 1


def test_null_keys_are_rejected_on_produce_and_dropped_by_cleaning(open_log: OpenLog, cleaner: LogCleaner,
                                                                  clock: Clock) -> None:
    log = open_log(cleanup_policy=("delete",))
    put(log, (None, b"no key"), (b"k", b"1"))  # fine while the topic is not compacted
    log.roll()
    put(log, (b"x", b"x"))
    log.config = LogConfig(**COMPACT)  # AlterConfigs to compact
    with pytest.raises(InvalidRecordError, match="without key"):
        log.append(build_batch([(b"k", b"2"), (None, b"v")]))
    cleaner.clean(log, clock.now)
    assert contents(log) == [(1, b"k", b"1"), (2, b"x", b"x")]


def test_commit_is_discarded_if_segments_changed(open_log: OpenLog, cleaner: LogCleaner, clock: Clock,
                                                 tmp_path: Path) -> None:
    log = open_log(cleanup_policy=("compact", "delete"), retention_ms=1000, segment_bytes=10_000_000)
    fill(log, rounds=3, keys=2)
    put(log, (b"k0", b"active"), ts=clock.now)
    plan = cleaner.plan(log, clock.now)
    assert plan is not None
    result = cleaner.build(plan)
    assert list((tmp_path / "t-0").glob("*.cleaned"))
    assert log.apply_retention(clock.now) == 3  # the planned segments expire meanwhile
    assert cleaner.commit(log, result) is False
    assert not list((tmp_path / "t-0").glob("*.cleaned"))
    assert contents(log) == [(6, b"k0", b"active")]


def test_build_in_a_worker_thread_while_appending(open_log: OpenLog, cleaner: LogCleaner, clock: Clock) -> None:
    log = open_log(**C(segment_bytes=300))
    fill(log, rounds=10, keys=3)
    plan = cleaner.plan(log, clock.now)
    assert plan is not None
    out: list[object] = []
    t = threading.Thread(target=lambda: out.append(cleaner.build(plan)))
    t.start()
    for i in range(50):  # the "event loop" keeps appending and rolling meanwhile
        put(log, (b"k%d" % (i % 3), b"new%d" % i))
    t.join()
    assert cleaner.commit(log, out[0]) is True  # type: ignore[arg-type]
    got = latest(contents(log))
    assert {k: v for k, (_, v) in got.items()} == {b"k0": b"new48", b"k1": b"new49", b"k2": b"new47"}
    assert log.log_end_offset == 80
