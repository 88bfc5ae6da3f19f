"""kcat (librdkafka 2.0.2) against a real broker: produce/consume, cross-client, compression."""

from __future__ import annotations

import time

import kafka.codec
import pytest

from tests.e2e.helpers import ck_consume, ck_produce, kcat, kcat_consume, kp_consume


def test_round_trip_kcat(bootstrap: str, topic: str) -> None:
    lines = [f"key{i % 4}:value number {i}" for i in range(30)]
    before = int(time.time() * 1000)
    kcat("-P", "-b", bootstrap, "-t", topic, "-p", "0", "-K", ":", "-H", "source=kcat", "-H", "run=1",
         stdin=("\n".join(lines) + "\n").encode())
    after = int(time.time() * 1000)
    got = kcat_consume(bootstrap, topic, 0, 30)
    assert [m["offset"] for m in got] == list(range(30))
    assert [m["key"] for m in got] == [f"key{i % 4}" for i in range(30)]
    assert [m["payload"] for m in got] == [f"value number {i}" for i in range(30)]
    assert all(m["headers"] == ["source", "kcat", "run", "1"] for m in got)
    # CreateTime set by the producer, kept by the broker
    assert all(m["tstype"] == "create" and before - 1000 <= m["ts"] <= after + 1000 for m in got)


def test_kcat_to_kafka_python(bootstrap: str, topic: str) -> None:
    kcat("-P", "-b", bootstrap, "-t", topic, "-p", "0", "-K", "=", "-H", "h=1",
         stdin=b"".join(b"k%d=v%d\n" % (i, i) for i in range(25)))
    got = kp_consume(bootstrap, topic, [0], 25)
    assert [(r.offset, r.key, r.value, list(r.headers)) for r in got] == \
        [(i, b"k%d" % i, b"v%d" % i, [("h", b"1")]) for i in range(25)]


def test_confluent_to_kcat(bootstrap: str, topic: str) -> None:
    base_ts = 1_660_000_000_000
    recs = [{"key": b"ck%d" % i, "value": b"cv%d" % i, "headers": [("x", b"y%d" % i)],
             "timestamp": base_ts + i, "partition": 0} for i in range(20)]
    ck_produce(bootstrap, topic, recs)
    got = kcat_consume(bootstrap, topic, 0, 20)
    assert [(m["offset"], m["key"], m["payload"], m["headers"], m["ts"]) for m in got] == \
        [(i, f"ck{i}", f"cv{i}", ["x", f"y{i}"], base_ts + i) for i in range(20)]


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_kcat_compressed_produce(bootstrap: str, topic: str, codec: str) -> None:
    values = [f"{codec} line {i} " + "abc" * (i % 50) for i in range(200)]
    kcat("-P", "-b", bootstrap, "-t", topic, "-p", "0", "-z", codec,
         stdin=("\n".join(values) + "\n").encode())
    readers = [ck_consume]
    if codec != "snappy" or kafka.codec.has_snappy():  # kafka-python reads snappy via python-snappy
        readers.append(kp_consume)
    for read in readers:
        got = read(bootstrap, topic, [0], 200)
        assert [r.offset for r in got] == list(range(200))
        assert [r.value for r in got] == [v.encode() for v in values]
    assert [m["payload"] for m in kcat_consume(bootstrap, topic, 0, 200)] == values
