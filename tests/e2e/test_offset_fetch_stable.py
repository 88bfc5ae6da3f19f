"""OffsetFetch's require_stable (KIP-447), found by tests/faults' exactly-once copy workload:
while a transaction holds offsets for a group's partition (TxnOffsetCommit written, markers not
yet), OffsetFetch with require_stable answers UNSTABLE_OFFSET_COMMIT for that partition (librdkafka's
read_committed consumers ask so, and retry), not the offset before the transaction. It was
ignored: a copier that got the partition in a rebalance right after the previous owner's commit
started from the old offset and copied the same records again (duplicates in the output)."""

from __future__ import annotations

import contextlib
from typing import Any

import confluent_kafka
import pytest
from kio.schema.errors import ErrorCode
from kio.schema.offset_fetch.v8.request import OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchRequestTopics

from tests.conftest import wait_until
from tests.e2e.helpers import create_topic
from tests.e2e.txn_helpers import txn_producer
from tests.rawclient import RawClient

pytestmark = pytest.mark.timeout(60)


def fetch(bootstrap: str, group: str, topic: str, partitions: tuple[int, ...] | None, *,
          require_stable: bool) -> dict[int, tuple[int, int]]:
    """OffsetFetch v8 for one group: {partition: (committed offset, error code)}."""
    topics = None if partitions is None else (OffsetFetchRequestTopics(name=topic, partition_indexes=partitions),)
    request = OffsetFetchRequest(groups=(OffsetFetchRequestGroup(group_id=group, topics=topics),),
                                 require_stable=require_stable)
    with RawClient(bootstrap) as c:
        (answer,) = c.request(request).groups
    assert answer.error_code == ErrorCode.none
    return {int(p.partition_index): (int(p.committed_offset), int(p.error_code))
            for t in answer.topics if t.name == topic for p in t.partitions}


def test_offsets_of_an_open_transaction_are_unstable(bootstrap: str, topic: str) -> None:
    create_topic(bootstrap, topic, partitions=2)
    group = f"g-{topic}"
    metadata: Any = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    producer = txn_producer(bootstrap, f"tx-{topic}")
    try:
        offsets_in_transactions(bootstrap, topic, group, metadata, producer)
    finally:
        metadata.close()
        with contextlib.suppress(confluent_kafka.KafkaException):
            producer.abort_transaction(5)  # a failure mid-transaction: never leave it open


def offsets_in_transactions(bootstrap: str, topic: str, group: str, metadata: Any, producer: Any) -> None:
    producer.begin_transaction()
    producer.send_offsets_to_transaction([confluent_kafka.TopicPartition(topic, 0, 5)],
                                         metadata.consumer_group_metadata(), 10)
    unstable = int(ErrorCode.unstable_offset_commit)
    assert fetch(bootstrap, group, topic, (0, 1), require_stable=True) == {0: (-1, unstable), 1: (-1, 0)}
    assert fetch(bootstrap, group, topic, None, require_stable=True) == {0: (-1, unstable)}
    assert fetch(bootstrap, group, topic, (0, 1), require_stable=False) == {0: (-1, 0), 1: (-1, 0)}
    producer.commit_transaction(10)
    wait_until(lambda: fetch(bootstrap, group, topic, (0,), require_stable=True) == {0: (5, 0)}, 10,
               message="the committed transaction's offset, stable")

    producer.begin_transaction()  # an aborted one: unstable while open, then the offset before it
    producer.send_offsets_to_transaction([confluent_kafka.TopicPartition(topic, 0, 9)],
                                         metadata.consumer_group_metadata(), 10)
    assert fetch(bootstrap, group, topic, (0,), require_stable=True) == {0: (-1, unstable)}
    assert fetch(bootstrap, group, topic, (0,), require_stable=False) == {0: (5, 0)}
    producer.abort_transaction(10)
    wait_until(lambda: fetch(bootstrap, group, topic, (0,), require_stable=True) == {0: (5, 0)}, 10,
               message="the offset before the aborted transaction, stable")
