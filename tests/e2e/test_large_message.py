"""A 5 MB record round-trips byte-exact once the broker's and the clients' limits are raised."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import confluent_kafka
import pytest
from kafka import KafkaProducer

from suoi.testing import EmbeddedBroker
from tests.e2e.helpers import aio_consume, ck_consume, ck_produce, kp_consume

TEN_MB = 10 * 1024 * 1024
SIZE = 5 * 1024 * 1024


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    b = EmbeddedBroker(tmp_path_factory.mktemp("e2e-large"), overrides={
        "message.max.bytes": str(TEN_MB),
        "socket.request.max.bytes": str(4 * TEN_MB),
    })
    b.start()
    try:
        yield b
    finally:
        b.stop()


def _big(seed: bytes) -> bytes:
    # incompressible and position-dependent, so any truncation or reordering shows
    return hashlib.sha256(seed).digest() + os.urandom(SIZE - 32)


def test_5mb_confluent_to_kafka_python_and_aiokafka(bootstrap: str, topic: str) -> None:
    payload = _big(b"ck")
    delivered = ck_produce(bootstrap, topic, [{"key": b"big", "value": payload, "partition": 0},
                                              {"key": b"after", "value": b"small", "partition": 0}],
                           {"message.max.bytes": TEN_MB})
    assert delivered == [(0, 0), (0, 1)]
    got = kp_consume(bootstrap, topic, [0], 2, fetch_max_bytes=2 * TEN_MB, max_partition_fetch_bytes=TEN_MB)
    assert [(r.offset, r.key, len(r.value)) for r in got] == [(0, b"big", SIZE), (1, b"after", 5)]
    assert got[0].value == payload
    got = aio_consume(bootstrap, topic, [0], 2, fetch_max_bytes=2 * TEN_MB, max_partition_fetch_bytes=TEN_MB)
    assert [r.offset for r in got] == [0, 1] and got[0].value == payload and got[1].value == b"small"


def test_5mb_kafka_python_to_confluent(bootstrap: str, topic: str) -> None:
    payload = _big(b"kp")
    producer = KafkaProducer(bootstrap_servers=bootstrap, max_request_size=TEN_MB)
    try:
        meta = producer.send(topic, partition=0, value=payload).get(timeout=20)
    finally:
        producer.close(timeout=5)
    assert (meta.partition, meta.offset, meta.serialized_value_size) == (0, 0, SIZE)
    got = ck_consume(bootstrap, topic, [0], 1, conf={"fetch.max.bytes": 2 * TEN_MB,
                                                     "max.partition.fetch.bytes": TEN_MB,
                                                     "receive.message.max.bytes": 3 * TEN_MB})
    assert len(got) == 1 and got[0].offset == 0 and got[0].value == payload


def test_over_broker_limit_refused(bootstrap: str, topic: str) -> None:
    """11 MB is over message.max.bytes (10 MB): MSG_SIZE_TOO_LARGE, and nothing is stored."""
    p = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "message.max.bytes": 3 * TEN_MB})
    errors: list = []
    p.produce(topic, value=os.urandom(11 * 1024 * 1024), partition=0,
              on_delivery=lambda err, msg: errors.append(err))
    assert p.flush(20) == 0
    assert len(errors) == 1 and errors[0] is not None
    assert errors[0].code() == confluent_kafka.KafkaError.MSG_SIZE_TOO_LARGE
    c = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": "x", "enable.auto.commit": False})
    try:
        assert c.get_watermark_offsets(confluent_kafka.TopicPartition(topic, 0), timeout=10) == (0, 0)
    finally:
        c.close()
