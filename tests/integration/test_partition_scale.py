"""Huge topic creations never freeze a node (issue 10, item 2): one request may add at most
MAX_PARTITIONS_PER_REQUEST partitions (Kafka's POLICY_VIOLATION "Unable to perform excessively
large batch operation."), refused at once however large the count, and a large creation
leaves other clients served while it runs. Real nodes, confluent-kafka's AdminClient."""

from __future__ import annotations

import resource
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic
from kio.schema.create_partitions.v3.request import CreatePartitionsRequest, CreatePartitionsTopic
from kio.schema.errors import ErrorCode

from suoi.controller.topics import EXCESSIVE_BATCH_MESSAGE, MAX_PARTITIONS_PER_REQUEST
from suoi.protocol.records import build_batch
from suoi.testing import EmbeddedBroker
from suoi.testing.embedded import free_port
from tests.conftest import wait_until
from tests.e2e.helpers import ck_consume, ck_produce, create_topic
from tests.e2e.test_single_node_kraft import make_run_properties
from tests.integration.support import create_topics_req, metadata_req, ms, produce
from tests.rawclient import RawClient

#: librdkafka refuses num_partitions above this before sending; larger counts go raw.
LIBRDKAFKA_MAX = 100_000


@pytest.fixture(scope="module", params=["kraft", "no-process-roles"])
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


def _probe_metadata(bootstrap: str, topic: str, stop: threading.Event, latencies: list[float],
                    failures: list[BaseException]) -> None:
    """Metadata for a small topic every 20 ms on one connection; how long each answer took."""
    try:
        with RawClient(bootstrap, timeout=30) as c:
            while not stop.is_set():
                started = time.monotonic()
                t = c.request(metadata_req(topic, allow_create=False)).topics[0]
                latencies.append(time.monotonic() - started)
                assert t.error_code == ErrorCode.none and len(t.partitions) == 1
                stop.wait(0.02)
    except BaseException as exc:  # reported by the test thread
        failures.append(exc)


@pytest.fixture
def kraft_node(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    port = free_port()
    with EmbeddedBroker(tmp_path, port=port, overrides=make_run_properties(port, free_port())) as broker:
        yield broker


@pytest.mark.slow
def test_ten_thousand_partitions_while_other_clients_are_served(kraft_node: EmbeddedBroker) -> None:
    create_topic(kraft_node.bootstrap, "probe")
    stop, latencies, failures = threading.Event(), [], []
    probe = threading.Thread(target=_probe_metadata, args=(kraft_node.bootstrap, "probe", stop, latencies, failures))
    probe.start()
    try:
        wait_until(lambda: len(latencies) >= 3, timeout=10, message="probes before the creation")
        before = len(latencies)
        admin = AdminClient({"bootstrap.servers": kraft_node.bootstrap, "socket.timeout.ms": 120_000})
        future = admin.create_topics([NewTopic("ten-k", num_partitions=MAX_PARTITIONS_PER_REQUEST,
                                               replication_factor=1)], request_timeout=120)["ten-k"]
        assert _error(future) is None

        def all_led() -> bool:
            with RawClient(kraft_node.bootstrap) as c:
                t = c.request(metadata_req("ten-k", allow_create=False)).topics[0]
            return len(t.partitions) == MAX_PARTITIONS_PER_REQUEST and all(p.leader_id == 1 for p in t.partitions)

        wait_until(all_led, timeout=120, interval=0.2, message="10,000 leaders")
        # every leader has its log: the last partitions created take writes
        for p in (0, MAX_PARTITIONS_PER_REQUEST - 1):
            wait_until(lambda p=p: produce(kraft_node.bootstrap, "ten-k", p, build_batch([(None, b"x")])).error_code
                       == ErrorCode.none, timeout=60, message=f"a write to ten-k-{p}")
    finally:
        stop.set()
        probe.join(30)
    assert failures == []
    during = latencies[before:]
    assert len(during) >= 10  # answered all along, not after the creation
    assert max(during) < 2.0, sorted(during)[-5:]  # loose: the benchmark has the real figures


def _low_nofile() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (LOW_NOFILE, LOW_NOFILE))


LOW_NOFILE = 256


def test_more_partition_files_than_ulimit_allows_open(tmp_path: Path) -> None:
    """300 partitions (a .log each once written, 3 files before) > `ulimit -n` 256: idle files are closed and
    reopened on use, so every partition still takes writes and serves reads."""
    port = free_port()
    partitions = 300
    with EmbeddedBroker(tmp_path, port=port, overrides=make_run_properties(port, free_port()),
                        preexec_fn=_low_nofile) as node:
        assert f"ulimit -n is {LOW_NOFILE}" in node.logs()
        create_topic(node.bootstrap, "many", partitions)
        sent = [{"value": f"v{p}".encode(), "partition": p} for p in range(partitions)] * 2
        delivered = ck_produce(node.bootstrap, "many", sent)
        assert sorted(delivered) == sorted((p, o) for p in range(partitions) for o in (0, 1))
        got = ck_consume(node.bootstrap, "many", list(range(partitions)), partitions * 2, timeout=60)
        assert sorted((r.partition, r.offset, r.value) for r in got) == sorted(
            (p, o, f"v{p}".encode()) for p in range(partitions) for o in (0, 1))
        assert len(list((tmp_path / "data").glob("many-*/00000000000000000000.log"))) == partitions
        assert "Too many open files" not in node.logs()
