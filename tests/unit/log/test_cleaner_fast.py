"""The cleaner's cheap paths: batches whose records all survive are written exactly as read (never
re-encoded, compressed ones too), retention is read from keys and offsets alone, and the chunked
read gives the same output whatever the chunk size."""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path

import pytest

from suoi.log import cleaner as cleaner_mod
from suoi.log.cleaner import LogCleaner
from suoi.log.partition_log import PartitionLog
from suoi.protocol.compression import compress
from suoi.protocol.record_batch import HEADER_SIZE, HEADER_STRUCT, LOG_OVERHEAD, write_crc
from suoi.protocol.records import SimpleRecord, build_batch, iter_batches, iter_records, parse_batch_header
from tests.unit.log.log_helpers import Clock, OpenLog

COMPACT = {"cleanup_policy": ("compact",), "segment_bytes": 10_000_000}


def unusual(records: list[SimpleRecord], codec: int, base_sequence: int = -1, producer_id: int = -1) -> bytes:
    """A batch as a client may write it but ``build_batch`` never would: every record's attributes
    byte set to 1 (Kafka ignores it). A re-encoded copy would differ (attributes 0)."""
    raw = bytearray(build_batch(records, producer_id=producer_id, producer_epoch=0 if producer_id >= 0 else -1,
                                base_sequence=base_sequence))
    body = bytearray(raw[HEADER_SIZE:])
    pos = 0
    for _ in records:
        length, after = 0, pos
        shift = 0
        while True:  # the record's length varint (zig-zag)
            b = body[after]
            after += 1
            length |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        body[after] = 1  # attributes
        pos = after + (length >> 1)
    if codec:
        body = bytearray(compress(codec, body))
    fields = list(HEADER_STRUCT.unpack_from(raw))
    fields[1] = HEADER_SIZE + len(body) - LOG_OVERHEAD
    fields[5] |= codec
    out = bytearray(HEADER_SIZE) + body
    HEADER_STRUCT.pack_into(out, 0, *fields)
    write_crc(out)
    return bytes(out)


def batches_of(log: PartitionLog) -> list[bytes]:
    data = log.read(log.log_start_offset, 1 << 30)
    return [bytes(data[pos : pos + h.size]) for pos, h in iter_batches(data)]


@pytest.mark.parametrize("codec", [0, 1, 2, 3, 4])
def test_all_retained_batches_are_written_as_read(open_log: OpenLog, clock: Clock, codec: int) -> None:
    log = open_log(**COMPACT)
    kept = [
        unusual([SimpleRecord(b"a%d" % i, b"x" * 300, 1000 + i, (("h", b"v"),)) for i in range(5)], codec),
        unusual([SimpleRecord(b"b%d" % i, b"y" * (i * 40), 2000 - i) for i in range(4)], codec, 0, 9),
    ]
    mixed = unusual([SimpleRecord(b"a0", b"old"), SimpleRecord(b"c", b"kept")], codec)
    log.append(mixed)
    for raw in kept:
        log.append(raw)
    log.roll()
    log.append(build_batch([(b"active", b"x")]))
    before = batches_of(log)
    assert LogCleaner().clean(log, clock.now, force=True) is not None
    after = batches_of(log)
    # the first batch lost a0 (overwritten later): re-encoded; the others are the very bytes read
    assert after[1:] == before[1:]
    assert after[0] != before[0] and parse_batch_header(after[0]).compression == codec
    assert [(r.offset, r.key) for r in iter_records(after[0])] == [(1, b"c")]
    assert parse_batch_header(after[2]).base_sequence == 0


def test_tombstones_get_their_horizon_then_stay_as_read(open_log: OpenLog, clock: Clock) -> None:
    log = open_log(**COMPACT, delete_retention_ms=1000)
    log.append(build_batch([(b"a", None), (b"b", b"1")], timestamp_ms=5))
    log.roll()
    log.append(build_batch([(b"active", b"x")]))
    raw = batches_of(log)[0]
    LogCleaner().clean(log, clock.now, force=True)
    first = batches_of(log)[0]
    h = parse_batch_header(first)
    assert first != raw and h.has_delete_horizon and h.base_timestamp == clock.now + 1000
    assert [(r.key, r.value) for r in iter_records(first)] == [(b"a", None), (b"b", b"1")]
    LogCleaner().clean(log, clock.advance(10), force=True)  # horizon not reached: kept as it is now
    assert batches_of(log)[0] == first
    LogCleaner().clean(log, clock.advance(1000), force=True)  # past it: the tombstone goes
    assert [(r.key, r.value) for r in iter_records(batches_of(log)[0])] == [(b"b", b"1")]


def _digest(directory: Path) -> str:
    d = hashlib.sha256()
    for p in sorted(directory.glob("*.log")):
        d.update(p.name.encode() + p.read_bytes())
    return d.hexdigest()


def test_output_does_not_depend_on_the_read_chunk(tmp_path: Path, clock: Clock,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches straddling chunk ends, and batches larger than a chunk, come out the same."""
    from suoi.log.config import LogConfig

    src = tmp_path / "src" / "t-0"
    log = PartitionLog.open(src, "t", 0, LogConfig(**COMPACT))  # type: ignore[arg-type]
    for i in range(60):
        value = None if i % 17 == 0 else b"v" * (i * 37 % 700)
        recs = [(b"k%d" % ((i * 7 + j) % 23), value) for j in range(1 + i % 5)]
        log.append(build_batch(recs, timestamp_ms=1000 + i, compression=(0, 3)[i % 2]))
        if i % 20 == 19:
            log.roll()
    log.roll()
    log.append(build_batch([(b"active", b"x")]))
    log.close()
    digests = []
    for chunk in (8 << 20, 1000, 64):
        copy = tmp_path / f"c{chunk}" / "t-0"
        shutil.copytree(src, copy)
        monkeypatch.setattr(cleaner_mod, "_READ_CHUNK", chunk)
        log = PartitionLog.open(copy, "t", 0, LogConfig(**COMPACT))  # type: ignore[arg-type]
        assert LogCleaner().clean(log, clock.now, force=True) is not None
        assert len({r.key for r in iter_records(log.read(0, 1 << 30))}) == len(list(iter_records(log.read(0, 1 << 30))))
        log.close()
        digests.append(_digest(copy))
    assert len(set(digests)) == 1


def test_io_throttle_paces_the_build(open_log: OpenLog, clock: Clock) -> None:
    """log.cleaner.io.max.bytes.per.second: bytes read and written at most at the rate, same output."""
    log = open_log(**COMPACT)
    for i in range(40):
        log.append(build_batch([(b"k%d" % (i % 7), b"v" * 2000)], timestamp_ms=1000 + i))
    log.roll()
    log.append(build_batch([(b"active", b"x")]))
    plan = LogCleaner().plan(log, clock.now, force=True)
    assert plan is not None
    read = sum(s.size for s in plan.segments)
    plan.close()
    rate = (read * 2) / 0.4  # the offset map reads the range, the rewrite reads it again: >= 0.4 s
    t0 = time.monotonic()
    result = LogCleaner(io_max_bytes_per_s=rate).clean(log, clock.now, force=True)
    took = time.monotonic() - t0
    assert result is not None and result.bytes_out < read
    assert took >= (2 * read + result.bytes_out) / rate * 0.95
    assert [r.key for r in iter_records(log.read(0, 1 << 30))] == [b"k%d" % k for k in (5, 6, 0, 1, 2, 3, 4)] + [b"active"]
