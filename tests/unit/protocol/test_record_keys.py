"""record_keys: the key-only walk agrees with decode_batch_records on every codec and field size,
and refuses a records section that reads past its batch."""

from __future__ import annotations

import random

import pytest

from suoi.protocol.record_keys import decode_kept, rebuild, record_keys
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


@pytest.mark.parametrize("codec", [0, 1, 3])
def test_rebuild_writes_what_build_batch_writes(codec: int) -> None:
    rng = random.Random(100 + codec)
    rebuilt = 0
    for trial in range(60):
        recs = [SimpleRecord(None if rng.random() < 0.05 else rng.randbytes(rng.choice((1, 12, 70))),
                             None if rng.random() < 0.2 else rng.randbytes(rng.choice((0, 5, 100, 8000))),
                             1000 + rng.randrange(-5, 1 << 30), (), 500 + i * rng.choice((1, 3)))
                for i in range(rng.randrange(1, 12))]
        if trial % 5 == 0:  # headers, or a value's length in 3 bytes: not plain, decoded instead
            r = recs[0]
            recs[0] = (SimpleRecord(r.key, r.value, r.timestamp_ms, (("h", b"x"),), r.offset) if trial % 2
                       else SimpleRecord(r.key, b"v" * 9000, r.timestamp_ms, (), r.offset))
        raw = build_batch(recs, base_offset=500, compression=codec, keep_offsets=True, producer_id=3,
                          producer_epoch=1, base_sequence=7, is_transactional=trial % 2 == 1,
                          log_append_time=trial % 3 == 2, delete_horizon_ms=5000 if trial % 4 == 3 else None)
        h = parse_batch_header(raw)
        rk = record_keys(raw, 0, h)
        kept = sorted(rng.sample(range(len(recs)), rng.randrange(1, len(recs) + 1)))
        horizon = rng.choice((None, 123456789))
        got = rebuild(rk, kept, h, horizon)
        assert (got is None) == (trial % 5 == 0)
        if got is None:
            continue
        rebuilt += 1
        records = decode_kept(rk, kept, h)
        log_append = h.timestamp_type == 1
        expected = build_batch(
            records, base_offset=h.base_offset, producer_id=h.producer_id, producer_epoch=h.producer_epoch,
            base_sequence=h.base_sequence, partition_leader_epoch=h.partition_leader_epoch,
            is_transactional=h.is_transactional, log_append_time=log_append, compression=h.compression,
            keep_offsets=True, last_offset_delta=h.last_offset_delta,
            max_timestamp=h.max_timestamp if log_append else max(r.timestamp_ms or 0 for r in records),
            delete_horizon_ms=horizon)
        assert got == expected
    assert rebuilt >= 40
