"""The final flush of a clean stop (`LogManager.shutdown`: fsyncs in parallel) and the log
dir's clean-shutdown marker: written only once every log there is flushed and closed; its next
start loads the last segments from their indexes and removes it, so a later crash is recovered."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from suoi.log import sync_jobs
from suoi.log.clean_shutdown import MARKER
from suoi.log.config import LogConfig
from suoi.log.manager import LogManager
from suoi.log.recovery import read_recovery_point
from suoi.protocol.record_batch import iter_batches, verify_crc
from tests.unit.log.log_helpers import Clock, batch, batch_positions, flip

PARTITIONS = 40


def _manager(dirs: list[Path], clock: Clock) -> LogManager:
    m = LogManager(dirs, LogConfig(segment_bytes=4096), now_ms=clock)
    m.load()
    return m


def _filled(dirs: list[Path], clock: Clock) -> tuple[LogManager, dict[int, int]]:
    """A topic of PARTITIONS partitions, several segments each (the last one unflushed)."""
    m = _manager(dirs, clock)
    m.create_topic("t", PARTITIONS)
    for p in range(PARTITIONS):
        log = m.get_log("t", p)
        assert log is not None
        for i in range(p % 7 + 3):
            log.append(batch(5, payload=300, tag=i))
    return m, {p: m.get_log("t", p).log_end_offset for p in range(PARTITIONS)}  # type: ignore[union-attr]


def _ends(m: LogManager) -> dict[int, int]:
    return {p: m.get_log("t", p).log_end_offset for p in range(PARTITIONS)}  # type: ignore[union-attr]


def test_a_clean_shutdown_flushes_everything_and_marks_each_dir(tmp_path: Path, clock: Clock) -> None:
    dirs = [tmp_path / "a", tmp_path / "b"]
    m, ends = _filled(dirs, clock)
    logs = m.all_logs()
    assert m.shutdown(threads=4) is True
    assert all((d / MARKER).read_text() == "clean\n" for d in dirs)
    assert not any(f.dirty for log in logs for seg in log.segments
                   for f in (seg._file, seg.offset_index.file, seg.time_index.file))
    assert {p: read_recovery_point(m_dir) for p, m_dir in
            ((log.partition, log.directory) for log in logs)} == ends  # everything below the end is on disk

    again = _manager(dirs, clock)  # trusts the indexes; the markers are gone once loaded
    assert _ends(again) == ends
    assert not any((d / MARKER).exists() for d in dirs)
    assert {p: _read_end(again, p) for p in range(PARTITIONS)} == ends  # every batch reads back
    again.close()


def _read_end(m: LogManager, partition: int) -> int:
    """The offset after the last batch a read from 0 returns (every batch's CRC checked)."""
    log = m.get_log("t", partition)
    assert log is not None
    end = 0
    data = bytes(log.read(0, 1 << 24))
    for pos, h in iter_batches(data):
        assert verify_crc(data, pos, h)
        end = h.last_offset + 1
    return end


def test_the_next_start_does_not_rescan_a_cleanly_stopped_tail(tmp_path: Path, clock: Clock) -> None:
    """What the marker skips: the CRC scan of the last segment. A bit flipped there after a clean
    stop is left for reads and the scrubber (as in sealed segments); after a crash the start's
    recovery finds it and truncates the log there."""
    for clean in (True, False):
        d = tmp_path / f"clean-{clean}"
        m, ends = _filled([d], clock)
        log = m.get_log("t", 6)
        assert log is not None
        last = log.segments[-1].log_path
        m.shutdown()
        if not clean:
            (d / MARKER).unlink()  # as if it had crashed
        pos, _ = batch_positions(last)[-1]
        flip(last, pos + 70)  # inside the last batch's records: only its CRC tells
        again = _manager([d], clock)
        assert again.get_log("t", 6).log_end_offset == (ends[6] if clean else ends[6] - 5)  # type: ignore[union-attr]
        again.close()


def test_a_torn_tail_is_recovered_even_with_the_marker(tmp_path: Path, clock: Clock) -> None:
    m, ends = _filled([tmp_path], clock)
    last = m.get_log("t", 3).segments[-1].log_path  # type: ignore[union-attr]
    m.shutdown()
    with open(last, "ab") as f:  # half a batch after the end: the index no longer matches the file
        f.write(batch(5, payload=300)[:100])
    again = _manager([tmp_path], clock)
    assert _ends(again) == ends and os.path.getsize(last) == batch_positions(last)[-1][0] + len(batch(5, payload=300))
    again.close()


def test_a_crash_after_a_clean_start_is_recovered(tmp_path: Path, clock: Clock) -> None:
    """The marker is taken at the start: a crash after it is recovered (the garbled unflushed
    batch is cut off), not trusted as a clean stop would be."""
    m, ends = _filled([tmp_path], clock)
    m.shutdown()
    again = _manager([tmp_path], clock)
    log = again.get_log("t", 0)
    assert log is not None
    log.append(batch(5, payload=300))
    last = log.segments[-1].log_path
    log.segments[-1].offset_index.write_pending()  # whatever the crash left of the index
    pos, _ = batch_positions(last)[-1]
    flip(last, pos + 70)  # no shutdown: the unflushed write came back garbled
    third = _manager([tmp_path], clock)
    assert third.get_log("t", 0).log_end_offset == ends[0]  # type: ignore[union-attr]
    third.close()


def test_a_failed_fsync_leaves_the_dir_unmarked(tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture) -> None:
    dirs = [tmp_path / "a", tmp_path / "b"]
    m, _ = _filled(dirs, clock)
    bad = m.get_log("t", 5)
    assert bad is not None
    bad_fd = bad.segments[-1]._file.fd

    def fsync(fd: int) -> None:
        if fd == bad_fd:
            raise OSError(errno.EIO, "Input/output error")
        os.fsync(fd)

    monkeypatch.setattr(sync_jobs, "_fsync", fsync)
    assert m.shutdown() is False
    assert not (bad.directory.parent / MARKER).exists()
    assert [(d / MARKER).exists() for d in dirs if d != bad.directory.parent] == [True]
    assert caplog.text.count("fsync failed") == 1 and "t-5" in caplog.text
