"""Key-only reading of a v2 batch's records: what log compaction needs to decide retention.

The log cleaner reads every record of the range it cleans twice (the offset map, then the
rewrite), and needs of each only its offset, its key and whether its value is null. Building a
``SimpleRecord`` per record (``decode_batch_records``: value and headers copied, timestamps,
a frozen object) cost most of a clean's CPU; ``record_keys`` walks the same fields in one flat
loop, copies only the keys and indexes ``bytes`` (faster than a memoryview) with the common
one- and two-byte varints read inline. A batch the cleaner must re-encode (some records dropped,
or a tombstone's horizon to set) is then written by ``rebuild``, which copies each kept record's
key, value and headers bytes as read and re-encodes only its timestamp and offset deltas - the
bytes ``build_batch`` writes from the decoded records, which ``decode_kept`` gives when the
copy could differ (headers, or lengths not in their shortest varints).

The walk is field by field, as ``decode_batch_records`` does (the record length varint is read
past, not trusted), so both accept the same records sections; one that reads past its batch
raises ``CorruptRecordError``. (Header keys are not UTF-8-checked here: no record is built.)
"""

from __future__ import annotations

from typing import NamedTuple

from suoi.protocol.compression import decompress
from suoi.protocol.record_batch import (
    COMPRESSION_MASK,
    DELETE_HORIZON_BIT,
    HEADER_SIZE,
    TIMESTAMP_TYPE_BIT,
    TRANSACTIONAL_BIT,
    BatchHeader,
    CorruptRecordError,
)
from suoi.protocol.record_codec import SimpleRecord, _read_varint, _write_varint, decode_record, seal_batch

__all__ = ["RecordKeys", "decode_kept", "rebuild", "record_keys"]


class RecordKeys(NamedTuple):
    """One batch's records, key-only: parallel lists, in record order."""

    data: bytes  # the buffer ``starts`` index: the segment chunk, or the decompressed section
    starts: list[int]  # each record's position in ``data``, then the position after the last
    offsets: list[int]  # absolute offsets
    keys: list[bytes | None]
    null_values: list[int]  # indexes of records whose value is null (tombstones); usually empty
    #: every record as ``build_batch`` writes its key, value and headers: lengths as shortest
    #: varints (null: -1), no headers - so ``rebuild`` may copy those bytes as they are
    plain: bool


def record_keys(buf: bytes, pos: int, h: BatchHeader) -> RecordKeys:
    """The records of the batch at ``pos`` of ``buf``, key-only (compressed ones decompressed)."""
    if h.records_count <= 0:  # an emptied batch: nothing to decompress (Kafka's may keep its codec bit)
        return RecordKeys(buf, [pos], [], [], [], True)
    if h.compression:
        try:
            data = decompress(h.compression, memoryview(buf)[pos + HEADER_SIZE : pos + h.size])
        except ValueError as e:
            raise CorruptRecordError(str(e)) from e
        p, end = 0, len(data)
    else:
        data, p, end = buf, pos + HEADER_SIZE, pos + h.size
    base = h.base_offset
    starts: list[int] = []
    offsets: list[int] = []
    keys: list[bytes | None] = []
    nulls: list[int] = []
    plain = True
    add_start, add_offset, add_key = starts.append, offsets.append, keys.append  # bound once: per record
    try:
        for i in range(h.records_count):
            add_start(p)
            while data[p] > 127:  # length: read past
                p += 1
            p += 2  # its last byte, then the attributes
            while data[p] > 127:  # timestamp delta
                p += 1
            p += 1
            b = data[p]
            if b < 128:
                add_offset(base + ((b >> 1) ^ -(b & 1)))
                p += 1
            else:
                d, p = _read_varint(data, p)
                add_offset(base + d)
            b = data[p]
            if b < 128:
                n = (b >> 1) ^ -(b & 1)
                p += 1
            elif 0 < data[p + 1] < 128:  # keys of 64 B to 8 KiB
                v = (b & 127) | (data[p + 1] << 7)
                n = (v >> 1) ^ -(v & 1)
                p += 2
            else:
                n, p = _read_varint(data, p)
                plain = False
            if n >= 0:
                add_key(data[p : p + n])
                p += n
            else:
                plain = plain and b == 1
                add_key(None)
            b = data[p]
            if b < 128:
                n = (b >> 1) ^ -(b & 1)
                p += 1
            elif 0 < data[p + 1] < 128:  # values of 64 B to 8 KiB
                v = (b & 127) | (data[p + 1] << 7)
                n = (v >> 1) ^ -(v & 1)
                p += 2
            else:
                n, p = _read_varint(data, p)
                plain = False
            if n >= 0:
                p += n
            else:
                plain = plain and b == 1
                nulls.append(i)
            if data[p] == 0:  # no headers
                p += 1
            else:
                p = _skip_headers(data, p)
                plain = False
    except IndexError as e:
        raise CorruptRecordError(f"malformed records in batch at offset {base}") from e
    if p > end:
        raise CorruptRecordError(f"malformed records in batch at offset {base}")
    starts.append(p)
    return RecordKeys(data, starts, offsets, keys, nulls, plain)


def _skip_headers(data: bytes, p: int) -> int:
    count, p = _read_varint(data, p)
    for _ in range(count * 2):  # key, value
        n, p = _read_varint(data, p)
        p += max(n, 0)
    if p > len(data):
        raise IndexError("header overruns the buffer")
    return p


def decode_kept(keys: RecordKeys, kept: list[int], h: BatchHeader) -> list[SimpleRecord]:
    """The records of indexes ``kept``, decoded as ``decode_batch_records`` would decode them."""
    try:
        return [decode_record(keys.data, keys.starts[i], h)[0] for i in kept]
    except (IndexError, UnicodeDecodeError) as e:
        raise CorruptRecordError(f"malformed records in batch at offset {h.base_offset}") from e


def rebuild(keys: RecordKeys, kept: list[int], h: BatchHeader, delete_horizon_ms: int | None) -> bytes | None:
    """The batch ``h`` with only the records ``kept`` - the very bytes ``build_batch`` writes from
    their decoded records (offsets and producer fields kept, the timestamps re-based, the delete
    horizon as base timestamp if given) - without decoding them: each record's key, value and
    headers are copied as read. None if the batch is not ``plain`` (decode and build it then)."""
    if not keys.plain or not kept:
        return None
    data, starts = keys.data, keys.starts
    log_append = h.attributes & TIMESTAMP_TYPE_BIT
    stamps: list[int] = []
    parts: list[tuple[int, int, int]] = []  # offset delta, start and end of key..headers
    for i in kept:
        p = starts[i]
        while data[p] > 127:  # length
            p += 1
        ts_delta, p = _read_varint(data, p + 2)  # past its last byte and the attributes
        off_delta, p = _read_varint(data, p)
        stamps.append(h.max_timestamp if log_append else h.base_timestamp + ts_delta)
        parts.append((off_delta, p, starts[i + 1]))
    base_ts = stamps[0] if delete_horizon_ms is None else delete_horizon_ms
    body = bytearray()
    for ts, (off_delta, a, b) in zip(stamps, parts, strict=True):
        r = bytearray(b"\x00")  # attributes, as build_batch writes them
        _write_varint(r, ts - base_ts)
        _write_varint(r, off_delta)
        r += data[a:b]
        _write_varint(body, len(r))
        body += r
    attrs = (h.attributes & (TIMESTAMP_TYPE_BIT | TRANSACTIONAL_BIT | COMPRESSION_MASK)) | (
        DELETE_HORIZON_BIT if delete_horizon_ms is not None else 0
    )
    max_ts = h.max_timestamp if log_append else max(stamps)
    return seal_batch(body, (h.base_offset, h.partition_leader_epoch, attrs, h.last_offset_delta, base_ts, max_ts,
                             h.producer_id, h.producer_epoch, h.base_sequence, len(kept)))  # fmt: skip
