"""Sans-IO handling of Kafka v2 record batches (magic 2).

The broker treats produced data as opaque batches: on the hot path it only
parses the fixed 61-byte batch header, checks the CRC32C and rewrites the
base offset (and, for ``LogAppendTime`` topics, the max timestamp).  Individual
records are never decoded there - that would cost a Python loop per record.

Layout of a v2 batch (big-endian)::

    baseOffset int64 | batchLength int32 | partitionLeaderEpoch int32 |
    magic int8 | crc uint32 | attributes int16 | lastOffsetDelta int32 |
    baseTimestamp int64 | maxTimestamp int64 | producerId int64 |
    producerEpoch int16 | baseSequence int32 | recordsCount int32 | records...

``batchLength`` counts the bytes after itself, so a batch occupies
``12 + batchLength`` bytes.  The CRC covers everything from ``attributes`` to
the end of the batch, which is why the base offset and the partition leader
epoch can be rewritten without recomputing it.

A small record encoder/decoder (``build_batch``, ``iter_records``,
``decode_batch_records``; any codec via ``compression``) serves tests, the
broker's internal topics and the log cleaner.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from crc32c import crc32c

from suoi.protocol.compression import compress, decompress

__all__ = [
    "CONTROL_ABORT",
    "CONTROL_COMMIT",
    "HEADER_SIZE",
    "LOG_OVERHEAD",
    "MAGIC_OFFSET",
    "BatchHeader",
    "CorruptRecordError",
    "EndTxnMarker",
    "InvalidRecordError",
    "RecordTooLargeError",
    "RecordValidationError",
    "SimpleRecord",
    "UnsupportedForMessageFormatError",
    "assign_offsets",
    "build_batch",
    "build_control_batch",
    "control_record_type",
    "decode_batch_records",
    "decode_end_txn_marker",
    "iter_batches",
    "iter_records",
    "parse_batch_header",
    "set_log_append_time",
    "validate_batches",
    "verify_crc",
]

_HEADER = struct.Struct(">qiibIhiqqqhii")
HEADER_SIZE = _HEADER.size  # 61
#: baseOffset + batchLength: the bytes not counted by batchLength.
LOG_OVERHEAD = 12
#: Magic sits at byte 16 in v0/v1 message sets and in v2 batches alike, which
#: lets us reject legacy formats before knowing which layout we are reading.
MAGIC_OFFSET = 16
_CRC_OFFSET = 17
ATTRIBUTES_OFFSET = 21
_LAST_OFFSET_DELTA_OFFSET = 23
_BASE_TIMESTAMP_OFFSET = 27
_MAX_TIMESTAMP_OFFSET = 35
#: Smallest legal batchLength: a header with zero records.
_MIN_BATCH_LENGTH = HEADER_SIZE - LOG_OVERHEAD

_COMPRESSION_MASK = 0x07
_TIMESTAMP_TYPE_BIT = 0x08
_TRANSACTIONAL_BIT = 0x10
_CONTROL_BIT = 0x20
_DELETE_HORIZON_BIT = 0x40

_Q = struct.Struct(">q")
_H = struct.Struct(">h")
_I = struct.Struct(">I")
_BASE_LEN = struct.Struct(">qi")


class RecordValidationError(Exception):
    """A produced records blob was rejected; ``error_code`` is the Kafka code."""

    error_code: int = 2


class CorruptRecordError(RecordValidationError):
    """Truncated data, bad CRC or an unknown magic (CORRUPT_MESSAGE)."""

    error_code = 2


class RecordTooLargeError(RecordValidationError):
    """A batch exceeds ``max.message.bytes`` (MESSAGE_TOO_LARGE)."""

    error_code = 10


class UnsupportedForMessageFormatError(RecordValidationError):
    """Legacy v0/v1 message sets, which suoi does not store."""

    error_code = 43


class InvalidRecordError(RecordValidationError):
    """Structurally valid but semantically wrong batch (INVALID_RECORD)."""

    error_code = 87


@dataclass(frozen=True, slots=True)
class BatchHeader:
    """The fixed part of a v2 record batch; ``size`` is the full batch size."""

    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int
    size: int

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        """Offset following this batch - the log end offset once appended."""
        return self.base_offset + self.last_offset_delta + 1

    @property
    def compression(self) -> int:
        """0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd."""
        return self.attributes & _COMPRESSION_MASK

    @property
    def timestamp_type(self) -> int:
        """0 = CreateTime, 1 = LogAppendTime."""
        return 1 if self.attributes & _TIMESTAMP_TYPE_BIT else 0

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & _TRANSACTIONAL_BIT)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & _CONTROL_BIT)

    @property
    def has_delete_horizon(self) -> bool:
        return bool(self.attributes & _DELETE_HORIZON_BIT)


def parse_batch_header(buf: bytes | bytearray | memoryview, pos: int = 0) -> BatchHeader:
    """Decode the 61-byte header at ``pos``; raises ``struct.error`` if short."""
    bo, length, epoch, magic, crc, attrs, lod, base_ts, max_ts, pid, pepoch, seq, count = _HEADER.unpack_from(buf, pos)
    return BatchHeader(bo, length, epoch, magic, crc, attrs, lod, base_ts, max_ts, pid, pepoch, seq, count, 12 + length)


def iter_batches(buf: bytes | bytearray | memoryview) -> Iterator[tuple[int, BatchHeader]]:
    """Yield ``(position, header)`` for each complete batch in ``buf``.

    Stops silently at a trailing partial batch, which is what a Kafka fetch
    response may legitimately end with.
    """
    pos = 0
    end = len(buf)
    while end - pos >= HEADER_SIZE:
        header = parse_batch_header(buf, pos)
        if header.batch_length < _MIN_BATCH_LENGTH or pos + header.size > end:
            return
        yield pos, header
        pos += header.size


def verify_crc(buf: bytes | bytearray | memoryview, pos: int, header: BatchHeader) -> bool:
    """Check the batch CRC32C without copying the payload."""
    view = memoryview(buf)
    return crc32c(view[pos + ATTRIBUTES_OFFSET : pos + header.size]) == header.crc


def validate_batches(
    buf: bytes | bytearray | memoryview, *, max_batch_bytes: int
) -> list[BatchHeader]:
    """Validate a produced records blob batch by batch, header-only.

    This is the produce hot path, so records are never decoded: the checks are
    framing, magic, size, CRC32C and the count/offset-delta consistency that
    offset assignment relies on.  Raises a ``RecordValidationError`` subclass
    carrying the Kafka error code; returns the parsed headers otherwise.
    """
    end = len(buf)
    if end == 0:
        raise InvalidRecordError("produce request contains no record batches")
    view = memoryview(buf)
    headers: list[BatchHeader] = []
    pos = 0
    while pos < end:
        remaining = end - pos
        if remaining > MAGIC_OFFSET:
            magic = view[pos + MAGIC_OFFSET]
            if magic in (0, 1):
                raise UnsupportedForMessageFormatError(
                    f"message format v{magic} is not supported; use a v2 (Kafka >= 0.11) client"
                )
            if magic != 2:
                raise CorruptRecordError(f"unknown record batch magic {magic} at byte {pos}")
        if remaining < HEADER_SIZE:
            raise CorruptRecordError(
                f"truncated record batch header at byte {pos}: {remaining} bytes"
            )
        header = parse_batch_header(view, pos)
        if header.batch_length < _MIN_BATCH_LENGTH:
            raise CorruptRecordError(f"record batch length {header.batch_length} is too small")
        if header.size > max_batch_bytes:
            raise RecordTooLargeError(
                f"record batch of {header.size} bytes exceeds max.message.bytes={max_batch_bytes}"
            )
        if header.size > remaining:
            raise CorruptRecordError(
                f"record batch at byte {pos} claims {header.size} bytes, only {remaining} present"
            )
        if crc32c(view[pos + ATTRIBUTES_OFFSET : pos + header.size]) != header.crc:
            raise CorruptRecordError(f"record batch at byte {pos} failed CRC32C check")
        count = header.records_count
        if count < 0:
            raise InvalidRecordError(f"negative records count {count}")
        if count > 0 and header.last_offset_delta != count - 1:
            raise InvalidRecordError(
                f"lastOffsetDelta {header.last_offset_delta} inconsistent with {count} records"
            )
        if header.last_offset_delta < 0:
            # An empty batch must still claim at least one offset, otherwise
            # two batches would share a base offset and offset lookups break.
            raise InvalidRecordError("empty record batch with negative lastOffsetDelta")
        headers.append(header)
        pos += header.size
    return headers


def assign_offsets(buf: bytearray, pos: int, base_offset: int) -> None:
    """Rewrite the batch's baseOffset in place; it is outside the CRC."""
    _Q.pack_into(buf, pos, base_offset)


def set_log_append_time(buf: bytearray, pos: int, timestamp_ms: int) -> None:
    """Stamp a batch with the broker's append time, as Kafka does.

    Kafka sets the LogAppendTime attribute bit and overwrites maxTimestamp;
    consumers then report maxTimestamp for every record of the batch.
    baseTimestamp and the per-record deltas stay untouched.  Both fields are
    covered by the CRC, so it is recomputed in place.
    """
    (attrs,) = _H.unpack_from(buf, pos + ATTRIBUTES_OFFSET)
    _H.pack_into(buf, pos + ATTRIBUTES_OFFSET, attrs | _TIMESTAMP_TYPE_BIT)
    _Q.pack_into(buf, pos + _MAX_TIMESTAMP_OFFSET, timestamp_ms)
    (length,) = struct.unpack_from(">i", buf, pos + 8)
    crc = crc32c(memoryview(buf)[pos + ATTRIBUTES_OFFSET : pos + LOG_OVERHEAD + length])
    _I.pack_into(buf, pos + _CRC_OFFSET, crc)


# --------------------------------------------------------------------------
# Record encoding (tests, internal topics, log compaction)
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SimpleRecord:
    """One record; ``offset``/``timestamp_ms`` are filled in when decoding."""

    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None = None
    headers: tuple[tuple[str, bytes | None], ...] = field(default=())
    offset: int | None = None


def _write_varint(out: bytearray, value: int) -> None:
    """Zig-zag varint, as used for every variable-length record field."""
    v = (value << 1) ^ (value >> 63)
    v &= 0xFFFFFFFFFFFFFFFF
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


def _read_varint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    shift = 0
    result = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            break
        shift += 7
    return (result >> 1) ^ -(result & 1), pos


def _write_bytes(out: bytearray, data: bytes | None) -> None:
    if data is None:
        _write_varint(out, -1)
    else:
        _write_varint(out, len(data))
        out += data


def _read_bytes(buf: bytes | memoryview, pos: int) -> tuple[bytes | None, int]:
    n, pos = _read_varint(buf, pos)
    if n < 0:
        return None, pos
    return bytes(buf[pos : pos + n]), pos + n


def build_batch(
    records: Iterable[SimpleRecord | tuple[bytes | None, bytes | None]],
    *,
    base_offset: int = 0,
    timestamp_ms: int = 0,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    partition_leader_epoch: int = -1,
    is_transactional: bool = False,
    is_control: bool = False,
    log_append_time: bool = False,
    compression: int = 0,
    keep_offsets: bool = False,
    last_offset_delta: int | None = None,
    max_timestamp: int | None = None,
    delete_horizon_ms: int | None = None,
) -> bytes:
    """Encode a v2 batch, compressed with codec ``compression`` (0 = none).

    Records without an explicit timestamp get ``timestamp_ms``.  The batch's
    baseTimestamp is the first record's timestamp and maxTimestamp the
    largest, matching what the Java producer writes.

    For rewriting a stored batch (log compaction): ``keep_offsets`` takes each
    record's offset delta from ``record.offset - base_offset``;
    ``last_offset_delta`` and ``max_timestamp`` override the computed header
    fields; ``delete_horizon_ms`` sets attribute bit 6 and stores the horizon
    as baseTimestamp, record timestamps staying relative to it (KIP-534).
    """
    recs = [r if isinstance(r, SimpleRecord) else SimpleRecord(r[0], r[1]) for r in records]
    stamps = [timestamp_ms if r.timestamp_ms is None else r.timestamp_ms for r in recs]
    base_ts = stamps[0] if stamps else timestamp_ms
    max_ts = max(stamps) if stamps else timestamp_ms
    if max_timestamp is not None:
        max_ts = max_timestamp
    if delete_horizon_ms is not None:
        base_ts = delete_horizon_ms
    if keep_offsets:
        deltas = [(r.offset if r.offset is not None else base_offset) - base_offset for r in recs]
    else:
        deltas = list(range(len(recs)))
    body = bytearray()
    for delta, rec, ts in zip(deltas, recs, stamps, strict=True):
        r = bytearray(b"\x00")  # record attributes, unused
        _write_varint(r, ts - base_ts)
        _write_varint(r, delta)
        _write_bytes(r, rec.key)
        _write_bytes(r, rec.value)
        _write_varint(r, len(rec.headers))
        for hkey, hval in rec.headers:
            _write_bytes(r, hkey.encode())
            _write_bytes(r, hval)
        _write_varint(body, len(r))
        body += r
    attrs = (
        (_TIMESTAMP_TYPE_BIT if log_append_time else 0)
        | (_TRANSACTIONAL_BIT if is_transactional else 0)
        | (_CONTROL_BIT if is_control else 0)
        | (_DELETE_HORIZON_BIT if delete_horizon_ms is not None else 0)
        | (compression & _COMPRESSION_MASK)
    )
    count = len(recs)
    if last_offset_delta is None:
        last_offset_delta = max(deltas[-1] if deltas else 0, 0)
    if compression and body:
        body = bytearray(compress(compression, body))
    buf = bytearray(HEADER_SIZE) + body
    _HEADER.pack_into(
        buf, 0, base_offset, len(buf) - LOG_OVERHEAD, partition_leader_epoch, 2, 0, attrs,
        last_offset_delta, base_ts, max_ts, producer_id, producer_epoch, base_sequence, count,
    )  # fmt: skip
    _I.pack_into(buf, _CRC_OFFSET, crc32c(memoryview(buf)[ATTRIBUTES_OFFSET:]))
    return bytes(buf)


def iter_records(buf: bytes | bytearray | memoryview) -> Iterator[SimpleRecord]:
    """Decode every record of every complete batch in ``buf`` (any codec).

    Timestamps follow the batch's timestamp type: with LogAppendTime every
    record reports the batch maxTimestamp, as Kafka consumers do.
    """
    view = memoryview(buf)
    for pos, h in iter_batches(view):
        yield from decode_batch_records(view, pos, h)


def decode_batch_records(
    buf: bytes | bytearray | memoryview, pos: int, h: BatchHeader
) -> list[SimpleRecord]:
    """The records of the batch at ``pos`` with absolute offsets and timestamps.

    Compressed batches are decompressed first; raises ``CorruptRecordError``
    if the records section does not decode.
    """
    view = memoryview(buf)
    if h.compression:
        try:
            view = memoryview(decompress(h.compression, view[pos + HEADER_SIZE : pos + h.size]))
        except ValueError as e:
            raise CorruptRecordError(str(e)) from e
        p = 0
    else:
        view = view[: pos + h.size]
        p = pos + HEADER_SIZE
    out: list[SimpleRecord] = []
    try:
        for _ in range(h.records_count):
            _length, p = _read_varint(view, p)
            p += 1  # attributes
            ts_delta, p = _read_varint(view, p)
            off_delta, p = _read_varint(view, p)
            key, p = _read_bytes(view, p)
            value, p = _read_bytes(view, p)
            n_headers, p = _read_varint(view, p)
            headers = []
            for _h in range(n_headers):
                hkey, p = _read_bytes(view, p)
                hval, p = _read_bytes(view, p)
                headers.append(((hkey or b"").decode(), hval))
            ts = h.max_timestamp if h.timestamp_type == 1 else h.base_timestamp + ts_delta
            out.append(SimpleRecord(key, value, ts, tuple(headers), h.base_offset + off_delta))
    except (IndexError, UnicodeDecodeError) as e:
        raise CorruptRecordError(f"malformed records in batch at offset {h.base_offset}") from e
    return out


# --------------------------------------------------------------------------
# Control records (KIP-98 transaction markers)
# --------------------------------------------------------------------------

#: ControlRecordType values (the int16 ``type`` of a control record's key).
CONTROL_ABORT = 0
CONTROL_COMMIT = 1
_CONTROL_KEY = struct.Struct(">hh")  # version = 0, type
_END_TXN_VALUE = struct.Struct(">hi")  # version = 0, coordinator epoch


@dataclass(frozen=True, slots=True)
class EndTxnMarker:
    """The decoded record of a COMMIT/ABORT control batch."""

    commit: bool
    coordinator_epoch: int


def build_control_batch(
    *, producer_id: int, producer_epoch: int, commit: bool, coordinator_epoch: int, timestamp_ms: int,
    base_offset: int = 0, partition_leader_epoch: int = -1,
) -> bytes:
    """A transaction marker as Kafka writes it: one uncompressed control record, attributes
    transactional | control, baseSequence -1; key (version 0, type ABORT=0/COMMIT=1), value
    (version 0, coordinator epoch int32)."""
    key = _CONTROL_KEY.pack(0, CONTROL_COMMIT if commit else CONTROL_ABORT)
    value = _END_TXN_VALUE.pack(0, coordinator_epoch)
    return build_batch(
        [SimpleRecord(key, value)], base_offset=base_offset, timestamp_ms=timestamp_ms, producer_id=producer_id,
        producer_epoch=producer_epoch, base_sequence=-1, partition_leader_epoch=partition_leader_epoch,
        is_transactional=True, is_control=True,
    )


def control_record_type(key: bytes | None) -> int:
    """The ControlRecordType of a control record key; -1 if it is not one (Kafka: UNKNOWN)."""
    if key is None or len(key) < _CONTROL_KEY.size:
        return -1
    _version, kind = _CONTROL_KEY.unpack_from(key)
    return int(kind)


def decode_end_txn_marker(buf: bytes | bytearray | memoryview, pos: int, h: BatchHeader) -> EndTxnMarker | None:
    """The marker of the control batch at ``pos``; None for other (or empty) control batches.

    Raises ``CorruptRecordError`` if a COMMIT/ABORT record is malformed.
    """
    records = decode_batch_records(buf, pos, h)
    if not records:
        return None  # Kafka: an empty control batch (its transaction was cleaned away)
    rec = records[0]
    kind = control_record_type(rec.key)
    if kind not in (CONTROL_ABORT, CONTROL_COMMIT):
        return None
    if rec.value is None or len(rec.value) < _END_TXN_VALUE.size:
        raise CorruptRecordError(f"end transaction marker at offset {h.base_offset} has a short value")
    _version, coordinator_epoch = _END_TXN_VALUE.unpack_from(rec.value)
    return EndTxnMarker(kind == CONTROL_COMMIT, int(coordinator_epoch))
