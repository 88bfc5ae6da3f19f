"""Idempotent produce at the protocol level: retries are deduplicated, gaps and stale
epochs rejected with Kafka's codes, and the state survives a broker restart."""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterator

import pytest
from kio.schema.errors import ErrorCode
from kio.schema.init_producer_id.v4.request import InitProducerIdRequest
from kio.schema.list_offsets.v7.request import ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData

from suoi.protocol.records import build_batch
from suoi.testing import EmbeddedBroker
from tests.integration.support import create_topic
from tests.rawclient import RawClient

TOPIC = "idempotent"


@pytest.fixture
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(tmp_path_factory.mktemp("idem")) as b:
        create_topic(b.bootstrap, TOPIC)
        yield b


def init_producer(client: RawClient) -> tuple[int, int]:
    """InitProducerId, retried as clients retry COORDINATOR_LOAD_IN_PROGRESS: a node that has just
    started may not have its first producer-id block from the controller yet."""
    deadline = time.monotonic() + 10
    while True:
        resp = client.request(InitProducerIdRequest(
            transactional_id=None, transaction_timeout=datetime.timedelta(seconds=60), producer_id=-1, producer_epoch=-1))
        if resp.error_code != ErrorCode.coordinator_load_in_progress or time.monotonic() > deadline:
            break
        time.sleep(0.05)  # poll interval of a deadline loop
    assert resp.error_code == ErrorCode.none
    return int(resp.producer_id), int(resp.producer_epoch)


def produce(client: RawClient, pid: int, epoch: int, seq: int, n: int = 3) -> tuple[ErrorCode, int]:
    batch = build_batch([(None, b"m%d" % (seq + i)) for i in range(n)], producer_id=pid,
                        producer_epoch=epoch, base_sequence=seq, timestamp_ms=1_700_000_000_000)
    resp = client.request(ProduceRequest(
        transactional_id=None, acks=-1, timeout=datetime.timedelta(seconds=5),
        topic_data=(TopicProduceData(name=TOPIC, partition_data=(PartitionProduceData(index=0, records=batch),)),)))
    part = resp.responses[0].partition_responses[0]
    return part.error_code, int(part.base_offset)


def log_end(client: RawClient) -> int:
    resp = client.request(ListOffsetsRequest(replica_id=-1, isolation_level=0, topics=(
        ListOffsetsTopic(name=TOPIC, partitions=(ListOffsetsPartition(partition_index=0, timestamp=-1),)),)))
    return int(resp.topics[0].partitions[0].offset)


def test_producer_ids_are_unique_and_never_reused_after_restart(broker: EmbeddedBroker) -> None:
    with RawClient(broker.bootstrap) as c:
        first = {init_producer(c)[0] for _ in range(5)}
    assert len(first) == 5
    broker.kill()
    broker.start()
    with RawClient(broker.bootstrap) as c:
        later = {init_producer(c)[0] for _ in range(5)}
    assert not first & later


def test_retry_returns_the_original_offset_and_appends_nothing(broker: EmbeddedBroker) -> None:
    with RawClient(broker.bootstrap) as c:
        pid, epoch = init_producer(c)
        assert produce(c, pid, epoch, 0) == (ErrorCode.none, 0)
        assert produce(c, pid, epoch, 3) == (ErrorCode.none, 3)
        assert produce(c, pid, epoch, 0) == (ErrorCode.none, 0)  # retry of the first batch
        assert produce(c, pid, epoch, 3) == (ErrorCode.none, 3)
        assert log_end(c) == 6
        error, _ = produce(c, pid, epoch, 10)  # a gap: sequences 6..9 are missing
        assert error == ErrorCode.out_of_order_sequence_number
        assert produce(c, pid, epoch, 6) == (ErrorCode.none, 6)
        assert log_end(c) == 9


def test_stale_epoch_is_rejected(broker: EmbeddedBroker) -> None:
    with RawClient(broker.bootstrap) as c:
        pid, _ = init_producer(c)
        assert produce(c, pid, 3, 0) == (ErrorCode.none, 0)
        error, _ = produce(c, pid, 2, 3)
        assert error == ErrorCode.invalid_producer_epoch
        assert log_end(c) == 3


@pytest.mark.parametrize("stop", ["stop", "kill"])
def test_duplicate_detected_after_restart(broker: EmbeddedBroker, stop: str) -> None:
    with RawClient(broker.bootstrap) as c:
        pid, epoch = init_producer(c)
        for seq in (0, 3, 6):
            assert produce(c, pid, epoch, seq)[0] == ErrorCode.none
    getattr(broker, stop)()
    broker.start()
    with RawClient(broker.bootstrap) as c:
        assert produce(c, pid, epoch, 6) == (ErrorCode.none, 6)  # the retry after restart
        assert produce(c, pid, epoch, 9) == (ErrorCode.none, 9)
        assert log_end(c) == 12
