"""confluent-kafka (librdkafka) against a real broker: round trip, watermarks, offsets_for_times."""

from __future__ import annotations

import confluent_kafka
from confluent_kafka import TopicPartition

from tests.e2e.helpers import aio_consume, ck_consume, ck_produce, create_topic

N = 60


def _records(n: int, base_ts: int, partition: int | None = 0) -> list[dict]:
    return [{"key": f"user-{i % 9}".encode(), "value": (f"payload-{i}-" * (1 + i % 4)).encode(),
             "headers": [("n", str(i).encode()), ("dup", b"a"), ("dup", b"b")],
             "timestamp": base_ts + i * 10, "partition": partition}
            for i in range(n)]


def test_round_trip_confluent(bootstrap: str, topic: str) -> None:
    base_ts = 1_610_000_000_000
    recs = _records(N, base_ts)
    assert ck_produce(bootstrap, topic, recs) == [(0, i) for i in range(N)]
    got = ck_consume(bootstrap, topic, [0], N)
    assert [r.offset for r in got] == list(range(N))
    assert [r.key for r in got] == [r["key"] for r in recs]
    assert [r.value for r in got] == [r["value"] for r in recs]
    # header order and duplicate header keys are preserved
    assert [list(r.headers) for r in got] == [r["headers"] for r in recs]
    assert [r.timestamp for r in got] == [r["timestamp"] for r in recs]


def test_confluent_to_aiokafka(bootstrap: str, topic: str) -> None:
    base_ts = 1_620_000_000_000
    recs = _records(N, base_ts)
    ck_produce(bootstrap, topic, recs)
    got = aio_consume(bootstrap, topic, [0], N)
    assert [(r.offset, r.key, r.value, list(r.headers), r.timestamp) for r in got] == \
        [(i, r["key"], r["value"], r["headers"], r["timestamp"]) for i, r in enumerate(recs)]


def test_order_per_partition_multi_partition(bootstrap: str, topic: str) -> None:
    create_topic(bootstrap, topic, partitions=3)
    recs = [{"value": b"p%d-%d" % (i % 3, i // 3), "partition": i % 3} for i in range(90)]
    delivered = ck_produce(bootstrap, topic, recs)
    for p in range(3):
        assert [o for (pp, o) in delivered if pp == p] == list(range(30))
    got = ck_consume(bootstrap, topic, [0, 1, 2], 90)
    assert len(got) == 90
    for p in range(3):
        mine = [r for r in got if r.partition == p]
        assert [r.offset for r in mine] == list(range(30))
        assert [r.value for r in mine] == [b"p%d-%d" % (p, j) for j in range(30)]


def test_watermarks_and_offsets_for_times(bootstrap: str, topic: str) -> None:
    create_topic(bootstrap, topic, partitions=2)
    base_ts = 1_550_000_000_000
    # partition 0: 20 records in several produce calls (so several batches)
    recs = [{"value": b"a%d" % i, "partition": 0, "timestamp": base_ts + i * 1000} for i in range(20)]
    for chunk in range(4):
        ck_produce(bootstrap, topic, recs[chunk * 5:(chunk + 1) * 5])
    c = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": f"wm-{topic}",
                                  "enable.auto.commit": False})
    try:
        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (0, 20)
        assert c.get_watermark_offsets(TopicPartition(topic, 1), timeout=10) == (0, 0)
        # cached watermarks are not needed: query the broker
        query = [TopicPartition(topic, 0, base_ts + 7_500),   # between records 7 and 8 -> 8
                 TopicPartition(topic, 0, base_ts),           # exactly the first -> 0
                 ]
        res = c.offsets_for_times(query[:1], timeout=10)
        assert [(t.partition, t.offset, t.error) for t in res] == [(0, 8, None)]
        res = c.offsets_for_times(query[1:], timeout=10)
        assert [(t.partition, t.offset) for t in res] == [(0, 0)]
        res = c.offsets_for_times([TopicPartition(topic, 0, base_ts + 12_000)], timeout=10)
        assert res[0].offset == 12
        # later than every record: the end offset (-1 = OFFSET_END in librdkafka)
        res = c.offsets_for_times([TopicPartition(topic, 0, base_ts + 999_999)], timeout=10)
        assert res[0].offset == -1
    finally:
        c.close()
