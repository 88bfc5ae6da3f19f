"""Key-only reading of a v2 batch's records: what log compaction needs to decide retention.

The log cleaner reads every record of the range it cleans twice (the offset map, then the
rewrite), and needs of each only its offset, its key and whether its value is null. Building a
``SimpleRecord`` per record (``decode_batch_records``: value and headers copied, timestamps,
a frozen object) cost most of a clean's CPU; ``record_keys`` walks the same fields in one flat
loop, copies only the keys and indexes ``bytes`` (faster than a memoryview) with the common
one-byte varints read inline. Records the cleaner keeps in a batch it must re-encode are then
decoded at the positions found here (``decode_kept``).

The walk is field by field, as ``decode_batch_records`` does (the record length varint is read
past, not trusted), so both accept the same records sections; one that reads past its batch
raises ``CorruptRecordError``. (Header keys are not UTF-8-checked here: no record is built.)
"""

from __future__ import annotations

from typing import NamedTuple

from suoi.protocol.compression import decompress
from suoi.protocol.record_batch import HEADER_SIZE, BatchHeader, CorruptRecordError
from suoi.protocol.record_codec import SimpleRecord, _read_varint, decode_record

__all__ = ["RecordKeys", "decode_kept", "record_keys"]


class RecordKeys(NamedTuple):
    """One batch's records, key-only: parallel lists, in record order."""

    data: bytes  # the buffer ``starts`` index: the segment chunk, or the decompressed section
    starts: list[int]  # each record's position in ``data``
    offsets: list[int]  # absolute offsets
    keys: list[bytes | None]
    null_values: list[int]  # indexes of records whose value is null (tombstones); usually empty


def record_keys(buf: bytes, pos: int, h: BatchHeader) -> RecordKeys:
    """The records of the batch at ``pos`` of ``buf``, key-only (compressed ones decompressed)."""
    if h.records_count <= 0:  # an emptied batch: nothing to decompress (Kafka's may keep its codec bit)
        return RecordKeys(buf, [], [], [], [])
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
    try:
        for i in range(h.records_count):
            starts.append(p)
            while data[p] > 127:  # length: read past
                p += 1
            p += 2  # its last byte, then the attributes
            while data[p] > 127:  # timestamp delta
                p += 1
            p += 1
            b = data[p]
            if b < 128:
                offsets.append(base + ((b >> 1) ^ -(b & 1)))
                p += 1
            else:
                d, p = _read_varint(data, p)
                offsets.append(base + d)
            b = data[p]
            if b < 128:
                n = (b >> 1) ^ -(b & 1)
                p += 1
            else:
                n, p = _read_varint(data, p)
            if n < 0:
                keys.append(None)
            else:
                keys.append(data[p : p + n])
                p += n
            b = data[p]
            if b < 128:
                n = (b >> 1) ^ -(b & 1)
                p += 1
            elif data[p + 1] < 128:  # values of 64 B to 8 KiB
                v = (b & 127) | (data[p + 1] << 7)
                n = (v >> 1) ^ -(v & 1)
                p += 2
            else:
                n, p = _read_varint(data, p)
            if n < 0:
                nulls.append(i)
            else:
                p += n
            if data[p] == 0:  # no headers
                p += 1
            else:
                p = _skip_headers(data, p)
    except IndexError as e:
        raise CorruptRecordError(f"malformed records in batch at offset {base}") from e
    if p > end:
        raise CorruptRecordError(f"malformed records in batch at offset {base}")
    return RecordKeys(data, starts, offsets, keys, nulls)


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
