"""Crash recovery: torn tails, corrupt batches and missing/broken indexes."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

import pytest

from suoi.log.errors import CorruptRecordError
from suoi.protocol.records import iter_records
from tests.unit.log.log_helpers import OpenLog, batch


def offsets(data: bytes) -> list[int]:
    return [r.offset for r in iter_records(data)]  # type: ignore[misc]


_B = len(batch(3))


def _damage_active(open_log: OpenLog, damage: Callable[[bytes], bytes], **config: object) -> tuple[int, int]:
    """Write 4 batches of 3, close, rewrite the active .log; returns (size, leo) before."""
    log = open_log(**config)
    for _ in range(4):
        log.append(batch(3))
    size, leo = log.segments[-1].size, log.log_end_offset
    path = log.segments[-1].log_path
    log.close()
    path.write_bytes(damage(path.read_bytes()))
    return size, leo


@pytest.mark.parametrize(
    ("damage", "expected_leo"),
    [
        (lambda d: d + b"\x00garbage" * 7, 12),  # junk after the last batch
        (lambda d: d + batch(3)[:40], 12),  # half a header
        (lambda d: d + batch(3)[:-5], 12),  # half a batch
        (lambda d: d[:-5], 9),  # last batch torn
        (lambda d: d[:-1] + bytes([d[-1] ^ 0xFF]), 9),  # last batch CRC mismatch
        (lambda d: d[:_B + 8] + b"\x7f" + d[_B + 9 :], 3),  # second batch's length: framing lost
    ],
    ids=["garbage", "half-header", "half-batch", "torn-last", "crc-last", "length-second"],
)
def test_recovery_truncates_at_first_bad_batch(
    open_log: OpenLog, damage: Callable[[bytes], bytes], expected_leo: int, caplog: pytest.LogCaptureFixture
) -> None:
    _damage_active(open_log, damage)
    with caplog.at_level(logging.WARNING, logger="suoi.log"):
        log = open_log()
    assert "truncating" in caplog.text
    assert log.log_end_offset == expected_leo == log.high_watermark
    assert log.segments[-1].size == len(batch(3)) * (expected_leo // 3)
    assert offsets(log.read(0, 1 << 20)) == list(range(expected_leo))
    info = log.append(batch(2))
    assert (info.base_offset, info.last_offset) == (expected_leo, expected_leo + 1)
    assert offsets(log.read(0, 1 << 20)) == list(range(expected_leo + 2))


def test_recovery_keeps_intact_batches_after_a_crc_failure(open_log: OpenLog, caplog: pytest.LogCaptureFixture) -> None:
    """A payload flip in a batch whose framing holds (the next batch continues it and checks
    out) is not a torn tail: the batches after it stay, and reads refuse the bad one."""
    _damage_active(open_log, lambda d: d[:_B + 70] + bytes([d[_B + 70] ^ 1]) + d[_B + 71 :])
    with caplog.at_level(logging.WARNING, logger="suoi.log"):
        log = open_log()
    assert "truncating" not in caplog.text
    assert f"corrupt batch at position {_B} " in caplog.text
    assert log.log_end_offset == 12
    assert offsets(log.read(0, 1 << 20)) == [0, 1, 2]  # the good batches before it
    with pytest.raises(CorruptRecordError) as exc:
        log.read(3, 1 << 20)
    assert exc.value.error_code == 2 and exc.value.batch.position == _B
    assert offsets(log.read(6, 1 << 20)) == list(range(6, 12))


def test_clean_reopen_keeps_everything(open_log: OpenLog) -> None:
    log = open_log(segment_bytes=500, index_interval_bytes=50)
    for i in range(30):
        log.append(batch(2, ts=100 + i))
    state = (log.log_end_offset, [s.base_offset for s in log.segments], log.read(0, 1 << 20))
    idx = [len(s.offset_index) for s in log.segments]
    log.close()
    log = open_log(segment_bytes=500, index_interval_bytes=50)
    assert (log.log_end_offset, [s.base_offset for s in log.segments], log.read(0, 1 << 20)) == state
    assert [len(s.offset_index) for s in log.segments] == idx
    assert log.max_timestamp() == (129, 58)  # the first record of the last batch (KAFKA-16310)
    assert log.offset_for_timestamp(115) == (30, 115)


@pytest.mark.parametrize("suffix", [".index", ".timeindex"])
@pytest.mark.parametrize("how", ["delete", "torn", "garbage"])
def test_broken_indexes_are_rebuilt(open_log: OpenLog, suffix: str, how: str) -> None:
    cfg = {"segment_bytes": 800, "index_interval_bytes": 100}
    log = open_log(**cfg)
    for i in range(40):
        log.append(batch(1, ts=1000 + i, tag=i))
    expected_idx = [(len(s.offset_index), len(s.time_index)) for s in log.segments]
    assert len(log.segments) >= 3 and expected_idx[0][0] > 0
    log.close()
    for path in sorted(log.directory.glob("*" + suffix)):
        if how == "delete":
            path.unlink()
        elif how == "torn":
            path.write_bytes(path.read_bytes()[:-3])
        else:  # valid size, nonsense content
            path.write_bytes(b"\xff" * len(path.read_bytes()))
    log = open_log(**cfg)
    assert [(len(s.offset_index), len(s.time_index)) for s in log.segments] == expected_idx
    for target in range(40):
        (rec,) = iter_records(log.read(target, 1))
        assert rec.offset == target
    assert log.offset_for_timestamp(1025) == (25, 1025)


def test_index_pointing_past_log_end_is_rebuilt(open_log: OpenLog) -> None:
    """A sealed segment whose .log lost its tail (e.g. copied partially)."""
    cfg = {"segment_bytes": 800, "index_interval_bytes": 100}
    log = open_log(**cfg)
    for i in range(40):
        log.append(batch(1, tag=i))
    first = log.segments[0]
    n_batches_first = log.segments[1].base_offset
    log.close()
    data = first.log_path.read_bytes()
    first.log_path.write_bytes(data[: len(batch(1)) * 7 + 5])  # mid-batch
    log = open_log(**cfg)
    # The damaged sealed segment is cut at its last whole batch and the later
    # segments, whose offsets no longer follow on, are dropped.
    assert len(log.segments) == 1
    assert log.log_end_offset == 7 < n_batches_first
    assert log.append(batch(1)).base_offset == log.log_end_offset - 1


def test_orphan_index_files_are_removed(open_log: OpenLog) -> None:
    log = open_log()
    log.append(batch())
    log.close()
    orphan = log.directory / "00000000000000000099.index"
    orphan.write_bytes(b"\x00" * 8)
    open_log()
    assert not orphan.exists()


def test_empty_active_segment_after_roll_survives_reopen(open_log: OpenLog) -> None:
    log = open_log()
    log.append(batch(3))
    log.roll()
    assert [s.base_offset for s in log.segments] == [0, 3]
    log.close()
    log = open_log()
    assert [s.base_offset for s in log.segments] == [0, 3]
    assert log.log_end_offset == 3
    assert log.append(batch(1)).base_offset == 3
    assert os.path.getsize(log.segments[-1].log_path) == len(batch(1))


def test_index_entries_written_at_flush_survive_a_crash(open_log: OpenLog) -> None:
    """Index entries are buffered until flush/close: after a crash (no close) the files hold
    what the last flush wrote, segments below the recovery point load with complete indexes
    and the rest are rebuilt, so every offset is found again and the same entries come back."""
    cfg = {"segment_bytes": _B * 3, "index_interval_bytes": 0}
    log = open_log(**cfg)
    for i in range(7):
        log.append(batch(3, ts=1000 + i))
    log.flush()  # segments 0, 9 (sealed) and the active 18 are on disk with their entries
    assert log.checkpoint_recovery_point()  # the periodic checkpoint: recovery point 21
    for i in range(4):
        log.append(batch(3, ts=2000 + i))  # the rest of 18 and the new 27: entries in memory only
    before = [(s.base_offset, list(s.offset_index.entries_at_or_before(1 << 30)),
               s.time_index.last_entry()) for s in log.segments]
    flushed = log.segments[1]
    assert [s.base_offset for s in log.segments] == [0, 9, 18, 27]
    active = log.segments[-1].offset_index
    assert len(active) == 1 and not (active.path.exists() and active.path.read_bytes())  # no write per append
    assert len(flushed.offset_index.path.read_bytes()) == 8 * 2  # its 2nd and 3rd batches
    crashed = open_log(**cfg)  # the first log is never closed: a crash
    after = [(s.base_offset, list(s.offset_index.entries_at_or_before(1 << 30)),
              s.time_index.last_entry()) for s in crashed.segments]
    assert after == before
    assert crashed.log_end_offset == 33
    for offset in range(0, 33, 2):
        assert offsets(crashed.read(offset, 1 << 20, min_one_batch=True))[0] == offset - offset % 3


def test_recovery_point_is_persisted_by_checkpoint_not_per_flush(open_log: OpenLog) -> None:
    """As Kafka (log.flush.offset.checkpoint.interval.ms): a flush moves the recovery point in
    memory; the file follows at the periodic checkpoint and at close, and at once when a
    truncation moves it down."""
    log = open_log()
    path = log.directory / "recovery-point"
    stored = lambda: int(path.read_text()) if path.exists() else None  # noqa: E731
    for _ in range(3):
        log.append(batch(3))
        log.flush()
    assert stored() is None
    assert log.checkpoint_recovery_point() and stored() == 9
    assert not log.checkpoint_recovery_point()  # nothing moved: no write
    log.append(batch(3))
    log.flush()
    assert stored() == 9
    log.truncate_to(6, force=True)
    assert stored() == 6  # below what the file said: written at once
    log.append(batch(3))
    log.flush()
    log.close()
    assert stored() == 9
