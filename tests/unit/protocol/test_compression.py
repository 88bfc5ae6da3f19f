"""Record codecs: byte compatibility with what real Kafka clients write and read.

The first tests are pure; the last ones start a real broker, let confluent-kafka
(librdkafka) and kafka-python produce with every codec, decode the stored
batches with our code, and consume batches we compressed with both clients.
"""

from __future__ import annotations

import gzip
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import cramjam
import lz4.frame
import pytest
import zstandard
from kafka.codec import snappy_decode, snappy_encode

from suoi.protocol.compression import (
    GZIP,
    LZ4,
    SNAPPY,
    ZSTD,
    UnsupportedCompressionError,
    _xxh32,
    compress,
    decompress,
)
from suoi.protocol.records import SimpleRecord, build_batch, iter_batches, iter_records
from suoi.testing import EmbeddedBroker

CODECS = {"gzip": GZIP, "snappy": SNAPPY, "lz4": LZ4, "zstd": ZSTD}
DATA = [b"", b"x", os.urandom(5000) + b"abc" * 50_000]  # the last spans many 32/64 KiB blocks


@pytest.mark.parametrize("codec", CODECS.values())
@pytest.mark.parametrize("data", DATA, ids=["empty", "one", "large"])
def test_round_trip(codec: int, data: bytes) -> None:
    assert decompress(codec, compress(codec, data)) == data


def test_outputs_are_standard_streams() -> None:
    data = DATA[2]
    assert gzip.decompress(compress(GZIP, data)) == data
    assert zstandard.ZstdDecompressor().decompress(compress(ZSTD, data), max_output_size=len(data)) == data
    assert lz4.frame.decompress(compress(LZ4, data)) == data
    assert snappy_decode(compress(SNAPPY, data)) == data  # kafka-python reads xerial framing


def test_lz4_frame_matches_the_java_producer_settings() -> None:
    """Independent 64 KiB blocks, no checksums, no content size - what KafkaLZ4BlockOutputStream writes."""
    ours = compress(LZ4, DATA[2])
    ref = lz4.frame.compress(DATA[2], block_size=lz4.frame.BLOCKSIZE_MAX64KB, block_linked=False,
                             content_checksum=False, store_size=False)
    assert ours[:7] == ref[:7]
    assert _xxh32(b"") == 0x02CC5D05 and _xxh32(b"abcdefghijklmnopqrstuvwxyz") == 0x63A14D5F


def test_snappy_accepts_xerial_and_raw() -> None:
    data = DATA[2]
    assert compress(SNAPPY, data).startswith(b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01")
    assert decompress(SNAPPY, snappy_encode(data)) == data  # xerial, as Java/kafka-python write
    assert decompress(SNAPPY, bytes(cramjam.snappy.compress_raw(data))) == data  # raw, as librdkafka writes


def test_bad_input() -> None:
    with pytest.raises(UnsupportedCompressionError):
        decompress(7, b"x")
    with pytest.raises(UnsupportedCompressionError):
        decompress(GZIP, b"not gzip")
    with pytest.raises(UnsupportedCompressionError):
        compress(5, b"x")


@pytest.mark.parametrize("codec", CODECS.values())
def test_compressed_batches_decode(codec: int) -> None:
    recs = [SimpleRecord(b"k%d" % i, b"v%d" % i if i % 3 else None, 1000 + i, (("h", b"%d" % i),)) for i in range(50)]
    batch = build_batch(recs, base_offset=100, compression=codec)
    (_, h), = iter_batches(batch)
    assert h.compression == codec and h.records_count == 50 and h.last_offset == 149
    got = list(iter_records(batch))
    assert [(r.offset, r.key, r.value, r.timestamp_ms, r.headers) for r in got] == [
        (100 + i, r.key, r.value, r.timestamp_ms, r.headers) for i, r in enumerate(recs)]


# ---------------------------------------------------------------- real clients


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    b = EmbeddedBroker(tmp_path_factory.mktemp("codecs"))
    b.start()
    try:
        yield b
    finally:
        b.stop()


def _stored_records(broker: EmbeddedBroker, topic: str, count: int) -> tuple[set[int], list[SimpleRecord]]:
    """Read the partition's segment file directly: (codecs seen, records)."""
    seg = Path(broker.log_dirs[0]) / f"{topic}-0" / f"{0:020d}.log"
    deadline = time.monotonic() + 10
    while True:
        data = seg.read_bytes() if seg.exists() else b""
        recs = list(iter_records(data))
        if len(recs) >= count or time.monotonic() > deadline:
            return {h.compression for _, h in iter_batches(data)}, recs
        time.sleep(0.05)


VALUES = [(b"key-%d" % i, (b"value %d " % i) * (1 + i % 40)) for i in range(300)]


@pytest.mark.parametrize("name", CODECS)
def test_decode_what_librdkafka_produces(broker: EmbeddedBroker, name: str) -> None:
    import confluent_kafka

    topic = f"ck-{name}-{uuid.uuid4().hex[:6]}"
    p = confluent_kafka.Producer({"bootstrap.servers": broker.bootstrap, "compression.type": name,
                                  "linger.ms": 50})
    for k, v in VALUES:
        p.produce(topic, key=k, value=v, partition=0)
    assert p.flush(20) == 0
    codecs, recs = _stored_records(broker, topic, len(VALUES))
    assert [(r.key, r.value) for r in recs] == VALUES
    assert [r.offset for r in recs] == list(range(len(VALUES)))
    # librdkafka sends a batch uncompressed when compressing would not shrink it (a small
    # batch under load), so some plain batches may sit between the compressed ones.
    assert CODECS[name] in codecs and codecs <= {0, CODECS[name]}


@pytest.mark.parametrize("name", CODECS)
def test_decode_what_kafka_python_produces(broker: EmbeddedBroker, name: str) -> None:
    from kafka import KafkaProducer

    topic = f"kp-{name}-{uuid.uuid4().hex[:6]}"
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, compression_type=name, linger_ms=50)
    try:
        for k, v in VALUES:
            p.send(topic, key=k, value=v, partition=0)
        p.flush(20)
    finally:
        p.close()
    codecs, recs = _stored_records(broker, topic, len(VALUES))
    assert codecs == {CODECS[name]}
    assert [(r.key, r.value) for r in recs] == VALUES


@pytest.mark.parametrize("name", CODECS)
def test_clients_read_batches_we_compress(broker: EmbeddedBroker, name: str) -> None:
    import confluent_kafka
    from kafka import KafkaConsumer, TopicPartition

    from tests.integration.support import create_topic, produce

    topic = f"ours-{name}-{uuid.uuid4().hex[:6]}"
    create_topic(broker.bootstrap, topic)
    recs = [SimpleRecord(k, v, 1_700_000_000_000 + i, (("h", b"x"),)) for i, (k, v) in enumerate(VALUES)]
    for i in range(0, len(recs), 100):
        produce(broker.bootstrap, topic, 0, build_batch(recs[i : i + 100], compression=CODECS[name]))

    c = confluent_kafka.Consumer({"bootstrap.servers": broker.bootstrap, "group.id": topic,
                                  "enable.auto.commit": False})
    got: list[tuple[bytes, bytes]] = []
    try:
        c.assign([confluent_kafka.TopicPartition(topic, 0, confluent_kafka.OFFSET_BEGINNING)])
        deadline = time.monotonic() + 15
        while len(got) < len(VALUES) and time.monotonic() < deadline:
            for m in c.consume(100, timeout=0.5):
                assert m.error() is None, m.error()
                got.append((m.key(), m.value()))
    finally:
        c.close()
    assert got == VALUES

    kc = KafkaConsumer(bootstrap_servers=broker.bootstrap)
    got = []
    try:
        tp = TopicPartition(topic, 0)
        kc.assign([tp])
        kc.seek_to_beginning(tp)
        deadline = time.monotonic() + 15
        while len(got) < len(VALUES) and time.monotonic() < deadline:
            for msgs in kc.poll(timeout_ms=500).values():
                got += [(m.key, m.value) for m in msgs]
    finally:
        kc.close()
    assert got == VALUES


def test_recompress_batches_rewrites_only_the_records_section() -> None:
    from suoi.protocol.record_batch import CorruptRecordError, recompress_batches, validate_batches
    from suoi.protocol.records import build_control_batch

    data = (build_batch([(b"k", b"v" * 300), (None, b"x")], timestamp_ms=7, producer_id=5, producer_epoch=1,
                        base_sequence=3)
            + build_batch([(b"a", b"b")], compression=GZIP, timestamp_ms=8)
            + build_control_batch(producer_id=5, producer_epoch=1, commit=True, coordinator_epoch=0, timestamp_ms=9))
    before = validate_batches(data, max_batch_bytes=1 << 20)
    out = recompress_batches(data, before, ZSTD)
    assert out is not None
    after = validate_batches(out, max_batch_bytes=1 << 20)  # framing and CRCs are valid
    assert [h.compression for h in after] == [ZSTD, ZSTD, 0]  # control batches are never compressed
    for b, a in zip(before, after, strict=True):  # offsets, timestamps and producer fields kept
        assert (a.base_offset, a.last_offset_delta, a.max_timestamp, a.producer_id, a.base_sequence,
                a.records_count) == (b.base_offset, b.last_offset_delta, b.max_timestamp, b.producer_id,
                                     b.base_sequence, b.records_count)
    records = [(r.key, r.value) for pos, h in iter_batches(out) if not h.is_control
               for r in iter_records(out[pos:pos + h.size])]
    assert records == [(b"k", b"v" * 300), (None, b"x"), (b"a", b"b")]
    assert recompress_batches(out, after, ZSTD) is None  # nothing to do
    broken = bytearray(build_batch([(b"k", b"v")], compression=GZIP))
    broken[61:] = b"\x00" * (len(broken) - 61)  # not a gzip stream (CRC is not checked here)
    with pytest.raises(CorruptRecordError):
        recompress_batches(bytes(broken), validate_batches(build_batch([(b"k", b"v")], compression=GZIP),
                                                           max_batch_bytes=1 << 20), 0)
