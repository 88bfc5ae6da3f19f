"""A sessionless ("full") consumer Fetch naming every partition, as librdkafka and kafka-python
send one each poll, against a real node: the answer names every requested partition, in request
order, with its high watermark, last stable offset and log start, however the node serves it
(the partitions resolved once and remembered for the next identical Fetch, a caught-up
partition's answer entry encoded once: `partition/fetch_resolve.py`, `api/fetch.py`), and a
deleted or re-created topic is never served from what an earlier identical Fetch resolved."""

from __future__ import annotations

import datetime
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kio.schema.delete_topics.v6.request import DeleteTopicsRequest, DeleteTopicState
from kio.schema.fetch.v4.request import FetchPartition as FetchPartition4
from kio.schema.fetch.v4.request import FetchRequest as FetchRequest4
from kio.schema.fetch.v4.request import FetchTopic as FetchTopic4
from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic
from kio.schema.fetch.v13.request import FetchPartition as FetchPartition13
from kio.schema.fetch.v13.request import FetchRequest as FetchRequest13
from kio.schema.fetch.v13.request import FetchTopic as FetchTopic13
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic
from kio.schema.types import TopicName
from kio.static.primitive import i32Timedelta

from suoi.model import ErrorCode
from suoi.protocol.records import build_batch, iter_records
from suoi.testing.inprocess import InProcessNode
from tests.conftest import wait_until
from tests.integration.support import produce_req
from tests.rawclient import RawClient

pytestmark = pytest.mark.timeout(60)
PARTITIONS = 6
WAKE_MAX_WAIT_MS = 8000  # long: an answer before it was woken by the Produce, never by the timer


@pytest.fixture(scope="module")
def node() -> Iterator[InProcessNode]:
    with InProcessNode() as running:
        yield running


def _produce(client: RawClient, topic: str, partition: int, values: list[bytes]) -> None:
    batch = build_batch([(None, v) for v in values], timestamp_ms=int(time.time() * 1000))
    answer = client.request(produce_req(topic, partition, batch, acks=1))
    assert answer.responses[0].partition_responses[0].error_code == ErrorCode.none


def _full_fetch(topic: str, offsets: dict[int, int], *, version: int = 12, max_wait_ms: int = 0,
                read_committed: bool = False, topic_id: uuid.UUID | None = None) -> Any:
    wait = datetime.timedelta(milliseconds=max_wait_ms)
    isolation = int(read_committed)
    if version == 4:
        return FetchRequest4(replica_id=-1, max_wait=wait, min_bytes=1, max_bytes=1 << 20, isolation_level=isolation,
                             topics=(FetchTopic4(topic=TopicName(topic), partitions=tuple(
                                 FetchPartition4(partition=p, fetch_offset=o, partition_max_bytes=1 << 20)
                                 for p, o in offsets.items())),))
    if version == 13:
        return FetchRequest13(max_wait=wait, min_bytes=1, max_bytes=1 << 20, isolation_level=isolation,
                              topics=(FetchTopic13(topic_id=topic_id, partitions=tuple(
                                  FetchPartition13(partition=p, fetch_offset=o, partition_max_bytes=1 << 20)
                                  for p, o in offsets.items())),), forgotten_topics_data=())
    return FetchRequest(max_wait=wait, min_bytes=1, max_bytes=1 << 20, isolation_level=isolation,
                        topics=(FetchTopic(topic=TopicName(topic), partitions=tuple(
                            FetchPartition(partition=p, fetch_offset=o, partition_max_bytes=1 << 20)
                            for p, o in offsets.items())),), forgotten_topics_data=())


def _answered(answer: Any) -> list[tuple[int, int, int, int, int, Any, list[bytes | None]]]:
    """(index, error, HW, LSO, log start, aborted transactions, values) per answered partition, in order."""
    assert answer.error_code == ErrorCode.none and len(answer.responses) == 1
    return [(p.partition_index, p.error_code, p.high_watermark, p.last_stable_offset, p.log_start_offset,
             p.aborted_transactions, [r.value for r in iter_records(p.records or b"")])
            for p in answer.responses[0].partitions]


def _parked(client: RawClient, seconds: float = 0.2) -> bool:
    client.sock.settimeout(seconds)
    try:
        client.sock.recv(1, socket.MSG_PEEK)
    except TimeoutError:
        return True
    finally:
        client.sock.settimeout(10)
    return False


def test_full_fetches_of_six_partitions_parked_and_woken_answer_every_partition(node: InProcessNode) -> None:
    """Round after round on one connection (the same six partitions each time), every answer
    names all six with the right HW/LSO/log start: parked then woken by a Produce to one, at
    once with nothing new, read_committed (aborted transactions: an empty list) and
    read_uncommitted (null) alternating, and a v4 (non-flexible) Fetch in between."""
    topic = "full-six"
    node.create_topic(topic, partitions=PARTITIONS)
    ends = {p: p for p in range(PARTITIONS)}  # partition p holds p records
    with RawClient(node.bootstrap) as producer, RawClient(node.bootstrap) as consumer:
        for p in range(1, PARTITIONS):
            _produce(producer, topic, p, [b"old-%d-%d" % (p, i) for i in range(p)])

        def expected(values: dict[int, list[bytes]], read_committed: bool) -> list[Any]:
            aborted = () if read_committed else None
            return [(p, ErrorCode.none, ends[p], ends[p], 0, aborted, values.get(p, [])) for p in range(PARTITIONS)]

        for round_, (target, read_committed) in enumerate([(3, False), (3, True), (0, False), (5, True), (3, False)]):
            offsets = dict(ends)
            # at the log ends: nothing to read, answered at once (max wait 0) with every partition
            # (each twice: a caught-up partition's entry is kept encoded from its second answer)
            for _ in range(2):
                quiet = consumer.request(_full_fetch(topic, offsets, read_committed=read_committed))
                assert _answered(quiet) == expected({}, read_committed), round_
            for _ in range(2):
                old = consumer.request(_full_fetch(topic, offsets, version=4, read_committed=read_committed))
                assert [(p.partition_index, p.error_code, p.high_watermark, p.last_stable_offset)
                        for p in old.responses[0].partitions] == [(p, 0, ends[p], ends[p]) for p in range(PARTITIONS)]
            # parked on all six, woken by one record to `target`
            request = _full_fetch(topic, offsets, max_wait_ms=WAKE_MAX_WAIT_MS, read_committed=read_committed)
            consumer.correlation_id += 1
            consumer.send_bytes(consumer.encode(request, correlation_id=consumer.correlation_id))
            assert _parked(consumer), "a Fetch at every log end answered before any data came"
            counted = node.broker.metrics.topics[topic]
            before = (counted.fetch_requests, counted.bytes_out, counted.failed_fetch)
            started = time.monotonic()
            value = b"new-%d" % round_
            _produce(producer, topic, target, [value])
            correlation_id, answer = consumer.decode(request, consumer.recv_frame())
            assert correlation_id == consumer.correlation_id
            assert time.monotonic() - started < WAKE_MAX_WAIT_MS / 2000, "answered by the timer, not the Produce"
            ends[target] += 1
            assert _answered(answer) == expected({target: [value]}, read_committed), round_
            # the topic's counters: six partitions answered, the woken one's bytes out, no failure
            sent = len(answer.responses[0].partitions[target].records)
            assert (counted.fetch_requests, counted.bytes_out, counted.failed_fetch) == (
                before[0] + PARTITIONS, before[1] + sent, before[2]), round_


def _topic_id(client: RawClient, topic: str) -> uuid.UUID:
    md = client.request(MetadataRequest(topics=(MetadataRequestTopic(topic_id=None, name=TopicName(topic)),),
                                        allow_auto_topic_creation=False, include_topic_authorized_operations=False))
    assert md.topics[0].error_code == ErrorCode.none
    return md.topics[0].topic_id


def _delete(client: RawClient, node: InProcessNode, topic: str) -> None:
    deleted = client.request(DeleteTopicsRequest(topics=(DeleteTopicState(name=TopicName(topic), topic_id=None),),
                                                 timeout=i32Timedelta.parse(datetime.timedelta(seconds=10))))
    assert [r.error_code for r in deleted.responses] == [ErrorCode.none]
    replicas = node.broker.kraft.replicas
    wait_until(lambda: not any(tp.topic == topic for tp in replicas.leaders), message="the topic's leaders gone")


def test_a_topic_deleted_between_identical_full_fetches_is_unknown_and_a_new_one_is_served(
        node: InProcessNode) -> None:
    """The same full Fetch (by name, v12; by topic id, v13) before and after the topic is
    deleted: UNKNOWN_TOPIC_OR_PARTITION / UNKNOWN_TOPIC_ID for every partition after, also for
    a Fetch parked when the deletion came (answered at its max wait). Re-created under the same
    name, the new topic's partitions are the ones read (its HW, its records)."""
    topic = "full-gone"
    node.create_topic(topic, partitions=PARTITIONS)
    offsets = dict.fromkeys(range(PARTITIONS), 0)
    with RawClient(node.bootstrap) as client, RawClient(node.bootstrap) as parked:
        for p in range(PARTITIONS):
            _produce(client, topic, p, [b"a", b"b", b"c"])
        tid = _topic_id(client, topic)
        at_end = dict.fromkeys(range(PARTITIONS), 3)
        for _ in range(2):  # the second is the identical Fetch the node remembers
            assert [a[:5] for a in _answered(client.request(_full_fetch(topic, offsets)))] == [
                (p, ErrorCode.none, 3, 3, 0) for p in range(PARTITIONS)]
            by_id = client.request(_full_fetch(topic, offsets, version=13, topic_id=tid))
            assert [(p.partition_index, p.error_code, p.high_watermark) for p in by_id.responses[0].partitions] == [
                (p, ErrorCode.none, 3) for p in range(PARTITIONS)]
        request = _full_fetch(topic, at_end, max_wait_ms=1500)
        parked.send_bytes(parked.encode(request, correlation_id=7))
        assert _parked(parked, 0.1)
        _delete(client, node, topic)
        correlation_id, answer = parked.decode(request, parked.recv_frame())
        assert correlation_id == 7
        assert [(p.partition_index, p.error_code) for p in answer.responses[0].partitions] == [
            (p, ErrorCode.unknown_topic_or_partition) for p in range(PARTITIONS)]
        for _ in range(2):
            gone = client.request(_full_fetch(topic, offsets))
            assert [(p.partition_index, p.error_code, p.high_watermark, bool(p.records))
                    for p in gone.responses[0].partitions] == [
                (p, ErrorCode.unknown_topic_or_partition, -1, False) for p in range(PARTITIONS)]
            gone_by_id = client.request(_full_fetch(topic, offsets, version=13, topic_id=tid))
            assert [(p.partition_index, p.error_code) for p in gone_by_id.responses[0].partitions] == [
                (p, ErrorCode.unknown_topic_id) for p in range(PARTITIONS)]
        node.create_topic(topic, partitions=PARTITIONS)
        _produce(client, topic, 2, [b"reborn"])
        again = _answered(client.request(_full_fetch(topic, offsets)))
        assert again == [(p, ErrorCode.none, int(p == 2), int(p == 2), 0, None, [b"reborn"] if p == 2 else [])
                         for p in range(PARTITIONS)]
        new_id = _topic_id(client, topic)
        assert new_id != tid
        stale = client.request(_full_fetch(topic, offsets, version=13, topic_id=tid))
        assert {p.error_code for p in stale.responses[0].partitions} == {ErrorCode.unknown_topic_id}
