"""Record-level encoding and decoding of v2 batches, and KIP-98 control records.

A small record encoder/decoder (``build_batch``, ``iter_records``,
``decode_batch_records``; any codec via ``compression``) that serves tests, the
broker's internal topics and the log cleaner - never the produce hot path.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from suoi.protocol.compression import compress, decompress
from suoi.protocol.record_batch import (
    COMPRESSION_MASK,
    CONTROL_BIT,
    DELETE_HORIZON_BIT,
    HEADER_SIZE,
    HEADER_STRUCT,
    LOG_OVERHEAD,
    TIMESTAMP_TYPE_BIT,
    TRANSACTIONAL_BIT,
    BatchHeader,
    CorruptRecordError,
    iter_batches,
    write_crc,
)


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
        (TIMESTAMP_TYPE_BIT if log_append_time else 0)
        | (TRANSACTIONAL_BIT if is_transactional else 0)
        | (CONTROL_BIT if is_control else 0)
        | (DELETE_HORIZON_BIT if delete_horizon_ms is not None else 0)
        | (compression & COMPRESSION_MASK)
    )
    if last_offset_delta is None:
        last_offset_delta = max(deltas[-1] if deltas else 0, 0)
    header = (base_offset, partition_leader_epoch, attrs, last_offset_delta, base_ts, max_ts, producer_id,
              producer_epoch, base_sequence, len(recs))  # fmt: skip
    return seal_batch(body, header)


def seal_batch(body: bytearray, header: tuple[int, int, int, int, int, int, int, int, int, int]) -> bytes:
    """The batch of encoded records ``body``, compressed with the codec of its attributes:
    ``header`` is (base offset, partition leader epoch, attributes, last offset delta, base
    timestamp, max timestamp, producer id, producer epoch, base sequence, records count)."""
    (base_offset, epoch, attrs, last_delta, base_ts, max_ts, pid, p_epoch, base_seq, count) = header
    if attrs & COMPRESSION_MASK and body:
        body = bytearray(compress(attrs & COMPRESSION_MASK, body))
    buf = bytearray(HEADER_SIZE) + body
    HEADER_STRUCT.pack_into(
        buf, 0, base_offset, len(buf) - LOG_OVERHEAD, epoch, 2, 0, attrs,
        last_delta, base_ts, max_ts, pid, p_epoch, base_seq, count,
    )  # fmt: skip
    write_crc(buf)
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
            record, p = decode_record(view, p, h)
            out.append(record)
    except (IndexError, UnicodeDecodeError) as e:
        raise CorruptRecordError(f"malformed records in batch at offset {h.base_offset}") from e
    return out


def decode_record(view: bytes | memoryview, p: int, h: BatchHeader) -> tuple[SimpleRecord, int]:
    """The record at ``p`` of an (uncompressed or decompressed) records section of batch ``h``
    and the position after it; raises ``IndexError``/``UnicodeDecodeError`` if malformed (the
    log cleaner decodes only the records it keeps, at positions ``record_keys`` found)."""
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
    return SimpleRecord(key, value, ts, tuple(headers), h.base_offset + off_delta), p


def key_value_prefixes(
    buf: bytes | bytearray | memoryview, pos: int, h: BatchHeader, size: int
) -> list[tuple[bytes | None, bytes | None]]:
    """The first ``size`` bytes of each record's key and value (None: null) in the batch at
    ``pos``: what schema id validation reads, without building records (timestamps, headers)
    or copying whole values. Raises ``CorruptRecordError`` like ``decode_batch_records``."""
    section = memoryview(buf)[pos + HEADER_SIZE : pos + h.size]
    if h.compression:
        try:
            view = decompress(h.compression, section)
        except ValueError as e:
            raise CorruptRecordError(str(e)) from e
    else:
        view = bytes(section)  # indexing bytes is faster than a memoryview; one copy in C
    p = 0
    out: list[tuple[bytes | None, bytes | None]] = []
    try:
        for _ in range(h.records_count):
            length, p = _read_varint(view, p)
            end = p + length
            p += 1  # attributes
            _ts_delta, p = _read_varint(view, p)
            _off_delta, p = _read_varint(view, p)
            n, p = _read_varint(view, p)
            key = None if n < 0 else view[p : p + min(n, size)]
            p += max(n, 0)
            n, p = _read_varint(view, p)
            value = None if n < 0 else view[p : p + min(n, size)]
            if end > len(view) or p + max(n, 0) > end:
                raise IndexError("record overruns its batch")
            out.append((key, value))
            p = end
    except IndexError as e:
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
