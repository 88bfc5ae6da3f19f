"""Tests of the sans-IO v2 record batch codec."""

from __future__ import annotations

import struct

import pytest

from suoi.protocol.records import (
    HEADER_SIZE,
    CorruptRecordError,
    InvalidRecordError,
    RecordTooLargeError,
    SimpleRecord,
    UnsupportedForMessageFormatError,
    assign_offsets,
    build_batch,
    iter_batches,
    iter_records,
    parse_batch_header,
    set_log_append_time,
    validate_batches,
    verify_crc,
)

MAX = 1 << 20


def _batch(n: int = 3, ts: int = 1000, **kw: object) -> bytes:
    return build_batch([(b"k%d" % i, b"value-%d" % i) for i in range(n)], timestamp_ms=ts, **kw)  # type: ignore[arg-type]


def _legacy_message(magic: int) -> bytes:
    """A v0/v1 message set entry: offset, size, crc, magic, attributes, ..."""
    timestamp = struct.pack(">q", 0) if magic == 1 else b""
    body = struct.pack(">bb", magic, 0) + timestamp + struct.pack(">ii", -1, 1) + b"x"
    return struct.pack(">qiI", 0, len(body) + 4, 0) + body


def test_header_fields() -> None:
    b = build_batch(
        [SimpleRecord(b"a", b"1", 10), SimpleRecord(b"b", b"2", 30), SimpleRecord(None, None, 20)],
        base_offset=5, producer_id=7, producer_epoch=1, base_sequence=3, is_transactional=True,
    )  # fmt: skip
    h = parse_batch_header(b)
    assert h.size == len(b) and h.batch_length == len(b) - 12
    assert h.magic == 2 and h.records_count == 3 and h.last_offset_delta == 2
    assert (h.base_offset, h.last_offset, h.next_offset) == (5, 7, 8)
    assert (h.base_timestamp, h.max_timestamp) == (10, 30)
    assert (h.producer_id, h.producer_epoch, h.base_sequence) == (7, 1, 3)
    assert h.is_transactional and not h.is_control
    assert h.compression == 0 and h.timestamp_type == 0
    assert HEADER_SIZE == 61


def test_records_round_trip() -> None:
    recs = [SimpleRecord(b"k", b"v", 5, (("h1", b"x"), ("h2", None))), SimpleRecord(None, b"", 6)]
    out = list(iter_records(build_batch(recs, base_offset=100)))
    assert [(r.key, r.value, r.timestamp_ms, r.headers, r.offset) for r in out] == [
        (b"k", b"v", 5, (("h1", b"x"), ("h2", None)), 100),
        (None, b"", 6, (), 101),
    ]


def test_iter_batches_stops_at_partial_tail() -> None:
    a, b = _batch(1), _batch(2)
    blob = a + b + b[:30]
    assert [(pos, h.records_count) for pos, h in iter_batches(blob)] == [(0, 1), (len(a), 2)]


def test_validate_accepts_multiple_batches() -> None:
    headers = validate_batches(_batch(1) + _batch(4), max_batch_bytes=MAX)
    assert [h.records_count for h in headers] == [1, 4]


@pytest.mark.parametrize(
    ("blob", "error", "code"),
    [
        (b"", InvalidRecordError, 87),
        (_batch()[:40], CorruptRecordError, 2),  # torn header
        (_batch()[:-1], CorruptRecordError, 2),  # torn body
        (_batch() + _batch()[:10], CorruptRecordError, 2),  # trailing garbage
        (_legacy_message(0), UnsupportedForMessageFormatError, 43),
        (_legacy_message(1), UnsupportedForMessageFormatError, 43),
    ],
    ids=["empty", "torn-header", "torn-body", "trailing", "magic0", "magic1"],
)
def test_validate_rejects(blob: bytes, error: type[Exception], code: int) -> None:
    with pytest.raises(error) as info:
        validate_batches(blob, max_batch_bytes=MAX)
    assert info.value.error_code == code  # type: ignore[attr-defined]


def test_validate_rejects_unknown_magic() -> None:
    b = bytearray(_batch())
    b[16] = 3
    with pytest.raises(CorruptRecordError):
        validate_batches(b, max_batch_bytes=MAX)


def test_validate_rejects_bad_crc() -> None:
    b = bytearray(_batch())
    b[-1] ^= 0xFF
    with pytest.raises(CorruptRecordError, match="CRC"):
        validate_batches(b, max_batch_bytes=MAX)


def test_validate_rejects_too_large() -> None:
    b = _batch(10)
    with pytest.raises(RecordTooLargeError) as info:
        validate_batches(b, max_batch_bytes=len(b) - 1)
    assert info.value.error_code == 10
    validate_batches(b, max_batch_bytes=len(b))


def _with_counts(records_count: int, last_offset_delta: int) -> bytearray:
    """A batch whose count fields are rewritten (CRC fixed up so only they are wrong)."""
    b = bytearray(_batch(3))
    struct.pack_into(">i", b, 57, records_count)
    struct.pack_into(">i", b, 23, last_offset_delta)
    set_log_append_time(b, 0, 0)  # recomputes the CRC
    return b


@pytest.mark.parametrize(("count", "delta"), [(-1, 2), (3, 5), (3, 1), (0, -1)])
def test_validate_rejects_inconsistent_counts(count: int, delta: int) -> None:
    with pytest.raises(InvalidRecordError):
        validate_batches(_with_counts(count, delta), max_batch_bytes=MAX)


def test_assign_offsets_keeps_crc_valid() -> None:
    b = bytearray(_batch())
    assign_offsets(b, 0, 12345)
    (h,) = validate_batches(b, max_batch_bytes=MAX)
    assert h.base_offset == 12345
    assert [r.offset for r in iter_records(b)] == [12345, 12346, 12347]


def test_set_log_append_time() -> None:
    b = bytearray(_batch(2) + _batch(2, ts=5))
    second = parse_batch_header(b).size
    set_log_append_time(b, second, 999)
    h1, h2 = validate_batches(b, max_batch_bytes=MAX)  # CRCs still valid
    assert h1.timestamp_type == 0 and h1.max_timestamp == 1000
    assert h2.timestamp_type == 1 and h2.max_timestamp == 999 and h2.base_timestamp == 5
    assert verify_crc(b, second, h2)
    assert {r.timestamp_ms for r in iter_records(b[second:])} == {999}


def _kafka_python_batch(compression: int) -> bytes:
    builder = pytest.importorskip("kafka.record.default_records").DefaultRecordBatchBuilder(
        magic=2, compression_type=compression, is_transactional=False,
        producer_id=-1, producer_epoch=-1, base_sequence=-1, batch_size=1 << 20,
    )  # fmt: skip
    builder.append(0, timestamp=1000, key=b"k", value=b"v", headers=[("h", b"x")])
    builder.append(1, timestamp=1500, key=None, value=b"w" * 100, headers=[])
    return bytes(builder.build())


def test_build_batch_matches_independent_encoder() -> None:
    """kafka-python's encoder is an independent oracle for the wire format."""
    ours = build_batch(
        [SimpleRecord(b"k", b"v", 1000, (("h", b"x"),)), SimpleRecord(None, b"w" * 100, 1500)],
        partition_leader_epoch=0,
    )
    assert ours == _kafka_python_batch(0)


def test_validate_compressed_batch_without_decoding() -> None:
    blob = _kafka_python_batch(1)  # gzip
    (h,) = validate_batches(blob, max_batch_bytes=MAX)
    assert h.compression == 1 and h.records_count == 2 and h.max_timestamp == 1500
