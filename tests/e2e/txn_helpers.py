"""Helpers for the transaction end-to-end tests: transactional producers, offsets by
isolation level (raw ListOffsets), and consumers that read a partition to its end."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import confluent_kafka
from kio.schema.errors import ErrorCode

from tests.integration.support import LATEST, list_offsets_req
from tests.rawclient import RawClient

READ_UNCOMMITTED, READ_COMMITTED = 0, 1


def txn_producer(bootstrap: str, tid: str, **conf: Any) -> confluent_kafka.Producer:
    p = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "transactional.id": tid, "linger.ms": 5, **conf})
    p.init_transactions(20)
    return p


def latest(bootstrap: str, topic: str, partition: int = 0, isolation: int = READ_UNCOMMITTED) -> int:
    """ListOffsets(LATEST) at an isolation level: the log end, or the last stable offset."""
    req = dataclasses.replace(list_offsets_req(topic, partition, LATEST), isolation_level=isolation)
    with RawClient(bootstrap) as c:
        p = c.request(req).topics[0].partitions[0]
    assert p.error_code == ErrorCode.none, p.error_code
    return int(p.offset)


def ck_read_to_end(bootstrap: str, topic: str, partitions: list[int], *, isolation: str,
                   timeout: float = 20.0) -> list[confluent_kafka.Message]:
    """Every record of the partitions from the beginning until each reports EOF (confluent)."""
    c = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": f"rd-{topic}", "enable.auto.commit": False,
                                  "isolation.level": isolation, "enable.partition.eof": True})
    try:
        c.assign([confluent_kafka.TopicPartition(topic, p, confluent_kafka.OFFSET_BEGINNING) for p in partitions])
        out: list[confluent_kafka.Message] = []
        at_eof: set[int] = set()
        deadline = time.monotonic() + timeout
        while at_eof != set(partitions):
            assert time.monotonic() < deadline, f"only partitions {sorted(at_eof)} reached EOF in {timeout}s"
            for m in c.consume(num_messages=1000, timeout=0.5):
                err = m.error()
                if err is None:
                    out.append(m)
                    at_eof.discard(m.partition())
                elif err.code() == confluent_kafka.KafkaError._PARTITION_EOF:
                    at_eof.add(m.partition())
                else:
                    raise AssertionError(f"consume error: {err}")
        return out
    finally:
        c.close()


def kp_read_to_end(bootstrap: str, topic: str, partition: int, *, isolation: str, timeout: float = 20.0) -> list[Any]:
    """Every record of one partition up to the end visible at `isolation` (kafka-python)."""
    from kafka import KafkaConsumer, TopicPartition

    c = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level=isolation, enable_auto_commit=False)
    try:
        tp = TopicPartition(topic, partition)
        c.assign([tp])
        c.seek_to_beginning(tp)
        end = c.end_offsets([tp])[tp]  # honours isolation_level: the LSO for read_committed
        out: list[Any] = []
        deadline = time.monotonic() + timeout
        while c.position(tp) < end:
            assert time.monotonic() < deadline, f"position {c.position(tp)} never reached {end}"
            for msgs in c.poll(timeout_ms=500).values():
                out += msgs
        return out
    finally:
        c.close()


def fatal_error(exc: BaseException) -> confluent_kafka.KafkaError:
    assert isinstance(exc, confluent_kafka.KafkaException), exc
    return exc.args[0]


FENCED_CODES = {confluent_kafka.KafkaError._FENCED, confluent_kafka.KafkaError.PRODUCER_FENCED,
                confluent_kafka.KafkaError.INVALID_PRODUCER_EPOCH}
