"""A read at the log end finds its batch among the last appended ones (no header scan from
the last index entry), and finds exactly what the scan finds, also across gaps (a compacted
log) and after a truncation."""

from __future__ import annotations

from pathlib import Path

from suoi.log.segment import LogSegment
from suoi.protocol.records import build_batch


def _append(seg: LogSegment, base: int, records: int) -> None:
    data = build_batch([(b"k", b"v")] * records, base_offset=base, timestamp_ms=1_000 + base)
    seg.append(data, [(0, base, base + records - 1, 1_000 + base, len(data))], 2_000)


def _scanned(seg: LogSegment, offset: int) -> tuple[int, int] | None:
    seg._forget_recent()  # what locating without the recent batches gives
    return seg.locate_expected(offset)


def _fill(seg: LogSegment, gaps: bool) -> list[int]:
    bases, base = [], 0
    for i in range(300):  # more batches than the segment keeps
        bases.append(base)
        _append(seg, base, 1 + i % 3)
        base += 1 + i % 3 + (5 if gaps and i % 7 == 0 else 0)
    return bases


def test_recent_batches_locate_as_the_scan_does(tmp_path: Path) -> None:
    seg = LogSegment.create(tmp_path, 0, index_interval_bytes=4096)
    bases = _fill(seg, gaps=False)
    offsets = range(bases[120], seg.next_offset)
    fast = [seg.locate_expected(o) for o in offsets]
    assert all(f is not None for f in fast)
    assert fast == [_scanned(seg, o) for o in offsets]
    assert seg.locate_expected(seg.next_offset) is None


def test_recent_batches_across_gaps_give_the_scans_positions(tmp_path: Path) -> None:
    """With gaps (compaction) the expected base is a lower bound: the batch before's next
    offset here, the indexed base when the scan starts at an index entry."""
    seg = LogSegment.create(tmp_path, 0, index_interval_bytes=4096)
    seg.contiguous = False
    bases = _fill(seg, gaps=True)
    offsets = range(bases[120], seg.next_offset)
    fast = [seg.locate_expected(o) for o in offsets]
    scanned = [_scanned(seg, o) for o in offsets]
    assert [f[0] for f in fast if f] == [s[0] for s in scanned if s] and len(fast) == len(scanned)
    for (_, expected), (_, scan_expected), offset in zip(fast, scanned, offsets, strict=True):
        batch = max(b for b in bases if b <= max(offset, bases[0]))
        assert expected <= scan_expected <= max(batch, offset)


def test_truncation_forgets_the_batches_it_removes(tmp_path: Path) -> None:
    seg = LogSegment.create(tmp_path, 0, index_interval_bytes=4096)
    for base in range(0, 20):
        _append(seg, base, 1)
    seg.truncate_to(10)
    assert seg.next_offset == 10
    assert seg.locate_expected(12) is None
    _append(seg, 10, 4)  # offsets 10-13 again, in one batch
    assert seg.locate_expected(12) == _scanned(seg, 12)
    assert seg.locate_expected(12) is not None
