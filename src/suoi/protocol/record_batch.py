"""Sans-IO handling of Kafka v2 record batches (magic 2) at the batch level.

The broker treats produced data as opaque batches: on the hot path it only
parses the fixed 61-byte batch header, checks the CRC32C and rewrites the
base offset (and, for ``LogAppendTime`` topics, the max timestamp).  Individual
records are never decoded there - that would cost a Python loop per record
(``record_codec`` does that, off the hot path).

Layout of a v2 batch (big-endian)::

    baseOffset int64 | batchLength int32 | partitionLeaderEpoch int32 |
    magic int8 | crc uint32 | attributes int16 | lastOffsetDelta int32 |
    baseTimestamp int64 | maxTimestamp int64 | producerId int64 |
    producerEpoch int16 | baseSequence int32 | recordsCount int32 | records...

``batchLength`` counts the bytes after itself, so a batch occupies
``12 + batchLength`` bytes.  The CRC covers everything from ``attributes`` to
the end of the batch, which is why the base offset and the partition leader
epoch can be rewritten without recomputing it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import NamedTuple

from crc32c import crc32c

from suoi.model import ErrorCode

HEADER_STRUCT = struct.Struct(">qiibIhiqqqhii")
HEADER_SIZE = HEADER_STRUCT.size  # 61
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

COMPRESSION_MASK = 0x07
TIMESTAMP_TYPE_BIT = 0x08
TRANSACTIONAL_BIT = 0x10
CONTROL_BIT = 0x20
DELETE_HORIZON_BIT = 0x40

_Q = struct.Struct(">q")
_H = struct.Struct(">h")
_I = struct.Struct(">I")
_BASE_LEN = struct.Struct(">qi")


class RecordValidationError(Exception):
    """A produced records blob was rejected; ``error_code`` is the Kafka code."""

    error_code: ErrorCode = ErrorCode.corrupt_message


class CorruptRecordError(RecordValidationError):
    """Truncated data, bad CRC or an unknown magic (CORRUPT_MESSAGE)."""

    error_code = ErrorCode.corrupt_message


class RecordTooLargeError(RecordValidationError):
    """A batch exceeds ``max.message.bytes`` (MESSAGE_TOO_LARGE)."""

    error_code = ErrorCode.message_too_large


class UnsupportedForMessageFormatError(RecordValidationError):
    """Legacy v0/v1 message sets, which suoi does not store."""

    error_code = ErrorCode.unsupported_for_message_format


class InvalidRecordError(RecordValidationError):
    """Structurally valid but semantically wrong batch (INVALID_RECORD)."""

    error_code = ErrorCode.invalid_record


class BatchHeader(NamedTuple):
    """The fixed part of a v2 record batch; ``size`` is the full batch size.

    A NamedTuple, not a frozen dataclass: one is built per batch on the produce path, and a
    frozen dataclass's ``__init__`` (an ``object.__setattr__`` per field) cost ~2 µs of it;
    a tuple is just as immutable and is built from the unpacked header in one C call.
    """

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
        return self.attributes & COMPRESSION_MASK

    @property
    def timestamp_type(self) -> int:
        """0 = CreateTime, 1 = LogAppendTime."""
        return 1 if self.attributes & TIMESTAMP_TYPE_BIT else 0

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & TRANSACTIONAL_BIT)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & CONTROL_BIT)

    @property
    def has_delete_horizon(self) -> bool:
        return bool(self.attributes & DELETE_HORIZON_BIT)


_new_header = tuple.__new__  # builds a BatchHeader without NamedTuple's Python-level __new__
_unpack_header = HEADER_STRUCT.unpack_from


def parse_batch_header(buf: bytes | bytearray | memoryview, pos: int = 0) -> BatchHeader:
    """Decode the 61-byte header at ``pos``; raises ``struct.error`` if short."""
    fields = _unpack_header(buf, pos)
    return _new_header(BatchHeader, (*fields, LOG_OVERHEAD + fields[1]))


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
    (Written flat - header parse and CRC inline - because it runs once per batch produced.)
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
            if magic != 2:
                if magic in (0, 1):
                    raise UnsupportedForMessageFormatError(
                        f"message format v{magic} is not supported; use a v2 (Kafka >= 0.11) client"
                    )
                raise CorruptRecordError(f"unknown record batch magic {magic} at byte {pos}")
        if remaining < HEADER_SIZE:
            raise CorruptRecordError(
                f"truncated record batch header at byte {pos}: {remaining} bytes"
            )
        fields = _unpack_header(view, pos)
        batch_length = fields[1]
        size = LOG_OVERHEAD + batch_length
        if batch_length < _MIN_BATCH_LENGTH:
            raise CorruptRecordError(f"record batch length {batch_length} is too small")
        if size > max_batch_bytes:
            raise RecordTooLargeError(
                f"record batch of {size} bytes exceeds max.message.bytes={max_batch_bytes}"
            )
        if size > remaining:
            raise CorruptRecordError(
                f"record batch at byte {pos} claims {size} bytes, only {remaining} present"
            )
        if crc32c(view[pos + ATTRIBUTES_OFFSET : pos + size]) != fields[4]:
            raise CorruptRecordError(f"record batch at byte {pos} failed CRC32C check")
        count, last_offset_delta = fields[12], fields[6]
        if count < 0:
            raise InvalidRecordError(f"negative records count {count}")
        if count > 0 and last_offset_delta != count - 1:
            raise InvalidRecordError(
                f"lastOffsetDelta {last_offset_delta} inconsistent with {count} records"
            )
        if last_offset_delta < 0:
            # An empty batch must still claim at least one offset, otherwise
            # two batches would share a base offset and offset lookups break.
            raise InvalidRecordError("empty record batch with negative lastOffsetDelta")
        headers.append(_new_header(BatchHeader, (*fields, size)))
        pos += size
    return headers


def assign_offsets(buf: bytearray, pos: int, base_offset: int) -> None:
    """Rewrite the batch's baseOffset in place; it is outside the CRC."""
    _Q.pack_into(buf, pos, base_offset)


#: partitionLeaderEpoch sits at bytes 12..15, between batchLength and magic: outside the CRC.
PARTITION_LEADER_EPOCH_OFFSET = 12
_EPOCH = struct.Struct(">i")
#: baseOffset | batchLength | partitionLeaderEpoch: the first 16 bytes of a batch, none of them
#: covered by the CRC - what a leader's append rewrites: ``STAMP.pack(base_offset,
#: header.batch_length, epoch)`` is written in front of the rest of the batch as received
#: (``buf[pos + STAMP_SIZE:pos + size]``), so the append copies no payload in Python.
STAMP = struct.Struct(">qii")
STAMP_SIZE = STAMP.size  # 16


def set_partition_leader_epoch(buf: bytearray, pos: int, epoch: int) -> None:
    """Stamp the batch at ``pos`` with the leader epoch that appended it (KIP-101), in
    place; the field is not covered by the CRC, so the CRC stays valid."""
    _EPOCH.pack_into(buf, pos + PARTITION_LEADER_EPOCH_OFFSET, epoch)


def log_append_time_header(buf: bytes | bytearray | memoryview, pos: int, header: BatchHeader, base_offset: int,
                           epoch: int, timestamp_ms: int) -> bytearray:
    """The 61-byte header of the batch at ``pos`` stamped as a leader does (`STAMP`) and with the
    broker's append time (`set_log_append_time`), its CRC32C recomputed over the new header
    fields and the records as received (``buf[pos + HEADER_SIZE:pos + size]``, not copied)."""
    head = bytearray(memoryview(buf)[pos:pos + HEADER_SIZE])
    STAMP.pack_into(head, 0, base_offset, header.batch_length, epoch)
    _H.pack_into(head, ATTRIBUTES_OFFSET, header.attributes | TIMESTAMP_TYPE_BIT)
    _Q.pack_into(head, _MAX_TIMESTAMP_OFFSET, timestamp_ms)
    crc = crc32c(memoryview(buf)[pos + HEADER_SIZE:pos + header.size], crc32c(memoryview(head)[ATTRIBUTES_OFFSET:]))
    _I.pack_into(head, _CRC_OFFSET, crc)
    return head


def set_log_append_time(buf: bytearray, pos: int, timestamp_ms: int) -> None:
    """Stamp a batch with the broker's append time, as Kafka does.

    Kafka sets the LogAppendTime attribute bit and overwrites maxTimestamp;
    consumers then report maxTimestamp for every record of the batch.
    baseTimestamp and the per-record deltas stay untouched.  Both fields are
    covered by the CRC, so it is recomputed in place.
    """
    (attrs,) = _H.unpack_from(buf, pos + ATTRIBUTES_OFFSET)
    _H.pack_into(buf, pos + ATTRIBUTES_OFFSET, attrs | TIMESTAMP_TYPE_BIT)
    _Q.pack_into(buf, pos + _MAX_TIMESTAMP_OFFSET, timestamp_ms)
    write_crc(buf, pos)


def write_crc(buf: bytearray, pos: int = 0) -> None:
    """Recompute, in place, the CRC32C of the batch at ``pos`` (its batchLength must be set)."""
    (length,) = struct.unpack_from(">i", buf, pos + 8)
    crc = crc32c(memoryview(buf)[pos + ATTRIBUTES_OFFSET : pos + LOG_OVERHEAD + length])
    _I.pack_into(buf, pos + _CRC_OFFSET, crc)


def recompress_batches(buf: bytes | bytearray | memoryview, headers: list[BatchHeader], codec: int) -> bytes | None:
    """The batches of ``buf`` with every data batch stored with ``codec`` (Kafka's topic
    ``compression.type``), or None when all of them already are.

    A batch's records section (everything after its header) is one compressed stream, so
    it is decompressed and compressed again as a whole: records are not decoded. The
    attributes' codec bits, batchLength and CRC are rewritten; offsets, timestamps and
    producer fields are kept. Control batches are never compressed. Raises
    ``CorruptRecordError`` when a section does not decompress.
    """
    from suoi.protocol.compression import UnsupportedCompressionError, compress, decompress

    if all(h.compression == codec or h.is_control for h in headers):
        return None
    view = memoryview(buf)
    out = bytearray()
    pos = 0
    for h in headers:
        if h.compression == codec or h.is_control:
            out += view[pos:pos + h.size]
        else:
            try:
                section = compress(codec, decompress(h.compression, view[pos + HEADER_SIZE:pos + h.size]))
            except UnsupportedCompressionError as exc:
                raise CorruptRecordError(f"record batch at byte {pos}: {exc}") from None
            start = len(out)
            out += view[pos:pos + HEADER_SIZE]
            out += section
            _BASE_LEN.pack_into(out, start, h.base_offset, HEADER_SIZE - LOG_OVERHEAD + len(section))
            _H.pack_into(out, start + ATTRIBUTES_OFFSET, (h.attributes & ~COMPRESSION_MASK) | codec)
            write_crc(out, start)
        pos += h.size
    return bytes(out)
