"""record_keys: the key-only walk agrees with decode_batch_records on every codec and field size,
and refuses a records section that reads past its batch."""

from __future__ import annotations

import random

import pytest

from suoi.protocol.record_keys import decode_kept, record_keys
from suoi.protocol.records import (
    CorruptRecordError,
    SimpleRecord,
    build_batch,
    decode_batch_records,
    parse_batch_header,
)


def random_records(rng: random.Random, n: int) -> list[SimpleRecord]:
    out = []
    for i in range(n):
        key = None if rng.random() < 0.1 else rng.randbytes(rng.choice((0, 3, 70, 200)))
        value = None if rng.random() < 0.2 else rng.randbytes(rng.choice((0, 10, 63, 64, 100, 9000, 20000)))
        headers = tuple((f"h{j}", None if j % 2 else b"x" * j * 50) for j in range(rng.choice((0, 0, 1, 3))))
        out.append(SimpleRecord(key, value, 1000 + rng.randrange(-5, 1 << 40), headers, 500 + i * rng.choice((1, 3))))
    return out


@pytest.mark.parametrize("codec", [0, 1, 2, 3, 4])
def test_agrees_with_the_full_decoder(codec: int) -> None:
    rng = random.Random(codec)
    for trial in range(30):
        recs = random_records(rng, rng.randrange(1, 12))
        raw = build_batch(recs, base_offset=500, compression=codec, keep_offsets=True, timestamp_ms=1000)
        prefix = rng.randbytes(trial)  # the batch sits somewhere in a chunk, followed by more bytes
        buf = prefix + raw + rng.randbytes(50)
        h = parse_batch_header(buf, len(prefix))
        rk = record_keys(buf, len(prefix), h)
        full = decode_batch_records(buf, len(prefix), h)
        assert rk.keys == [r.key for r in full]
        assert rk.offsets == [r.offset for r in full]
        assert rk.null_values == [i for i, r in enumerate(full) if r.value is None]
        kept = [i for i in range(len(full)) if i % 2 == 0]
        assert decode_kept(rk, kept, h) == [full[i] for i in kept]


def test_an_empty_batch_has_no_records_whatever_its_codec() -> None:
    h = parse_batch_header(build_batch([]))._replace(attributes=4)  # zstd bit, no compressed section
    assert record_keys(build_batch([]), 0, h).keys == []


def test_a_records_section_past_its_batch_is_corrupt() -> None:
    raw = bytearray(build_batch([(b"key", b"v" * 100), (b"k2", b"w" * 30)]))
    h = parse_batch_header(raw)
    cut = h._replace(size=h.size - 20)  # the last record reads past the batch end
    with pytest.raises(CorruptRecordError):
        record_keys(bytes(raw) + b"\x00" * 100, 0, cut)
    with pytest.raises(CorruptRecordError):
        record_keys(bytes(raw[:-20]), 0, h)  # and past the buffer
    more = h._replace(records_count=3)
    with pytest.raises(CorruptRecordError):
        record_keys(bytes(raw), 0, more)
