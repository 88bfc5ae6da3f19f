"""The leader append's write (issue 19): each batch goes to the file as its rewritten first bytes
(base offset, length, leader epoch; the whole header for LogAppendTime) plus the rest as received,
in one writev - nothing copied in Python, the caller's buffer untouched."""

from __future__ import annotations

import os

import pytest

from suoi.log import segment as segment_module
from suoi.protocol.record_batch import assign_offsets, set_partition_leader_epoch
from suoi.protocol.records import iter_batches, iter_records, validate_batches
from tests.unit.log.log_helpers import Clock, OpenLog, batch, batch_bytes


def stamped(blob: bytes, first_offset: int, epoch: int) -> bytes:
    """What a leader stores for ``blob``: each batch's base offset and leader epoch rewritten."""
    out = bytearray(blob)
    offset = first_offset
    for pos, h in iter_batches(blob):
        assign_offsets(out, pos, offset)
        set_partition_leader_epoch(out, pos, epoch)
        offset += h.last_offset_delta + 1
    return bytes(out)


def test_stored_bytes_are_the_received_batches_stamped(open_log: OpenLog) -> None:
    log = open_log()
    log.append(batch(2, tag=9), leader_epoch=3)
    received = bytearray(batch(3) + batch(1, tag=1) + batch(4, tag=2))
    original = bytes(received)
    info = log.append(received, leader_epoch=5)
    assert (info.base_offset, info.last_offset, info.record_count) == (2, 9, 8)
    assert received == original  # the produce's buffer is not rewritten
    assert batch_bytes(log) == stamped(batch(2, tag=9), 0, 3) + stamped(original, 2, 5)
    assert [r.offset for r in iter_records(log.read(0, 1 << 20))] == list(range(10))


def test_more_batches_than_one_writev_takes(open_log: OpenLog) -> None:
    """Two buffers per batch: 700 batches are over IOV_MAX (1024) and go from one joined buffer."""
    log = open_log(max_message_bytes=1 << 20)
    blob = b"".join(batch(1, tag=i) for i in range(700))
    info = log.append(blob, leader_epoch=1)
    assert (info.base_offset, info.last_offset) == (0, 699)
    assert batch_bytes(log) == stamped(blob, 0, 1)
    assert [h.base_offset for _, h in iter_batches(log.read(0, 1 << 30))] == list(range(700))


def test_short_writes_go_on_where_they_stopped(open_log: OpenLog, monkeypatch: pytest.MonkeyPatch) -> None:
    log = open_log()
    blob = batch(3) + batch(2, tag=1)
    calls = []

    def at_most_50_bytes(fd: int, parts: list[memoryview]) -> int:
        calls.append(len(parts))
        return os.write(fd, b"".join(parts)[:50])

    monkeypatch.setattr(segment_module, "_writev", at_most_50_bytes)
    log.append(blob, leader_epoch=0)
    monkeypatch.undo()
    assert batch_bytes(log) == stamped(blob, 0, 0)
    assert calls[0] == 4 and len(calls) == -(-len(blob) // 50)  # one writev of 2 parts a batch, then the rest
    assert log.append(batch(1)).base_offset == 5


def test_log_append_time_rewrites_every_header_and_crc(open_log: OpenLog, clock: Clock) -> None:
    log = open_log(message_timestamp_type="LogAppendTime")
    received = batch(3, ts=5) + batch(2, ts=7, tag=1)
    log.append(received, leader_epoch=2)
    data = log.read(0, 1 << 20)
    headers = validate_batches(data, max_batch_bytes=1 << 20)  # both CRCs recomputed
    assert [(h.base_offset, h.partition_leader_epoch, h.timestamp_type, h.max_timestamp) for h in headers] == [
        (0, 2, 1, clock.now), (3, 2, 1, clock.now)]
    assert [r.value for r in iter_records(data)] == [r.value for r in iter_records(received)]
