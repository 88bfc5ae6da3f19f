"""Sealed segments' index entries are bounded in memory (issue 19's soak): a rolled segment's
entries go to its index files at once and its columns are dropped (parked); a parked index
reads them back from its file on use, giving the answers it gave before, and only the sealed
indexes read most recently stay loaded (`SEALED`, an LRU). Nothing of a segment deleted by
retention stays referenced."""

from __future__ import annotations

import gc
import logging
import struct
import sys
import weakref
from array import array
from collections.abc import Iterator
from pathlib import Path

import pytest

from suoi.log.index import SEALED, OffsetIndex, columns
from suoi.protocol.records import iter_records
from tests.unit.log.log_helpers import Clock, OpenLog, batch

#: Small segments of 8 batches, each batch indexed (index.interval.bytes 1).
SEGMENT_BATCHES = 8


@pytest.fixture
def small_lru(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """3 sealed offset indexes' entries in memory at most (SEGMENT_BATCHES - 1 each; a read
    loads a segment's offset index only)."""
    monkeypatch.setattr(SEALED, "max_entries", 3 * (SEGMENT_BATCHES - 1))
    yield


def _fill(log, clock: Clock, segments: int) -> None:  # type: ignore[no-untyped-def]
    for i in range(segments * SEGMENT_BATCHES):
        log.append(batch(2, ts=clock.now, tag=i))
        clock.advance(10)


def _open(open_log: OpenLog, **extra: object):  # type: ignore[no-untyped-def]
    size = len(batch(2))
    return open_log(segment_bytes=size * SEGMENT_BATCHES, index_interval_bytes=1, **extra)


def _offsets(data: bytes | memoryview) -> list[int]:
    return [r.offset for r in iter_records(bytes(data))]  # type: ignore[misc]


def test_sealed_indexes_are_parked_and_read_back_within_the_bound(
        open_log: OpenLog, clock: Clock, small_lru: None) -> None:
    start = clock.now
    log = _open(open_log)
    _fill(log, clock, 10)
    sealed = log.segments[:-1]
    assert len(sealed) == 9
    assert all(s.offset_index.parked and s.time_index.parked for s in sealed)  # memory no longer grows with the log
    assert len(sealed[0].offset_index._keys) == 0 and len(SEALED) == 0
    assert not log.segments[-1].offset_index.parked
    # Reads anywhere in a parked segment find the same batches (the entries come back from the file).
    first = sealed[0]
    for offset in (3, 7, 9, 15):
        first._read_hints.clear()
        assert _offsets(log.read(offset, 1))[0] == offset - offset % 2
    assert not first.offset_index.parked and first.offset_index in SEALED
    assert first.offset_index.lookup(first.base_offset + 6) == (first.base_offset + 6, len(batch(2)) * 3)
    # Reads in four more segments: only the three read last stay in memory.
    for seg in sealed[1:5]:
        assert _offsets(log.read(seg.base_offset + 5, 1))[0] == seg.base_offset + 4
    assert [s.offset_index.parked for s in sealed[:5]] == [True, True, False, False, False]
    assert SEALED.entries <= SEALED.max_entries
    # ListOffsets by timestamp goes through the parked time indexes.
    assert log.offset_for_timestamp(start + 10 * 37)[0] == 74
    assert SEALED.entries <= SEALED.max_entries


def test_rolled_segment_entries_are_in_the_file_at_once(open_log: OpenLog, clock: Clock) -> None:
    log = _open(open_log)
    _fill(log, clock, 2)
    sealed = log.segments[0]
    on_disk = sealed.offset_index.path.stat().st_size
    assert on_disk == 8 * (SEGMENT_BATCHES - 1)  # no pending copy kept in memory until a flush
    assert not sealed.offset_index._pending and not sealed.time_index._pending
    assert sealed._recent_base == []  # the log-end shortcut is the active segment's only


def test_retention_leaves_nothing_of_deleted_segments_referenced(
        open_log: OpenLog, clock: Clock, small_lru: None) -> None:
    size = len(batch(2))
    log = _open(open_log, retention_ms=-1, retention_bytes=size * SEGMENT_BATCHES * 2)
    _fill(log, clock, 6)
    assert len(log.segments) == 6
    doomed_indexes = [weakref.ref(ix) for s in log.segments[:4] for ix in (s.offset_index, s.time_index)]
    # the segments held here and counted: after retention the only references are this list's (a weak
    # reference would do, but the mypyc build's native LogSegment takes none)
    doomed = list(log.segments[:4])
    assert log.apply_retention(clock.now) == 4
    gc.collect()
    assert [sys.getrefcount(doomed[i]) for i in range(4)] == [2] * 4  # the list's + the call's
    del doomed
    gc.collect()
    assert [r() for r in doomed_indexes] == [None] * 8
    assert SEALED.entries == sum(SEALED._loaded.values())
    assert _offsets(log.read(log.log_start_offset, 1))[0] == log.log_start_offset


def test_truncating_into_a_parked_segment_reads_it_back_and_appends_after(
        open_log: OpenLog, clock: Clock, small_lru: None) -> None:
    log = _open(open_log)
    _fill(log, clock, 6)
    victim = log.segments[1]
    assert victim.offset_index.parked
    log.set_high_watermark(victim.base_offset)
    cut = victim.base_offset + 6
    assert log.truncate_to(cut) == cut
    assert log.segments[-1] is victim and not victim.offset_index.parked and victim.offset_index not in SEALED
    assert victim.offset_index.last_entry() == (victim.base_offset + 4, len(batch(2)) * 2)
    assert log.append(batch(2)).base_offset == cut
    log.close()
    log = _open(open_log)
    assert log.log_end_offset == cut + 2
    assert _offsets(log.read(cut - 2, 1 << 20)) == list(range(cut - 2, cut + 2))


def test_reopened_log_seals_all_but_the_last_segment(open_log: OpenLog, clock: Clock, small_lru: None) -> None:
    log = _open(open_log)
    _fill(log, clock, 6)
    log.close()
    log = _open(open_log)
    assert [s.offset_index.parked for s in log.segments] == [True] * 5 + [False]
    assert log.segments[-1].offset_index not in SEALED  # the active segment is never parked
    assert _offsets(log.read(5, 1))[0] == 4


def test_an_index_file_changed_under_a_parked_index_falls_back_to_scanning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SEALED, "max_entries", 0)
    ix = OffsetIndex(tmp_path / "0.index", 100)
    for i in range(5):
        ix.append(100 + 2 * i, 60 * i)
    ix.seal()
    assert ix.parked
    with open(tmp_path / "0.index", "ab") as f:
        f.write(b"\x00\x00\x00")  # torn: no longer a whole number of entries
    with caplog.at_level(logging.ERROR, "suoi.log"):
        assert ix.lookup(105) == (100, 0)  # no entry: a reader scans from the start of the segment
        assert ix.lookup(107) == (100, 0)
    assert [r.levelname for r in caplog.records] == ["ERROR"]
    assert ix not in SEALED and not ix.parked
    ix.close()


@pytest.mark.parametrize(("fmt", "key_code"), [(">ii", "i"), (">qi", "q")])
def test_columns_split_big_endian_entries_as_struct_does(fmt: str, key_code: str) -> None:
    entry = struct.Struct(fmt)
    key_max = 2 ** (8 * struct.calcsize(fmt[1]) - 1)
    entries = [(0, 0), (-1, -1), (key_max - 1, 2**31 - 1), (-key_max, -(2**31)), (258, 65_536)]
    entries += [(i * 1_000_003 - 7, i * 4096) for i in range(100)]
    keys, values = columns(b"".join(entry.pack(*e) for e in entries), key_code, "i")
    assert list(zip(keys, values, strict=True)) == entries
    assert columns(b"", key_code, "i") == (array(key_code), array("i"))
