"""A consumer's next read starts where its last one ended (`LogSegment.note_read_end`) without
an index lookup: it must serve exactly what a fresh lookup would, still check the batch it
starts at, and forget positions when the file is cut."""

from __future__ import annotations

import pytest

from suoi.log.errors import CorruptRecordError
from suoi.protocol.records import iter_batches, iter_records
from tests.unit.log.log_helpers import OpenLog, batch, batch_positions, flip


def offsets(data: bytes | memoryview) -> list[int]:
    return [r.offset for r in iter_records(bytes(data))]  # type: ignore[misc]


def test_sequential_reads_serve_every_record_once_in_order_and_only_whole_batches(open_log: OpenLog) -> None:
    log = open_log(segment_bytes=4000, index_interval_bytes=100)
    for i in range(30):
        log.append(batch(3 + i % 4, tag=i))
    got: list[int] = []
    served: list[tuple[int, bytes]] = []
    offset = 0
    for _ in range(200):
        if offset >= log.high_watermark:
            break
        data = log.read(offset, 250)  # budgets end inside batches: a view of the whole ones
        assert sum(h.size for _, h in iter_batches(data)) == len(data)
        served.append((offset, bytes(data)))
        new = [o for o in offsets(data) if o >= offset]
        got.extend(new)
        offset = new[-1] + 1
    assert got == list(range(log.log_end_offset))
    log.close()
    fresh = open_log(segment_bytes=4000, index_interval_bytes=100)  # nothing remembered: index lookups
    assert [(o, bytes(fresh.read(o, 250))) for o, _ in served] == served


def test_a_batch_damaged_on_disk_at_a_remembered_position_is_refused(open_log: OpenLog) -> None:
    log = open_log(segment_bytes=1 << 20, index_interval_bytes=100)
    for i in range(10):
        log.append(batch(3, tag=i))
    first = log.read(0, 200)
    next_offset = offsets(first)[-1] + 1
    path = log.segments[0].log_path
    pos = dict((b, p) for p, b in batch_positions(path))[next_offset]
    assert pos == len(first)  # the remembered position
    flip(path, pos + 16, 0x04)  # the magic byte of the batch the next read starts at
    with pytest.raises(CorruptRecordError) as err:
        log.read(next_offset, 200)
    assert err.value.batch.position == pos and err.value.batch.expected_offset == next_offset


def test_positions_are_forgotten_when_the_log_is_truncated(open_log: OpenLog) -> None:
    log = open_log(segment_bytes=1 << 20, index_interval_bytes=100)
    for i in range(6):
        log.append(batch(2, tag=i))
    assert offsets(log.read(4, 1 << 20)) == list(range(4, 12))  # remembers offset 12 at the end
    mid = offsets(log.read(0, 250))  # two batches: remembers offset 4
    log.set_high_watermark(0)
    log.hw_follows_leo = False  # as a follower truncating to its leader
    log.truncate_to(2)
    log.append(batch(5, payload=40, tag=7))  # offsets 2..6, a bigger batch where 2..5 were
    log.append(batch(9, payload=3, tag=8))  # offsets 7..15
    log.set_high_watermark(16)
    assert log.log_end_offset == 16 and mid == [0, 1, 2, 3]
    for start in (mid[-1] + 1, 7, 12):
        data = log.read(start, 1 << 20)
        assert offsets(data)[0] <= start and offsets(data)[-1] == 15
        first = next(iter_records(bytes(data)))
        assert first.value.startswith(b"7-" if start < 7 else b"8-")  # type: ignore[union-attr]


@pytest.mark.parametrize("at,mask", [(16, 0x04), (11, 0x40), (7, 0x01), (26, 0x80)])  # magic, length, base offset, delta
def test_header_damage_inside_verified_batches_stops_the_read_before_them(open_log: OpenLog, at: int, mask: int) -> None:
    """Appended batches are verified (their CRC is not computed again), yet every header a
    read walks is still checked: damage after the append is never served."""
    log = open_log(segment_bytes=1 << 20, index_interval_bytes=100)
    for i in range(8):
        log.append(batch(3, tag=i))
    seg = log.segments[0]
    assert seg.verified.covers(0, seg.size)
    pos, base = batch_positions(seg.log_path)[4]
    flip(seg.log_path, pos + at, mask)
    assert offsets(log.read(0, 1 << 20)) == list(range(base))
    with pytest.raises(CorruptRecordError) as err:
        log.read(base, 1 << 20)
    assert err.value.batch.position == pos
