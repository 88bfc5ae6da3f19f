"""librdkafka (confluent-kafka) against leader epochs (KIP-320): a consumer whose position
carries a leader epoch asks OffsetForLeaderEpoch before fetching from it (after a seek, or
when Metadata shows the partition's epoch moved) and acts on the answer: it goes on when
the epoch still ends beyond its position, and reports log truncation when it does not.

The client's debug log (`debug=fetch`) shows each validation; the tests read it to know the
broker was asked, and that nothing was taken for truncation."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from suoi.testing import EmbeddedBroker
from tests.conftest import wait_until
from tests.e2e.helpers import ck_produce, create_topic
from tests.integration.kraft_cluster import KRaftCluster, kraft_cluster

SUCCEEDED = "offset and epoch validation succeeded"


class ClientLog(logging.Handler):
    """librdkafka's log lines, as the client delivers them (from poll)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def matching(self, text: str) -> list[str]:
        return [line for line in self.lines if text in line]


def consumer(bootstrap: str, **conf: object) -> tuple[Consumer, ClientLog]:
    handler = ClientLog()
    logger = logging.getLogger(f"rdkafka.{uuid.uuid4().hex[:8]}")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{uuid.uuid4().hex[:8]}",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest", "debug": "fetch",
                  "logger": logger, **conf})
    return c, handler


def poll_values(c: Consumer, log: ClientLog, count: int, timeout: float = 30.0) -> list[tuple[int, bytes]]:
    """(offset, value) of the next `count` records; a consumer error fails the test."""
    out: list[tuple[int, bytes]] = []
    deadline = time.monotonic() + timeout
    while len(out) < count:
        assert time.monotonic() < deadline, \
            f"only {len(out)} of {count} records within {timeout}s; client log:\n" + "\n".join(log.lines[-40:])
        m = c.poll(0.2)
        if m is None:
            continue
        assert m.error() is None, m.error()
        out.append((m.offset(), m.value()))
    return out


def next_error(c: Consumer, timeout: float = 20.0) -> KafkaError:
    def polled() -> Message | None:
        m = c.poll(0.2)
        assert m is None or m.error() is not None, f"unexpected record at {m.offset()}"
        return m

    return wait_until(polled, timeout=timeout, message="a consumer error").error()


def values(n: int, prefix: str = "v") -> list[dict[str, bytes]]:
    return [{"value": f"{prefix}{i}".encode()} for i in range(n)]


def test_seek_with_an_epoch_is_validated(broker: EmbeddedBroker, topic: str) -> None:
    create_topic(broker.bootstrap, topic)
    ck_produce(broker.bootstrap, topic, values(20))
    c, log = consumer(broker.bootstrap)
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        assert [o for o, _ in poll_values(c, log, 5)] == [0, 1, 2, 3, 4]
        c.seek(TopicPartition(topic, 0, 12, leader_epoch=0))
        assert poll_values(c, log, 8) == [(o, f"v{o}".encode()) for o in range(12, 20)]
    finally:
        c.close()
    validated = log.matching(SUCCEEDED)
    assert validated and "broker end offset 20 (offset leader epoch 0)" in validated[0], log.lines
    assert not log.matching("truncation"), log.matching("truncation")


def test_truncation_is_detected_from_the_answer(broker: EmbeddedBroker, topic: str) -> None:
    """A position past where its epoch ends is truncation: with auto.offset.reset=error the
    client reports it, naming the end offset the broker gave."""
    create_topic(broker.bootstrap, topic)
    ck_produce(broker.bootstrap, topic, values(10))
    c, log = consumer(broker.bootstrap, **{"auto.offset.reset": "error"})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        poll_values(c, log, 10)
        c.seek(TopicPartition(topic, 0, 25, leader_epoch=0))
        error = next_error(c)
    finally:
        c.close()
    assert "truncation detected at offset 25" in error.str() and "broker end offset is 10" in error.str(), error


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KRaftCluster]:
    with kraft_cluster(Path(tmp_path_factory.mktemp("kraft-epochs"))) as c:
        yield c


def test_consumer_follows_a_leader_restart(cluster: KRaftCluster, topic: str) -> None:
    """The partition's leader stops (controlled shutdown) and comes back: its epoch moves
    twice; the consumer validates its position against the new epoch and reads on."""
    create_topic(cluster.bootstrap, topic)
    leader, epoch = cluster.wait_leaders(topic, 1)[0]
    assert epoch == 0
    ck_produce(cluster.bootstrap, topic, values(10, "a"))
    c, log = consumer(cluster.bootstrap, **{"topic.metadata.refresh.interval.ms": 500})
    try:
        c.subscribe([topic])
        first = poll_values(c, log, 10)
        cluster.nodes[leader].stop()
        cluster.nodes[leader].start()
        cluster.wait_registered()
        assert cluster.wait_leaders(topic, 1)[0][1] >= 2
        ck_produce(cluster.bootstrap, topic, values(10, "b"))
        second = poll_values(c, log, 10)
        wait_until(lambda: c.poll(0.1) is None and log.matching(SUCCEEDED), timeout=10,
                   message="the consumer's epoch validation")
    finally:
        c.close()
    assert first + second == [(i, f"a{i}".encode()) for i in range(10)] + \
        [(10 + i, f"b{i}".encode()) for i in range(10)]
    assert log.matching("epoch updated from metadata"), log.lines
    assert not log.matching("truncation"), log.matching("truncation")
