"""Record-batch compression codecs, byte-compatible with what Kafka clients write.

The records section of a v2 batch (everything after the 61-byte header) is
compressed as one stream; the codec is in the low three bits of the batch
attributes:

* 1 gzip   - a standard gzip stream (RFC 1952).
* 2 snappy - Java clients (and kafka-python) write *xerial* snappy framing:
  ``\\x82SNAPPY\\x00`` + int32 version + int32 min-compatible version, then
  blocks of ``int32 length`` + raw snappy.  librdkafka writes plain raw
  snappy.  ``decompress`` accepts both; ``compress`` writes xerial framing,
  which every client (Java, librdkafka, kafka-python) reads.
* 3 lz4    - the standard LZ4 frame format (KIP-57).  ``compress`` writes the
  frame Kafka's Java producer writes: independent 64 KiB blocks, no block or
  content checksums, no content size.
* 4 zstd   - a standard zstd frame.

Sans-IO and pure functions; the codecs themselves come from ``cramjam``.
"""

from __future__ import annotations

import struct

import cramjam

__all__ = [
    "GZIP",
    "LZ4",
    "NONE",
    "SNAPPY",
    "ZSTD",
    "UnsupportedCompressionError",
    "compress",
    "decompress",
]

NONE, GZIP, SNAPPY, LZ4, ZSTD = 0, 1, 2, 3, 4

_XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER = _XERIAL_MAGIC + struct.pack(">ii", 1, 1)
_XERIAL_BLOCK = 32 * 1024  # the Java SnappyOutputStream default
_I32 = struct.Struct(">i")

_LZ4_MAGIC = b"\x04\x22\x4d\x18"
_LZ4_BLOCK = 64 * 1024
_LZ4_FLG = 0x60  # version 01, block independence; no checksums, no content size
_LZ4_BD = 0x40  # max block size 64 KiB
_LE32 = struct.Struct("<I")


class UnsupportedCompressionError(ValueError):
    """Unknown codec id, or data that does not decode with the batch's codec."""


def decompress(codec: int, data: bytes | bytearray | memoryview) -> bytes:
    """Decode the records section of a batch compressed with ``codec``."""
    try:
        if codec == NONE:
            return bytes(data)
        if codec == GZIP:
            return bytes(cramjam.gzip.decompress(bytes(data)))
        if codec == SNAPPY:
            return _snappy_decompress(bytes(data))
        if codec == LZ4:
            return bytes(cramjam.lz4.decompress(bytes(data)))
        if codec == ZSTD:
            return bytes(cramjam.zstd.decompress(bytes(data)))
    except (cramjam.DecompressionError, ValueError, struct.error) as e:
        raise UnsupportedCompressionError(f"cannot decompress with codec {codec}: {e}") from e
    raise UnsupportedCompressionError(f"unknown compression codec {codec}")


def compress(codec: int, data: bytes | bytearray | memoryview) -> bytes:
    """Encode a records section the way Kafka's Java producer would."""
    raw = bytes(data)
    if codec == NONE:
        return raw
    if codec == GZIP:
        return bytes(cramjam.gzip.compress(raw))
    if codec == SNAPPY:
        return _snappy_compress(raw)
    if codec == LZ4:
        return _lz4_compress(raw)
    if codec == ZSTD:
        return bytes(cramjam.zstd.compress(raw))
    raise UnsupportedCompressionError(f"unknown compression codec {codec}")


# ---------------------------------------------------------------- snappy


def _snappy_decompress(data: bytes) -> bytes:
    if not data.startswith(_XERIAL_MAGIC):
        return bytes(cramjam.snappy.decompress_raw(data))  # librdkafka: raw snappy
    out = bytearray()
    pos = len(_XERIAL_HEADER)
    end = len(data)
    while pos < end:
        if end - pos < 4:
            raise ValueError("truncated xerial snappy block length")
        (n,) = _I32.unpack_from(data, pos)
        pos += 4
        if n < 0 or pos + n > end:
            raise ValueError("xerial snappy block overruns the data")
        out += cramjam.snappy.decompress_raw(data[pos : pos + n])
        pos += n
    return bytes(out)


def _snappy_compress(data: bytes) -> bytes:
    out = bytearray(_XERIAL_HEADER)
    for i in range(0, len(data), _XERIAL_BLOCK):
        block = bytes(cramjam.snappy.compress_raw(data[i : i + _XERIAL_BLOCK]))
        out += _I32.pack(len(block))
        out += block
    return bytes(out)


# ---------------------------------------------------------------- lz4


def _lz4_compress(data: bytes) -> bytes:
    descriptor = bytes((_LZ4_FLG, _LZ4_BD))
    out = bytearray(_LZ4_MAGIC)
    out += descriptor
    out.append((_xxh32(descriptor) >> 8) & 0xFF)
    for i in range(0, len(data), _LZ4_BLOCK):
        chunk = data[i : i + _LZ4_BLOCK]
        block = bytes(cramjam.lz4.compress_block(chunk, store_size=False))
        if len(block) >= len(chunk):
            out += _LE32.pack(len(chunk) | 0x80000000)  # stored uncompressed
            out += chunk
        else:
            out += _LE32.pack(len(block))
            out += block
    out += b"\x00\x00\x00\x00"  # end mark
    return bytes(out)


_P1, _P2, _P3, _P4, _P5 = 2654435761, 2246822519, 3266489917, 668265263, 374761393
_M32 = 0xFFFFFFFF


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _M32


def _xxh32(data: bytes, seed: int = 0) -> int:
    """XXH32 - only ever used here on the 2-3 byte LZ4 frame descriptor."""
    n = len(data)
    pos = 0
    if n >= 16:
        v = [(seed + _P1 + _P2) & _M32, (seed + _P2) & _M32, seed, (seed - _P1) & _M32]
        while pos + 16 <= n:
            for j in range(4):
                (lane,) = _LE32.unpack_from(data, pos)
                v[j] = (_rotl((v[j] + lane * _P2) & _M32, 13) * _P1) & _M32
                pos += 4
        h = (_rotl(v[0], 1) + _rotl(v[1], 7) + _rotl(v[2], 12) + _rotl(v[3], 18)) & _M32
    else:
        h = (seed + _P5) & _M32
    h = (h + n) & _M32
    while pos + 4 <= n:
        (word,) = _LE32.unpack_from(data, pos)
        h = (_rotl((h + word * _P3) & _M32, 17) * _P4) & _M32
        pos += 4
    while pos < n:
        h = (_rotl((h + data[pos] * _P5) & _M32, 11) * _P1) & _M32
        pos += 1
    h ^= h >> 15
    h = (h * _P2) & _M32
    h ^= h >> 13
    h = (h * _P3) & _M32
    h ^= h >> 16
    return h
