"""Client quotas (KIP-546) end to end: `suoi configs --entity-type users|clients` writes and
describes them (AlterClientQuotas / DescribeClientQuotas through the metadata log), and a
producer over its producer_byte_rate is slowed to it: its responses carry throttle_time_ms
(KIP-219) and its measured rate stays near the quota. Quota windows are shortened
(quota.window.num=2, 1 s) so the test is quick; Kafka's arithmetic is the same."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import Producer
from kio.schema.describe_client_quotas.v1.request import ComponentData, DescribeClientQuotasRequest
from kio.schema.metadata.v12.request import MetadataRequest

from suoi.testing import EmbeddedBroker
from suoi.testing.embedded import free_port
from tests.e2e.cli import suoi
from tests.e2e.helpers import create_topic
from tests.rawclient import RawClient

QUOTA = 400_000  # bytes/s


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    port, cport = free_port(), free_port()
    props = {"process.roles": "broker,controller", "node.id": "1", "controller.listener.names": "CONTROLLER",
             "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
             "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
             "controller.quorum.voters": f"1@127.0.0.1:{cport}", "offsets.topic.replication.factor": "1",
             "quota.window.num": "2", "quota.window.size.seconds": "1"}
    with EmbeddedBroker(tmp_path_factory.mktemp("quotas"), port=port, overrides=props) as broker:
        yield broker


def configs(node: EmbeddedBroker, *args: str) -> str:
    proc = suoi("configs", "--bootstrap-server", node.bootstrap, *args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_quota_entities_round_trip(node: EmbeddedBroker) -> None:
    configs(node, "--alter", "--entity-type", "users", "--entity-name", "alice",
            "--add-config", "producer_byte_rate=1024,consumer_byte_rate=2048")
    configs(node, "--alter", "--user", "alice", "--client", "app", "--add-config", "request_percentage=50")
    configs(node, "--alter", "--entity-type", "clients", "--entity-default", "--add-config", "consumer_byte_rate=4096")
    users = json.loads(configs(node, "--describe", "--entity-type", "users", "--output", "json"))
    # users also carry SCRAM credentials (none here), as kafka-configs.sh shows both
    assert users == {"entities": [{"entity": {"user": "alice"},
                                   "configs": {"consumer_byte_rate": 2048.0, "producer_byte_rate": 1024.0}}],
                     "credentials": []}
    pair = json.loads(configs(node, "--describe", "--user", "alice", "--client", "app", "--output", "json"))
    assert pair["entities"] == [{"entity": {"client-id": "app", "user": "alice"},
                                 "configs": {"request_percentage": 50.0}}]
    assert "Quota configs for client-id <default> are consumer_byte_rate=4096.0" in configs(
        node, "--describe", "--entity-type", "clients", "--entity-default")
    configs(node, "--alter", "--entity-type", "users", "--entity-name", "alice",
            "--delete-config", "producer_byte_rate,consumer_byte_rate")
    configs(node, "--alter", "--user", "alice", "--client", "app", "--delete-config", "request_percentage")
    configs(node, "--alter", "--entity-type", "clients", "--entity-default", "--delete-config", "consumer_byte_rate")
    # unknown keys are refused, not stored
    bad = suoi("configs", "--bootstrap-server", node.bootstrap, "--alter", "--entity-type", "users",
               "--entity-name", "bob", "--add-config", "no_such_quota=5")
    assert bad.returncode == 1 and "INVALID_REQUEST" in bad.stderr
    with RawClient(node.bootstrap) as c:
        everything = c.request(DescribeClientQuotasRequest(
            components=(ComponentData(entity_type="user", match_type=2, match=None),), strict=False))
        assert everything.entries == ()


def test_produce_quota_throttles_a_producer(node: EmbeddedBroker) -> None:
    create_topic(node.bootstrap, "quota-topic")
    # PLAINTEXT clients are User:ANONYMOUS; a client-id quota for this producer only
    configs(node, "--alter", "--entity-type", "clients", "--entity-name", "slow",
            "--add-config", f"producer_byte_rate={QUOTA}")
    throttles: list[int] = []

    def on_throttle(event: object) -> None:
        throttles.append(int(event.throttle_time * 1000))

    producer = Producer({"bootstrap.servers": node.bootstrap, "client.id": "slow", "linger.ms": 5,
                         "batch.size": 65536, "throttle_cb": on_throttle})
    value = b"x" * 10_000
    total = 200  # 2 MB: five times the quota per second
    delivered: list[float] = []
    started = time.monotonic()
    for _ in range(total):
        while True:
            try:
                producer.produce("quota-topic", value, on_delivery=lambda err, msg: delivered.append(time.monotonic()))
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(30) == 0
    elapsed = time.monotonic() - started
    rate = total * len(value) / elapsed
    # after the first window (whose burst the quota lets through), the rate is the quota's
    later = [t for t in delivered if t - started >= 1.0]
    steady = (len(later) - 1) * len(value) / (later[-1] - later[0])
    print(f"measured {rate:.0f} B/s over {elapsed:.2f} s ({steady:.0f} B/s after the first second) against a "
          f"{QUOTA} B/s quota; max throttle {max(throttles or [0])} ms")
    assert throttles and max(throttles) > 0, throttles
    # the first window's worth goes through at once; after that the quota holds
    assert QUOTA * 0.5 < rate < QUOTA * 1.6, (rate, elapsed)
    assert QUOTA * 0.6 < steady < QUOTA * 1.5, steady
    assert elapsed < 15, elapsed
    # another client on the same node is not slowed
    fast = Producer({"bootstrap.servers": node.bootstrap, "client.id": "fast", "linger.ms": 5})
    started = time.monotonic()
    for _ in range(100):
        fast.produce("quota-topic", value)
        fast.poll(0)
    assert fast.flush(30) == 0
    assert time.monotonic() - started < 2.0


def _throttled_within(node: EmbeddedBroker, request: Any, check: Callable[[Any], None], what: str) -> None:
    """request_percentage=0.01 for client id raw-test: `request` asked again and again (each
    answer passing `check`) until one carries a throttle time, within 2,000 requests. One
    request takes well under a millisecond to handle, less than 0.01 % of a thread over the
    quota's sample windows, so the client keeps asking until its accumulated time crosses it."""
    configs(node, "--alter", "--entity-type", "clients", "--entity-name", "raw-test",
            "--add-config", "request_percentage=0.01")
    try:
        throttled = None
        with RawClient(node.bootstrap) as c:  # client id raw-test
            for _ in range(2000):
                answer = c.request(request)
                check(answer)
                if answer.throttle_time.total_seconds() > 0:
                    throttled = answer.throttle_time
                    break
        assert throttled is not None, f"2,000 {what} at 0.01 % of a thread were never throttled"
    finally:
        configs(node, "--alter", "--entity-type", "clients", "--entity-name", "raw-test",
                "--delete-config", "request_percentage")


def test_request_percentage_throttles_a_busy_client(node: EmbeddedBroker) -> None:
    """request_percentage: a client over its share of request-handling time is answered with a
    throttle time (and its connection muted): its requests until then are answered without one,
    and one within a bounded number is throttled."""
    request = DescribeClientQuotasRequest(
        components=(ComponentData(entity_type="client-id", match_type=0, match="raw-test"),), strict=False)

    def check(answer: Any) -> None:
        assert [[(e.entity_type, e.entity_name) for e in x.entity] for x in answer.entries] == [
            [("client-id", "raw-test")]]

    _throttled_within(node, request, check, "requests")


def test_request_percentage_throttles_metadata_requests_too(node: EmbeddedBroker) -> None:
    """Metadata answers are spliced from cached topic encodings, a path of their own: they count
    against request_percentage and carry the throttle time like any other answer."""
    request = MetadataRequest(topics=None, allow_auto_topic_creation=False, include_topic_authorized_operations=False)

    def check(answer: Any) -> None:
        assert [b.port for b in answer.brokers] == [node.port]

    _throttled_within(node, request, check, "Metadata requests")
