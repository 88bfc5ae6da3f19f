"""Huge topic creations never freeze a node (issue 10, item 2): one request may add at most
MAX_PARTITIONS_PER_REQUEST partitions (Kafka's POLICY_VIOLATION "Unable to perform excessively
large batch operation."), refused at once however large the count, and a large creation
leaves other clients served while it runs. Real nodes, confluent-kafka's AdminClient."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from kio.schema.create_partitions.v3.request import CreatePartitionsRequest, CreatePartitionsTopic
from kio.schema.errors import ErrorCode

from suoi.controller.topics import EXCESSIVE_BATCH_MESSAGE, MAX_PARTITIONS_PER_REQUEST
from suoi.testing import EmbeddedBroker
from suoi.testing.embedded import free_port
from tests.conftest import wait_until
from tests.e2e.helpers import create_topic
from tests.e2e.test_single_node_kraft import make_run_properties
from tests.integration.support import create_topics_req, ms
from tests.rawclient import RawClient

#: librdkafka refuses num_partitions above this before sending; larger counts go raw.
LIBRDKAFKA_MAX = 100_000


@pytest.fixture(scope="module", params=["kraft", "standalone"])
def node(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    port = free_port()
    props = make_run_properties(port, free_port()) if request.param == "kraft" else {}
    with EmbeddedBroker(tmp_path_factory.mktemp(request.param), port=port, overrides=props) as broker:
        yield broker


def _admin(node: EmbeddedBroker) -> AdminClient:
    return AdminClient({"bootstrap.servers": node.bootstrap})


def _error(future: object) -> KafkaError | None:
    try:
        future.result(timeout=30)  # type: ignore[attr-defined]
    except KafkaException as exc:
        return exc.args[0]
    return None


@pytest.mark.parametrize("count", [MAX_PARTITIONS_PER_REQUEST + 1, LIBRDKAFKA_MAX])
def test_large_creations_are_refused_whole(node: EmbeddedBroker, count: int) -> None:
    admin = _admin(node)
    futures = admin.create_topics([NewTopic(f"huge-{count}", num_partitions=count, replication_factor=1),
                                   NewTopic(f"tiny-{count}", num_partitions=1, replication_factor=1)],
                                  request_timeout=30)
    for name, future in futures.items():  # the whole request is refused, as Kafka's controller does
        err = _error(future)
        assert err is not None and err.code() == KafkaError.POLICY_VIOLATION, (name, err)
        assert err.str() == EXCESSIVE_BATCH_MESSAGE
    md = admin.list_topics(timeout=10)
    assert f"huge-{count}" not in md.topics and f"tiny-{count}" not in md.topics


@pytest.mark.parametrize("count", [2**31 - 1, 200_000])
def test_huge_creations_are_refused_at_once(node: EmbeddedBroker, count: int) -> None:
    started = time.monotonic()
    with RawClient(node.bootstrap) as c:
        topic = c.request(create_topics_req(f"huge-{count}", partitions=count)).topics[0]
        assert (topic.error_code, topic.error_message) == (ErrorCode.policy_violation, EXCESSIVE_BATCH_MESSAGE)
        create_topic(node.bootstrap, f"small-{count}")  # the same node
        grow = CreatePartitionsRequest(topics=(CreatePartitionsTopic(name=f"small-{count}", count=count, assignments=None),),
                                       timeout=ms(10_000), validate_only=False)
        result = c.request(grow).results[0]
        assert (result.error_code, result.error_message) == (ErrorCode.policy_violation, EXCESSIVE_BATCH_MESSAGE)
    assert time.monotonic() - started < 10  # refused, not worked on (2^31-1 used to never answer)


def test_large_create_partitions_are_refused(node: EmbeddedBroker) -> None:
    create_topic(node.bootstrap, "grow-me", 2)
    admin = _admin(node)
    for total in (LIBRDKAFKA_MAX, MAX_PARTITIONS_PER_REQUEST + 3):
        err = _error(admin.create_partitions([NewPartitions("grow-me", total)], request_timeout=30)["grow-me"])
        assert err is not None and err.code() == KafkaError.POLICY_VIOLATION and err.str() == EXCESSIVE_BATCH_MESSAGE
    assert _error(admin.create_partitions([NewPartitions("grow-me", 5)], request_timeout=30)["grow-me"]) is None
    wait_until(lambda: len(admin.list_topics("grow-me", timeout=10).topics["grow-me"].partitions) == 5,
               timeout=20, message="grow-me with 5 partitions")
