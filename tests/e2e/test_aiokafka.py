"""aiokafka (default configs) against a real broker: round trip and cross-client."""

from __future__ import annotations

from tests.e2e.helpers import aio_consume, aio_produce, ck_consume, kp_consume

N = 40


def _records(n: int, base_ts: int) -> list[dict]:
    return [{"key": b"k%d" % (i % 3), "value": b"aio-%d" % i,
             "headers": [("idx", str(i).encode())], "timestamp_ms": base_ts + i * 7, "partition": 0}
            for i in range(n)]


def test_round_trip_aiokafka(bootstrap: str, topic: str) -> None:
    base_ts = 1_630_000_000_000
    recs = _records(N, base_ts)
    assert aio_produce(bootstrap, topic, recs) == [(0, i) for i in range(N)]
    got = aio_consume(bootstrap, topic, [0], N)
    assert [(r.offset, r.key, r.value, list(r.headers), r.timestamp) for r in got] == \
        [(i, r["key"], r["value"], r["headers"], r["timestamp_ms"]) for i, r in enumerate(recs)]


def test_aiokafka_to_kafka_python_and_confluent(bootstrap: str, topic: str) -> None:
    base_ts = 1_640_000_000_000
    recs = _records(N, base_ts)
    aio_produce(bootstrap, topic, recs)
    expected = [(i, r["key"], r["value"], r["headers"], r["timestamp_ms"]) for i, r in enumerate(recs)]
    for got in (kp_consume(bootstrap, topic, [0], N), ck_consume(bootstrap, topic, [0], N)):
        assert [(r.offset, r.key, r.value, list(r.headers), r.timestamp) for r in got] == expected
