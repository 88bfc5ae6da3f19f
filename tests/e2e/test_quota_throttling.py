"""How a client over its quota is answered (KIP-219), checked on the wire with suoi's raw client
and end to end with confluent-kafka:

* a consumer's Fetch that earns a throttle time is answered as Kafka's
  ``fetchContext.getThrottledResponse``: no partitions, error NONE, throttle_time_ms; one Fetch
  asks for at most a quota window's worth (``getMaxValueInQuotaWindow``);
* a Produce over ``producer_byte_rate`` is answered at once with its throttle time, and the
  connection is muted after the answer: the client's next request waits out the throttle.

Quota windows are shortened (2 windows of 1 s) so the test is quick; Kafka's arithmetic is the same.
"""

from __future__ import annotations

import datetime
import importlib
import time
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer
from kio.schema.alter_client_quotas.v1.request import AlterClientQuotasRequest, EntityData, EntryData, OpData
from kio.schema.create_partitions.v3.request import CreatePartitionsRequest, CreatePartitionsTopic
from kio.schema.delete_topics.v6.request import DeleteTopicsRequest, DeleteTopicState
from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData
from kio.schema.types import BrokerId, TopicName
from kio.static.primitive import f64, i8, i16, i32, i32Timedelta, i64

from suoi.model import ErrorCode
from suoi.protocol.record_codec import build_batch
from suoi.testing import InProcessNode
from tests.conftest import wait_until
from tests.e2e.cli import suoi
from tests.rawclient import RawClient

RATE = 50_000  # bytes/s


@pytest.fixture(scope="module")
def node() -> Iterator[InProcessNode]:
    with InProcessNode(overrides={"quota.window.num": "2", "quota.window.size.seconds": "1"}) as n:
        yield n


def set_quota(node: InProcessNode, client_id: str, key: str, value: float | None) -> None:
    entry = EntryData(entity=(EntityData(entity_type="client-id", entity_name=client_id),),
                      ops=(OpData(key=key, value=f64(float(value or 0.0)), remove=value is None),))
    with RawClient(node.bootstrap) as c:
        answer = c.request(AlterClientQuotasRequest(entries=(entry,), validate_only=False))
    assert [e.error_code for e in answer.entries] == [0], answer
    wait_for_quota(node, client_id, key, value)


def wait_for_quota(node: InProcessNode, client_id: str, key: str, value: float | None) -> None:
    def applied() -> bool:
        values = node.broker.kraft.image.client_quotas.get((("client-id", client_id),), {})
        return values.get(key) == value

    wait_until(applied, 5, 0.01, "quota in the node's image")


def fetch(topic: str, offset: int) -> FetchRequest:
    return FetchRequest(
        replica_id=BrokerId(-1), max_wait=i32Timedelta.parse(datetime.timedelta(0)), min_bytes=i32(1),
        max_bytes=i32(10_000_000), isolation_level=i8(0), session_id=i32(0), session_epoch=i32(-1),
        topics=(FetchTopic(topic=TopicName(topic), partitions=(FetchPartition(
            partition=i32(0), current_leader_epoch=i32(-1), fetch_offset=i64(offset), last_fetched_epoch=i32(-1),
            log_start_offset=i64(-1), partition_max_bytes=i32(1_000_000)),)),),
        forgotten_topics_data=(), rack_id="")


def produce_messages(node: InProcessNode, topic: str, count: int, size: int) -> None:
    producer = Producer({"bootstrap.servers": node.bootstrap, "linger.ms": 20, "batch.size": 16_384})
    for i in range(count):
        producer.produce(topic, i.to_bytes(4, "big") + b"x" * (size - 4))
    assert producer.flush(10) == 0


def test_throttled_fetch_is_answered_empty(node: InProcessNode) -> None:
    node.create_topic("q-fetch")
    produce_messages(node, "q-fetch", 200, 1000)  # 200 KB: four seconds of the quota
    set_quota(node, "raw-test", "consumer_byte_rate", RATE)
    try:
        with RawClient(node.bootstrap) as c:
            first = c.request(fetch("q-fetch", 0))
            part = first.responses[0].partitions[0]
            assert part.error_code == 0 and part.records
            # asked 10 MB, given at most a window's worth (one more batch may go over, as max_bytes allows)
            assert len(part.records) <= RATE + 16_384 + 1024, len(part.records)
            answers = [c.request(fetch("q-fetch", 0)) for _ in range(2)]
        throttled = [a for a in answers if a.throttle_time.total_seconds() > 0]
        assert throttled, [a.throttle_time for a in answers]
        for answer in throttled:  # Kafka's getThrottledResponse: nothing read is sent
            assert answer.error_code == 0 and answer.responses == () and answer.session_id == 0
    finally:
        set_quota(node, "raw-test", "consumer_byte_rate", None)


def test_throttled_consumer_gets_everything_at_its_quota(node: InProcessNode) -> None:
    node.create_topic("q-consume")
    produce_messages(node, "q-consume", 90, 1000)
    set_quota(node, "slow-consumer", "consumer_byte_rate", RATE)
    throttles: list[float] = []
    consumer = Consumer({"bootstrap.servers": node.bootstrap, "group.id": "q", "client.id": "slow-consumer",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "throttle_cb": lambda event: throttles.append(event.throttle_time)})
    try:
        consumer.subscribe(["q-consume"])
        seen: list[int] = []
        started = None
        deadline = time.monotonic() + 20
        while len(seen) < 90 and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                started = started or time.monotonic()
                seen.append(int.from_bytes(msg.value()[:4], "big"))
        elapsed = time.monotonic() - (started or 0)
    finally:
        consumer.close()
        set_quota(node, "slow-consumer", "consumer_byte_rate", None)
    assert seen == list(range(90))  # every record once, in order, though responses came back empty
    assert throttles and max(throttles) > 0
    # 90 KB against 50 KB/s, the first window's worth at once: about 0.8 s, never a burst
    print(f"consumed 90 KB in {elapsed:.2f} s at a {RATE} B/s quota; max throttle {max(throttles):.3f} s")
    assert elapsed > 0.5, elapsed


def test_throttled_produce_is_answered_then_muted(node: InProcessNode) -> None:
    """KIP-219: the response comes at once with the throttle time; the next request on that
    connection is read only once the throttle time has passed."""
    node.create_topic("q-produce")
    set_quota(node, "raw-test", "producer_byte_rate", 20_000)
    batch = build_batch([(None, b"y" * 30_000)], timestamp_ms=int(time.time() * 1000))
    request = ProduceRequest(transactional_id=None, acks=i16(1), timeout=i32Timedelta.parse(
        datetime.timedelta(seconds=5)), topic_data=(TopicProduceData(
            name=TopicName("q-produce"), partition_data=(PartitionProduceData(index=i32(0), records=batch),)),))
    try:
        with RawClient(node.bootstrap) as c:
            sent = time.monotonic()
            answer = c.request(request)
            answered = time.monotonic() - sent
            throttle = answer.throttle_time.total_seconds()
            assert answer.responses[0].partition_responses[0].error_code == 0
            # 30 KB over a 1 s window against 20 KB/s: (30000/1 - 20000) / 20000 * 1 s = 0.5 s
            assert 0.45 < throttle <= 0.6, throttle
            assert answered < throttle, answered  # answered at once, not after the throttle
            sent = time.monotonic()
            c.request(AlterClientQuotasRequest(entries=(), validate_only=True))
            waited = time.monotonic() - sent
            assert waited > throttle - 0.1, (waited, throttle)  # muted after the answer
    finally:
        set_quota(node, "raw-test", "producer_byte_rate", None)


def create_topics(version: int, topics: list[tuple[str, int]]) -> Any:
    module = importlib.import_module(f"kio.schema.create_topics.v{version}.request")
    return module.CreateTopicsRequest(topics=tuple(module.CreatableTopic(
        name=TopicName(n), num_partitions=i32(p), replication_factor=i16(1), assignments=(), configs=())
        for n, p in topics), timeout=i32Timedelta.parse(datetime.timedelta(seconds=5)), validate_only=False)


def test_controller_mutation_rate(node: InProcessNode) -> None:
    """KIP-599, set with `suoi configs` as with kafka-configs.sh: 10 partitions/s, a burst of 20 (two
    1 s windows). Strict versions refuse topics with THROTTLING_QUOTA_EXCEEDED while the bucket is
    below zero (one request may take it there); older ones are done and throttled."""
    proc = suoi("configs", "--bootstrap-server", node.bootstrap, "--alter", "--entity-type", "clients",
                "--entity-name", "raw-test", "--add-config", "controller_mutation_rate=10")
    assert proc.returncode == 0, proc.stderr
    wait_for_quota(node, "raw-test", "controller_mutation_rate", 10.0)
    try:
        with RawClient(node.bootstrap) as c:
            # 20 tokens: m1's 21 partitions leave -1 (admitted: not exceeded before it), m2 is refused
            answer = c.request(create_topics(7, [("m1", 21), ("m2", 1)]))
            assert [(t.name, t.error_code) for t in answer.topics] == [
                ("m1", 0), ("m2", ErrorCode.throttling_quota_exceeded)]
            assert answer.topics[1].error_message == "The throttling quota has been exceeded."
            assert 0.05 <= answer.throttle_time.total_seconds() <= 0.15, answer.throttle_time  # 1 token at 10/s
            assert node.broker.kraft.image.topic("m2") is None
            # the next request waits out the mute, by when the bucket is back at 0: admitted again (9
            # partitions: -9, 0.9 s to refill, so the next request finds it below zero however loaded
            # the machine), and CreatePartitions v3 and DeleteTopics v6 are strict too
            grow = c.request(CreatePartitionsRequest(topics=(CreatePartitionsTopic(
                name=TopicName("m1"), count=i32(30), assignments=None),), timeout=i32Timedelta.parse(
                datetime.timedelta(seconds=5)), validate_only=False))
            assert [r.error_code for r in grow.results] == [0], grow
            assert len(node.broker.kraft.image.topic("m1").partitions) == 30
            delete = c.request(DeleteTopicsRequest(topics=(DeleteTopicState(name=TopicName("m1"), topic_id=None),),
                                                   timeout=i32Timedelta.parse(datetime.timedelta(seconds=5))))
            assert [r.error_code for r in delete.responses] == [ErrorCode.throttling_quota_exceeded], delete
            assert delete.throttle_time.total_seconds() > 0 and node.broker.kraft.image.topic("m1") is not None
            # CreateTopics v5 has no such error: the topic is created and the response throttled
            old = c.request(create_topics(5, [("m3", 1)]))
            assert [(t.name, t.error_code) for t in old.topics] == [("m3", 0)]
            assert old.throttle_time.total_seconds() > 0
    finally:
        set_quota(node, "raw-test", "controller_mutation_rate", None)
    with RawClient(node.bootstrap) as c:  # no quota: nothing refused
        assert [t.error_code for t in c.request(create_topics(7, [("m2", 2)])).topics] == [0]
