"""Reads never serve a batch whose framing or CRC32C fails, and never skip one silently:
every kind of damage to an older (sealed, trusted) segment, an index entry that points at
the wrong place, and the verified-range cache."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from suoi.log.batch_check import VerifiedRanges
from suoi.log.errors import CorruptRecordError
from suoi.log.partition_log import PartitionLog
from suoi.protocol.records import HEADER_SIZE, iter_records
from tests.unit.log.log_helpers import Clock, OpenLog, batch, batch_positions, flip

CFG = {"segment_bytes": 1200, "index_interval_bytes": 150}
N_BATCHES = 40  # of 3 records each


def offsets(data: bytes) -> list[int]:
    return [r.offset for r in iter_records(data)]  # type: ignore[misc]


def _filled(open_log: OpenLog) -> PartitionLog:
    log = open_log(**CFG)
    for i in range(N_BATCHES):
        log.append(batch(3, ts=1000 + i, tag=i))
    assert len(log.segments) >= 4
    log.flush()  # a clean shutdown: the recovery point is the log end, sealed segments are trusted
    log.close()
    return log


def consume(log: PartitionLog, start: int = 0, max_bytes: int = 200) -> tuple[list[int], CorruptRecordError | None]:
    """A consumer's loop: fetch from the next offset until the high watermark or an error."""
    got: list[int] = []
    offset = start
    for _ in range(10_000):
        if offset >= log.high_watermark:
            return got, None
        try:
            data = log.read(offset, max_bytes)
        except CorruptRecordError as e:
            return got, e
        new = [o for o in offsets(data) if o >= offset]
        assert new, f"no progress at {offset}"
        got.extend(new)
        offset = new[-1] + 1
    raise AssertionError("consumer looped")


# byte offsets inside a batch: base offset 0..7, length 8..11, magic 16, crc 17..20,
# attributes 21..22, record count 57..60, records from 61
KINDS = {
    "payload": (70, 0x01),
    "crc": (18, 0x10),
    "attributes": (22, 0x01),
    "record-count": (60, 0x01),
    "magic": (16, 0x04),
    "length-up": (11, 0x40),
    "length-down": (11, 0x08),
    "length-huge": (8, 0x40),
    "base-offset-low": (7, 0x01),
    "base-offset-high": (0, 0x10),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_damage_in_an_older_segment_stops_reads_at_the_bad_batch(
    open_log: OpenLog, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    log = _filled(open_log)
    seg_path = log.segments[1].log_path
    positions = batch_positions(seg_path)
    pos, base = positions[2]  # a batch in the middle of a sealed segment
    at, mask = KINDS[kind]
    flip(seg_path, pos + at, mask)
    with caplog.at_level(logging.WARNING, logger="suoi.log"):
        log = open_log(**CFG)
        assert log.log_end_offset == 3 * N_BATCHES  # nothing was truncated: the segment is below the recovery point
        got, err = consume(log)
        assert got == list(range(base))  # everything before it, once, in order
        assert err is not None and err.error_code == 2
        assert err.batch.position == pos and err.batch.path == seg_path and err.batch.expected_offset == base
        for _ in range(3):  # asking again answers the same, without a new log line
            with pytest.raises(CorruptRecordError):
                log.read(base, 1000)
        # reading past the bad batch in the same segment does not jump over it silently either
        got_after, err_after = consume(log, base + 1)
        assert (got_after, err_after is not None) == ([], True)
    lines = [r for r in caplog.records if "corrupt batch at position" in r.getMessage()]
    assert len(lines) == 1 and str(seg_path) in lines[0].getMessage()
    # offsets in later segments are still served
    assert offsets(log.read(log.segments[2].base_offset, 10))[0] == log.segments[2].base_offset


@pytest.mark.parametrize("kind", ["length-huge", "magic", "base-offset-high"])
def test_framing_damage_in_a_sealed_segments_tail_loses_nothing_else(open_log: OpenLog, kind: str) -> None:
    """Opening checks the chain of batches after a sealed segment's last index entry; damage
    there used to truncate the segment and drop every later one. Flushed data is not a torn
    write: it stays, reads stop at the bad batch, later segments are served."""
    log = _filled(open_log)
    path = log.segments[1].log_path
    pos, base = batch_positions(path)[-1]
    at, mask = KINDS[kind]
    flip(path, pos + at, mask)
    segments = [s.base_offset for s in log.segments]
    log = open_log(**CFG)
    assert [s.base_offset for s in log.segments] == segments and log.log_end_offset == 3 * N_BATCHES
    got, err = consume(log)
    assert got == list(range(base)) and err is not None and err.batch.position == pos
    assert offsets(log.read(segments[2], 1 << 20))[0] == segments[2]


def test_payload_flip_in_the_last_segment_keeps_the_acked_batches_after_it(open_log: OpenLog) -> None:
    """Unclean shutdown (no flush): the last segment is re-scanned; a batch whose framing
    holds is kept in place (and refused to readers) instead of truncating what follows."""
    log = open_log(segment_bytes=1 << 20, index_interval_bytes=150)
    for i in range(N_BATCHES):
        log.append(batch(3, ts=1000 + i, tag=i))
    path = log.segments[-1].log_path
    log.close()  # no flush: recovery re-checks everything
    pos, base = batch_positions(path)[5]
    flip(path, pos + 70)
    log = open_log(segment_bytes=1 << 20, index_interval_bytes=150)
    assert log.log_end_offset == 3 * N_BATCHES
    got, err = consume(log)
    assert got == list(range(base)) and err is not None and err.batch.position == pos
    assert offsets(log.read(base + 3, 1 << 20)) == list(range(base + 3, 3 * N_BATCHES))


def test_an_index_entry_off_by_one_byte_falls_back_to_a_scan(open_log: OpenLog, caplog: pytest.LogCaptureFixture) -> None:
    log = _filled(open_log)
    seg = log.segments[1]
    index = seg.log_path.with_suffix(".index")
    raw = bytearray(index.read_bytes())
    assert len(raw) >= 16
    position = int.from_bytes(raw[12:16], "big")  # second entry's position
    raw[12:16] = (position + 1).to_bytes(4, "big")
    index.write_bytes(bytes(raw))
    with caplog.at_level(logging.ERROR, logger="suoi.log"):
        log = open_log(**CFG)
        for target in range(3 * N_BATCHES):
            first = offsets(log.read(target, 1))
            assert first[0] <= target <= first[-1]
    assert sum("does not point at a batch" in r.getMessage() for r in caplog.records) == 1
    got, err = consume(log)
    assert (got, err) == (list(range(3 * N_BATCHES)), None)


def test_a_sendfile_region_stops_before_a_bad_batch_too(open_log: OpenLog) -> None:
    log = _filled(open_log)
    pos, base = batch_positions(log.segments[0].log_path)[3]
    flip(log.segments[0].log_path, pos + 70)
    log = open_log(**CFG)
    (fd, start, length), = log.read_regions(0, 1 << 20)
    assert (start, length) == (0, pos)
    with pytest.raises(CorruptRecordError):
        log.read_regions(base, 1 << 20)
    assert os.pread(fd, HEADER_SIZE, 0)[:8] == (0).to_bytes(8, "big")


def test_appended_batches_are_verified_once_and_truncation_forgets_them(open_log: OpenLog) -> None:
    log = open_log(**CFG)
    for i in range(5):
        log.append(batch(3, tag=i))
    seg = log.segments[-1]
    assert seg.verified.covers(0, seg.size)
    log.truncate_to(6, force=True)
    assert seg.verified.covers(0, seg.size) and not seg.verified.covers(0, seg.size + 1)


def test_verified_ranges_merge_and_truncate() -> None:
    r = VerifiedRanges()
    r.add(100, 200)
    r.add(300, 400)
    assert r.covers(120, 200) and not r.covers(150, 250) and r.first_gap(0, 500) == (0, 100)
    r.add(200, 300)
    assert r.covers(100, 400) and r.total == 300 and r.first_gap(100, 500) == (400, 500)
    r.add(50, 120)
    assert r.covers(50, 400) and r.first_gap(50, 400) is None
    r.truncate(350)
    assert r.covers(50, 350) and not r.covers(50, 351)
    r.truncate(10)
    assert r.total == 0


def test_scrubber_finds_rot_in_cold_segments_at_its_rate(open_log: OpenLog) -> None:
    from suoi.log.batch_check import CorruptBatch
    from suoi.log.scrubber import CorruptionStats, LogScrubber

    log = _filled(open_log)
    path = log.segments[2].log_path
    pos, base = batch_positions(path)[1]
    flip(path, pos + 70)
    log = open_log(**CFG)
    found: list[CorruptBatch] = []
    log.on_corrupt = lambda _log, bad: found.append(bad)
    stats = CorruptionStats()
    scrubber = LogScrubber(lambda: [log], stats)
    total = sum(s.size for s in log.segments)  # the active segment too
    budget = 300
    steps = 0
    while stats.passes == 0 and steps < 1000:
        checked = scrubber.step(budget)
        assert checked <= budget + max(s.size for s in log.segments)  # whole batches: at most one more
        steps += 1
    assert stats.passes == 1 and steps > total // (2 * budget)
    assert [(b.path, b.position, b.expected_offset) for b in found] == [(path, pos, base)]
    assert stats.corrupt_found == 1 and stats.batches_checked > 0
    assert stats.bytes_checked == total - (log.segments[2].size - pos)  # all but the bad batch on
    assert log.first_corrupt() == found[0]
    with pytest.raises(CorruptRecordError):
        log.read(base, 1000)
    assert len(found) == 2  # the read told the hook too
    # the next pass finds it again (the hook hears it again: a repair may be pending) but counts it once
    while stats.passes == 1:
        scrubber.step(10_000)
    assert len(found) == 3 and stats.corrupt_found == 1


def test_scrubber_checks_the_active_segment_and_drops_one_cut_under_it(open_log: OpenLog, clock: Clock) -> None:
    """The active segment is scrubbed up to its size when the pass began (after a clean stop it
    is loaded from its indexes, not re-scanned); a segment cut mid-pass (a follower's
    truncation) is left for the next pass, never resumed at a position inside another batch."""
    from suoi.log.batch_check import CorruptBatch
    from suoi.log.config import LogConfig
    from suoi.log.scrubber import CorruptionStats, LogScrubber

    directory = _filled(open_log).directory
    path = sorted(directory.glob("*.log"))[-1]
    positions = batch_positions(path)
    assert len(positions) >= 3
    pos, base = positions[-1]
    flip(path, pos + 70)

    def reopen() -> PartitionLog:  # as after a clean shutdown (the marker): the last segment not re-scanned
        return PartitionLog.open(directory, "t", 0, LogConfig(**CFG), now_ms=clock, clean=True)  # type: ignore[arg-type]

    log = reopen()
    try:
        assert log.segments[-1].log_path == path and log.first_corrupt() is None  # not found at open
        found: list[CorruptBatch] = []
        log.on_corrupt = lambda _log, bad: found.append(bad)
        stats = CorruptionStats()
        scrubber = LogScrubber(lambda: [log], stats)
        while stats.passes == 0:
            scrubber.step(10_000)
        assert [(b.path, b.position, b.expected_offset) for b in found] == [(path, pos, base)]
    finally:
        log.close()

    # a pass inside the active segment when it is cut and written again: dropped, no false alarm
    log = reopen()
    try:
        found = []
        log.on_corrupt = lambda _log, bad: found.append(bad)
        scrubber = LogScrubber(lambda: [log], CorruptionStats())
        first_end = positions[1][0]
        for _ in range(1000):
            if any(c.segment is log.segments[-1] and c.position > 0 for c in scrubber._todo):
                break
            scrubber.step(first_end)
        else:
            raise AssertionError("the scrubber never got into the active segment")
        log.truncate_to(positions[0][1] + 1, force=True)  # a follower's truncation: the first batch stays
        log.append(batch(7, payload=33, tag=99))  # a batch of another size where the scrubber stopped
        for _ in range(200):
            scrubber.step(10_000)
        assert found == []
    finally:
        log.close()


def test_log_manager_counts_known_bad_batches_and_compaction_relaxes_contiguity(tmp_path: Path) -> None:
    from suoi.log.config import LogConfig
    from suoi.log.manager import LogManager

    m = LogManager([tmp_path], LogConfig(segment_bytes=1 << 20))
    m.load()
    m.create_topic("t", 1, {})
    log = m.get_log("t", 0)
    assert log is not None
    for i in range(6):
        log.append(batch(3, tag=i))
    m.flush()
    m.close()
    pos, base = batch_positions(log.segments[0].log_path)[2]
    flip(log.segments[0].log_path, pos + 70)
    m = LogManager([tmp_path], LogConfig(segment_bytes=1 << 20))
    m.load()  # the only segment is the last one: recovery re-checks it and keeps what follows
    log = m.get_log("t", 0)
    assert log is not None and log.log_end_offset == 18 and m.known_corrupt_batches() == 1
    assert log.segments[0].contiguous
    m.alter_topic_configs("t", {"cleanup.policy": "compact"})
    assert not log.segments[0].contiguous  # the cleaner may leave gaps from now on
    m.close()
