"""ACLs end to end (issue 14, authorization): a KRaft node with Kafka's StandardAuthorizer,
driven by confluent-kafka's AdminClient, Producer and Consumer and by `suoi acls`.

One data dir, two starts: first with `super.users=User:ANONYMOUS` (PLAINTEXT clients are
User:ANONYMOUS, as in Kafka), which may do anything and writes the bindings; then without it and
with `allow.everyone.if.no.acl.found=false`, where only what the bindings allow works — the
bindings survived the restart in the metadata log."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)
from kio.schema.delete_topics.v6.request import DeleteTopicsRequest, DeleteTopicState
from kio.schema.describe_configs.v4.request import DescribeConfigsRequest, DescribeConfigsResource
from kio.schema.errors import ErrorCode
from kio.schema.init_producer_id.v4.request import InitProducerIdRequest
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic

from suoi.protocol.records import build_batch
from suoi.testing import EmbeddedBroker
from suoi.testing.embedded import free_port
from tests.conftest import wait_until
from tests.e2e.cli import suoi
from tests.e2e.kraft_nodes import kraft_nodes
from tests.integration.support import LogWatch, kraft_combined_overrides, metadata_req, ms, produce_req
from tests.rawclient import RawClient

AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
ANON = "User:ANONYMOUS"


def node_props(port: int, cport: int, **extra: str) -> dict[str, str]:
    return kraft_combined_overrides(port, cport, **{
        "offsets.topic.replication.factor": "1", "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1", "group.initial.rebalance.delay.ms": "0",
        "authorizer.class.name": AUTHORIZER, **extra})


def cluster_acl(op: AclOperation) -> AclBinding:
    return AclBinding(ResourceType.BROKER, "kafka-cluster", ResourcePatternType.LITERAL, ANON, "*", op,
                      AclPermissionType.ALLOW)


def topic_acl(name: str, op: AclOperation, perm: AclPermissionType = AclPermissionType.ALLOW,
              pattern: ResourcePatternType = ResourcePatternType.LITERAL, principal: str = ANON) -> AclBinding:
    return AclBinding(ResourceType.TOPIC, name, pattern, principal, "*", op, perm)


def wait_all(futures: dict) -> list:  # type: ignore[type-arg]
    return [f.result(timeout=20) for f in futures.values()]


@pytest.fixture(scope="module")
def ports() -> tuple[int, int]:
    return free_port(), free_port()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("acls")


@pytest.fixture(scope="module")
def super_node(data_dir: Path, ports: tuple[int, int]) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(data_dir, port=ports[0], overrides=node_props(*ports, **{"super.users": ANON})) as node:
        yield node


def test_acl_round_trip_with_admin_client_and_suoi_acls(super_node: EmbeddedBroker) -> None:
    admin = AdminClient({"bootstrap.servers": super_node.bootstrap})
    bindings = [topic_acl("orders", AclOperation.READ, principal="User:alice"),
                topic_acl("pay-", AclOperation.WRITE, AclPermissionType.DENY, ResourcePatternType.PREFIXED,
                          principal="User:bob")]
    assert wait_all(admin.create_acls(bindings)) == [None, None]
    everything = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY,
                                  AclPermissionType.ANY)
    assert sorted(admin.describe_acls(everything).result(timeout=20), key=str) == sorted(bindings, key=str)
    # MATCH: the bindings that apply to topic pay-eu
    match = AclBindingFilter(ResourceType.TOPIC, "pay-eu", ResourcePatternType.MATCH, None, None, AclOperation.ANY,
                             AclPermissionType.ANY)
    assert admin.describe_acls(match).result(timeout=20) == [bindings[1]]
    # an invalid binding fails alone
    bad = AclBinding(ResourceType.TOPIC, "t", ResourcePatternType.LITERAL, "alice", "*", AclOperation.READ,
                     AclPermissionType.ALLOW)
    with pytest.raises(KafkaException, match="principal"):
        admin.create_acls([bad])[bad].result(timeout=20)
    deleted = admin.delete_acls([everything])[everything].result(timeout=20)
    assert sorted(deleted, key=str) == sorted(bindings, key=str)
    assert admin.describe_acls(everything).result(timeout=20) == []

    # the same through suoi acls (kafka-acls' flags)
    boot = ["--bootstrap-server", super_node.bootstrap]
    add = suoi("acls", *boot, "--add", "--allow-principal", "User:carol", "--operation", "Read",
               "--operation", "Describe", "--topic", "logs", "--resource-pattern-type", "prefixed")
    assert add.returncode == 0, add.stderr
    producer = suoi("acls", *boot, "--add", "--allow-principal", "User:dave", "--producer", "--topic", "out")
    assert producer.returncode == 0, producer.stderr
    listed = suoi("acls", *boot, "--list", "--output", "json")
    assert listed.returncode == 0, listed.stderr
    rows = {(r["principal"], r["operation"], r["resource_type"], r["resource_name"], r["pattern_type"])
            for r in json.loads(listed.stdout)}
    assert rows == {("User:carol", "READ", "TOPIC", "logs", "PREFIXED"),
                    ("User:carol", "DESCRIBE", "TOPIC", "logs", "PREFIXED"),
                    ("User:dave", "WRITE", "TOPIC", "out", "LITERAL"),
                    ("User:dave", "DESCRIBE", "TOPIC", "out", "LITERAL"),
                    ("User:dave", "CREATE", "TOPIC", "out", "LITERAL")}
    removed = suoi("acls", *boot, "--remove", "--allow-principal", "User:dave", "--producer", "--topic", "out",
                   "--force")
    assert removed.returncode == 0, removed.stderr
    left = json.loads(suoi("acls", *boot, "--list", "--topic", "out", "--output", "json").stdout)
    assert left == []


@pytest.fixture(scope="module")
def restartable(super_node: EmbeddedBroker) -> EmbeddedBroker:
    """What the second start needs: ANONYMOUS may act as a broker and administer the cluster."""
    admin = AdminClient({"bootstrap.servers": super_node.bootstrap})
    ops = (AclOperation.CLUSTER_ACTION, AclOperation.ALTER, AclOperation.DESCRIBE, AclOperation.CREATE)
    assert wait_all(admin.create_acls([cluster_acl(op) for op in ops])) == [None] * 4
    admin.create_topics([NewTopic("secret", 1, 1), NewTopic("orders", 1, 1)])["secret"].result(timeout=20)
    # a super user needs no binding on the topic (allow.everyone.if.no.acl.found is false)
    assert _produce_error(super_node.bootstrap, "secret") is None
    return super_node


def _produce_error(bootstrap: str, topic: str) -> KafkaError | None:
    producer = Producer({"bootstrap.servers": bootstrap, "message.timeout.ms": 8000})
    errors: list[KafkaError | None] = []
    producer.produce(topic, b"v", on_delivery=lambda err, msg: errors.append(err))
    producer.flush(15)
    return errors[0] if errors else KafkaError(KafkaError._TIMED_OUT)


def _consume(bootstrap: str, topic: str, group: str) -> tuple[list[bytes], KafkaError | None]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    got: list[bytes] = []
    error = None
    try:
        for _ in range(40):
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error() is not None:
                error = msg.error()
                break
            got.append(msg.value())
            break
    finally:
        consumer.close()
    return got, error


def test_denials_then_allow(restartable: EmbeddedBroker, data_dir: Path, ports: tuple[int, int]) -> None:
    restartable.stop()
    with EmbeddedBroker(data_dir, port=ports[0], overrides=node_props(*ports)) as node:
        boot = node.bootstrap
        watch = LogWatch(node)
        admin = AdminClient({"bootstrap.servers": boot})
        # no DESCRIBE on any topic: Metadata lists none of them
        assert set(admin.list_topics(timeout=20).topics) == set()
        err = _produce_error(boot, "orders")
        assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err
        # the audit line names principal, operation, resource and host, once however often the client asked
        # (librdkafka never sends the Produce: Metadata already refused to describe the topic)
        watch.wait_for(r"Principal = User:ANONYMOUS is Denied operation = DESCRIBE from host = 127\.0\.0\.1 on "
                       r"resource = TOPIC:LITERAL:orders", level="INFO")
        assert watch.new().count("operation = DESCRIBE from host = 127.0.0.1 on resource = TOPIC:LITERAL:orders") == 1

        assert wait_all(admin.create_acls([topic_acl("orders", AclOperation.WRITE),
                                           topic_acl("orders", AclOperation.READ)])) == [None, None]
        assert set(admin.list_topics(timeout=20).topics) == {"orders"}  # READ/WRITE imply DESCRIBE; secret hidden
        assert _produce_error(boot, "orders") is None
        got, error = _consume(boot, "orders", "readers")
        assert got == [] and error is not None and error.code() == KafkaError.GROUP_AUTHORIZATION_FAILED, error

        group = AclBinding(ResourceType.GROUP, "read", ResourcePatternType.PREFIXED, ANON, "*", AclOperation.READ,
                           AclPermissionType.ALLOW)
        assert wait_all(admin.create_acls([group])) == [None]
        got, error = _consume(boot, "orders", "readers")
        assert (got, error) == ([b"v"], None)
        _api_families(boot)
        # DENY beats ALLOW
        assert wait_all(admin.create_acls([topic_acl("orders", AclOperation.WRITE, AclPermissionType.DENY)])) == [None]
        err = _produce_error(boot, "orders")
        assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err
        with RawClient(boot) as c:  # and an idempotent producer's only WRITE is now denied (authorizeByResourceType)
            idempotent = c.request(InitProducerIdRequest(transactional_id=None, transaction_timeout=ms(60000),
                                                         producer_id=-1, producer_epoch=-1))
            assert idempotent.error_code == ErrorCode.cluster_authorization_failed


def _api_families(boot: str) -> None:
    """Per-topic and whole-request denials of other APIs, as Kafka answers them."""
    with RawClient(boot) as c:
        md = c.request(metadata_req("secret", "orders", allow_create=False))
        assert {t.name: t.error_code for t in md.topics} == {"secret": ErrorCode.topic_authorization_failed,
                                                             "orders": ErrorCode.none}
        assert [b.node_id for b in md.brokers] == [1]  # the rest of the answer is there
        asked = c.request(MetadataRequest(topics=(MetadataRequestTopic(topic_id=None, name="orders"),),
                                          allow_auto_topic_creation=False, include_topic_authorized_operations=True))
        # KIP-430: READ, WRITE and the DESCRIBE they imply (bits 3, 4, 8)
        assert asked.topics[0].topic_authorized_operations == (1 << 3) | (1 << 4) | (1 << 8)
        batch = build_batch([(None, b"x")], timestamp_ms=int(time.time() * 1000))
        produced = c.request(produce_req("secret", 0, batch))
        assert [(r.name, [p.error_code for p in r.partition_responses]) for r in produced.responses] == [
            ("secret", [ErrorCode.topic_authorization_failed])]
        both = produce_req("orders", 0, batch)  # one allowed topic and one refused in the same request
        both = dataclasses.replace(both, topic_data=(*both.topic_data, *produce_req("secret", 0, batch).topic_data))
        produced = c.request(both)
        assert sorted((r.name, [p.error_code for p in r.partition_responses]) for r in produced.responses) == [
            ("orders", [ErrorCode.none]), ("secret", [ErrorCode.topic_authorization_failed])]
        deleted = c.request(DeleteTopicsRequest(topics=(DeleteTopicState(name="secret", topic_id=None),),
                                                timeout=ms(5000)))
        assert [(r.name, r.error_code) for r in deleted.responses] == [("secret", ErrorCode.topic_authorization_failed)]
        txn = c.request(InitProducerIdRequest(transactional_id="tx", transaction_timeout=ms(60000), producer_id=-1,
                                              producer_epoch=-1))
        assert txn.error_code == ErrorCode.transactional_id_authorization_failed
        idempotent = c.request(InitProducerIdRequest(transactional_id=None, transaction_timeout=ms(60000),
                                                     producer_id=-1, producer_epoch=-1))
        assert idempotent.error_code == ErrorCode.none  # WRITE on some topic is enough (Kafka's rule)
        configs = c.request(DescribeConfigsRequest(resources=(
            DescribeConfigsResource(resource_type=4, resource_name="1", configuration_keys=None),
            DescribeConfigsResource(resource_type=2, resource_name="orders", configuration_keys=("retention.ms",))),
            include_synonyms=False, include_documentation=False))
        # only ALTER_CONFIGS implies DESCRIBE_CONFIGS: READ/WRITE on the topic do not
        assert {(r.resource_type, r.error_code) for r in configs.results} == {
            (4, ErrorCode.cluster_authorization_failed), (2, ErrorCode.topic_authorization_failed)}


def test_acls_are_forwarded_and_applied_on_every_node(tmp_path: Path) -> None:
    """CreateAcls sent to a broker-only node is decided by the active controller (forwarded over
    the controller listener), and every node's image, hence its authorizer, gets the binding."""
    with kraft_nodes(tmp_path, {"authorizer.class.name": AUTHORIZER, "super.users": ANON}) as cluster:
        observer = AdminClient({"bootstrap.servers": cluster.nodes[3].bootstrap})
        binding = topic_acl("shared", AclOperation.READ, principal="User:erin")
        assert wait_all(observer.create_acls([binding])) == [None]
        every = AclBindingFilter(ResourceType.TOPIC, None, ResourcePatternType.ANY, None, None, AclOperation.ANY,
                                 AclPermissionType.ANY)
        for node in cluster.nodes.values():
            admin = AdminClient({"bootstrap.servers": node.bootstrap})
            wait_until(lambda a=admin: a.describe_acls(every).result(timeout=10) == [binding], timeout=20,
                       message=f"node {node.bootstrap} lists the binding")
