"""The pure retention rules, independent of files."""

from __future__ import annotations

from dataclasses import dataclass

from suoi.log.retention import expired_by_size, expired_by_time


@dataclass
class Seg:
    size: int
    largest_timestamp: int


def test_time_stops_at_first_kept_segment() -> None:
    segs = [Seg(10, 100), Seg(10, 500), Seg(10, 200), Seg(10, 900)]
    assert expired_by_time(segs, now_ms=1000, retention_ms=600) == 1  # 200 is old but behind 500
    assert expired_by_time(segs, now_ms=1000, retention_ms=99) == 4
    assert expired_by_time(segs, now_ms=1000, retention_ms=-1) == 0
    assert expired_by_time([Seg(10, 1), Seg(0, -1)], now_ms=1000, retention_ms=1) == 1  # empty active


def test_size_keeps_at_least_retention_bytes_and_active() -> None:
    segs = [Seg(10, 0), Seg(20, 0), Seg(30, 0)]
    assert expired_by_size(segs, 30) == 2
    assert expired_by_size(segs, 31) == 1
    assert expired_by_size(segs, 0) == 2
    assert expired_by_size(segs, 60) == 0
    assert expired_by_size(segs, -1) == 0
