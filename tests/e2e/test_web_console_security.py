"""The web console (issue 17) against one secured in-process node (Playwright, Debian's chromium):
Kafka's StandardAuthorizer, a SASL_SSL inter-broker listener (trustme certificates, PLAIN) that
the node's own console reads the cluster through, a PLAINTEXT listener for the tests' clients,
the node's schema registry (`schema.registry.listeners`) and metrics endpoint (`admin.listeners`).
One node for the whole module; each test uses its own topics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from suoi.cli.cluster_layout import free_ports
from suoi.testing import InProcessNode
from tests.conftest import wait_until
from tests.e2e.console_browser import CHROMIUM, UI_TIMEOUT_MS, browser, page, text, wait_text
from tests.e2e.security_helpers import (
    ADMIN_PASSWORD,
    ALICE_PASSWORD,
    PLAIN_JAAS,
    SECRETS,
    Pki,
    make_pki,
    tls_keystore,
    write_props,
)

__all__ = ["browser", "page"]  # fixtures

pytestmark = [pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="run `make tools` to install chromium"),
              pytest.mark.timeout(120)]

AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"


@dataclass
class SecureNode:
    node: InProcessNode
    pki: Pki
    sasl_ssl: str  # HOST:PORT of the SASL_SSL listener
    console: str  # the node's console, http://HOST:PORT
    registry: str  # the node's schema registry
    admin: str  # the node's metrics endpoint

    @property
    def bootstrap(self) -> str:  # PLAINTEXT, User:ANONYMOUS (a super user here)
        return self.node.bootstrap


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureNode]:
    directory = tmp_path_factory.mktemp("console-secure")
    pki = make_pki(directory / "pki")
    plain, sasl_ssl, controller, console, registry, admin = free_ports(6)
    clients = f"PLAINTEXT://127.0.0.1:{plain},SASL_SSL://127.0.0.1:{sasl_ssl}"
    properties = {
        "process.roles": "broker,controller", "node.id": "1",
        "listeners": f"{clients},CONTROLLER://127.0.0.1:{controller}", "advertised.listeners": clients,
        "controller.listener.names": "CONTROLLER", "controller.quorum.voters": f"1@127.0.0.1:{controller}",
        "inter.broker.listener.name": "SASL_SSL", "sasl.mechanism.inter.broker.protocol": "PLAIN",
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        "listener.name.sasl_ssl.plain.sasl.jaas.config": PLAIN_JAAS, **tls_keystore(pki),
        "authorizer.class.name": AUTHORIZER, "super.users": "User:ANONYMOUS;User:admin",
        "offsets.topic.replication.factor": "1", "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1", "group.initial.rebalance.delay.ms": "0",
        "console.listeners": f"http://127.0.0.1:{console}",
        "schema.registry.listeners": f"http://127.0.0.1:{registry}",
        "admin.listeners": f"http://127.0.0.1:{admin}",
    }
    with InProcessNode(directory / "node", properties=properties) as node:
        wait_until(lambda: _registry_ready(f"http://127.0.0.1:{registry}"), 30, 0.1, "the node's registry")
        yield SecureNode(node, pki, f"127.0.0.1:{sasl_ssl}", f"http://127.0.0.1:{console}",
                         f"http://127.0.0.1:{registry}", f"http://127.0.0.1:{admin}")


def create_topic(bootstrap: str, name: str, partitions: int = 1) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(15)


SHOP_PROTO = """syntax = "proto3";
package shop;
message Header { string trace = 1; }
message Order {
  int32 id = 1;
  message Line { string item = 1; int32 qty = 2; }
  repeated Line lines = 2;
}
"""


def test_message_browser_decodes_protobuf_through_the_nodes_registry(secure: SecureNode, page: Any) -> None:
    """A value written by confluent-kafka's ProtobufSerializer (registered in the node's own
    registry) shows as its fields: a nested message type, so message indexes [1, 0]."""
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.protobuf import ProtobufSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext
    from google.protobuf import descriptor_pool, message_factory

    from suoi.http.registry.formats.proto_text import parse_proto_text

    pool = descriptor_pool.DescriptorPool()
    pool.Add(parse_proto_text(SHOP_PROTO, "shop.proto"))
    line_type = message_factory.GetMessageClass(pool.FindMessageTypeByName("shop.Order.Line"))
    serializer = ProtobufSerializer(line_type, SchemaRegistryClient({"url": secure.registry}),
                                    {"use.deprecated.format": False})
    create_topic(secure.bootstrap, "proto-orders")
    value = serializer(line_type(item="tea", qty=2), SerializationContext("proto-orders", MessageField.VALUE))
    assert value[5:7] == b"\x04\x02"  # indexes [1, 0], zigzag: count 2, then 1, then 0
    producer = Producer({"bootstrap.servers": secure.bootstrap})
    producer.produce("proto-orders", value=value, partition=0)
    assert producer.flush(15) == 0

    page.goto(secure.console + "/#/messages/proto-orders/0?offset=0")
    page.get_by_test_id("record-0").wait_for()
    assert json.loads(page.get_by_test_id("value-0").locator("pre").inner_text()) == {"item": "tea", "qty": 2}
    schema_id = int.from_bytes(value[1:5], "big")
    assert text(page, "schema") == f"protobuf, schema id {schema_id}, shop.Order.Line"


def _registry_ready(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url + "/subjects", timeout=5) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def test_the_nodes_console_reads_the_cluster_over_its_sasl_ssl_inter_broker_listener(secure: SecureNode,
                                                                                     page: Any) -> None:
    """The node's console is a client of the node's inter-broker listener (SASL_SSL, the node's own
    PLAIN credentials): the brokers it shows are that listener's endpoints."""
    create_topic(secure.bootstrap, "seen-over-tls")
    page.goto(secure.console + "/#/")
    wait_text(page, "brokers-alive", "1 / 1")
    assert secure.sasl_ssl in text(page, "broker-row-1")
    page.goto(secure.console + "/#/topics")
    page.get_by_test_id("topic-row-seen-over-tls").wait_for()


def test_suoi_console_with_a_command_config_for_sasl_ssl(secure: SecureNode, page: Any, tmp_path: Path) -> None:
    """`suoi console --command-config` with the Java client's names (PEM truststore, sasl.jaas.config)
    reads the SASL_SSL listener; a wrong password shows the cluster as unreachable, and no password
    is ever printed."""
    create_topic(secure.bootstrap, "seen-by-standalone")
    good = write_props(tmp_path / "client.properties", {
        "security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN", "ssl.truststore.type": "PEM",
        "ssl.truststore.location": secure.pki.ca_file,
        "sasl.jaas.config": 'org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" '
                            f'password="{ADMIN_PASSWORD}";'})
    bad = write_props(tmp_path / "bad.properties", {
        "security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN", "ssl.ca.location": secure.pki.ca_file,
        "sasl.username": "admin", "sasl.password": "not-" + ADMIN_PASSWORD})
    with standalone_console(secure.sasl_ssl, "--command-config", good) as (url, output):
        page.goto(url + "/#/topics")
        page.get_by_test_id("topic-row-seen-by-standalone").wait_for()
        page.goto(url + "/#/")
        wait_text(page, "brokers-alive", "1 / 1")
        assert secure.sasl_ssl in text(page, "broker-row-1")
        page.goto("about:blank")
    with standalone_console(secure.sasl_ssl, "--command-config", bad) as (url, output):
        page.goto(url + "/#/")
        page.wait_for_function("document.getElementById('banner').innerText.includes('unreachable')",
                               timeout=UI_TIMEOUT_MS)
        page.goto("about:blank")
    assert not any(secret in "".join(output) for secret in SECRETS), output


@contextmanager
def standalone_console(bootstrap: str, *flags: str) -> Iterator[tuple[str, list[str]]]:
    """`suoi console` on a free port: (its URL, the lines it printed so far, filled as it runs)."""
    port = free_ports(1)[0]
    proc = subprocess.Popen([sys.executable, "-m", "suoi", "console", "--bootstrap-server", bootstrap,
                             "--listen", f"127.0.0.1:{port}", "--interval", "0.3", *flags],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    try:
        assert proc.stdout is not None
        output.append(proc.stdout.readline())
        assert output[0].startswith(f"suoi console on http://127.0.0.1:{port}/"), output
        yield f"http://127.0.0.1:{port}", output
    finally:
        proc.terminate()
        rest, _ = proc.communicate(timeout=10)
        output.append(rest)
        assert proc.returncode == 0, output


def acl_rows(page: Any) -> list[list[str]]:
    rows = page.get_by_test_id("acl-row")
    return [rows.nth(i).inner_text().split("\t")[:7] for i in range(rows.count())]


def test_acl_page_lists_adds_and_deletes_bindings_after_asking(secure: SecureNode, page: Any) -> None:
    from confluent_kafka.admin import (
        AclBinding,
        AclBindingFilter,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    admin = AdminClient({"bootstrap.servers": secure.bootstrap})
    alice = AclBinding(ResourceType.TOPIC, "orders", ResourcePatternType.LITERAL, "User:alice", "*",
                       AclOperation.READ, AclPermissionType.ALLOW)
    assert [f.result(15) for f in admin.create_acls([alice]).values()] == [None]
    asked: list[str] = []

    def accept(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    page.goto(secure.console + "/#/acls")
    page.wait_for_function("document.querySelectorAll('[data-testid=acl-row]').length === 1", timeout=UI_TIMEOUT_MS)
    assert acl_rows(page) == [["ALLOW", "User:alice", "READ", "TOPIC", "orders", "LITERAL", "*"]]

    form = page.locator("#create-acl")
    form.locator("input[name=principal]").fill("User:bob")
    form.locator("select[name=permission]").select_option("DENY")
    form.locator("select[name=operation]").select_option("WRITE")
    form.locator("input[name=resource_name]").fill("pay-")
    form.locator("select[name=pattern_type]").select_option("PREFIXED")
    form.locator("button").click()
    wait_text(page, "create-acl-status", "added")
    assert asked == ["Add the ACL: DENY User:bob WRITE on TOPIC pay- (PREFIXED) from host *?"]
    everything = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY,
                                  AclPermissionType.ANY)
    bob = AclBinding(ResourceType.TOPIC, "pay-", ResourcePatternType.PREFIXED, "User:bob", "*",
                     AclOperation.WRITE, AclPermissionType.DENY)
    assert sorted(admin.describe_acls(everything).result(15), key=str) == sorted([alice, bob], key=str)
    assert acl_rows(page) == [["ALLOW", "User:alice", "READ", "TOPIC", "orders", "LITERAL", "*"],
                              ["DENY", "User:bob", "WRITE", "TOPIC", "pay-", "PREFIXED", "*"]]

    page.get_by_test_id("acl-row").first.locator("button").click()
    page.wait_for_function("document.querySelectorAll('[data-testid=acl-row]').length === 1", timeout=UI_TIMEOUT_MS)
    assert asked[-1] == "Delete the ACL: ALLOW User:alice READ on TOPIC orders (LITERAL) from host *?"
    assert admin.describe_acls(everything).result(15) == [bob]
    wait_text(page, "acl-delete-status", "deleted: ALLOW User:alice READ on TOPIC orders (LITERAL) from host *")


def test_users_page_shows_scram_mechanisms_and_quotas_but_no_secret(secure: SecureNode, page: Any) -> None:
    from confluent_kafka.admin import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

    from tests.e2e.cli import suoi

    admin = AdminClient({"bootstrap.servers": secure.bootstrap})
    upserts = [UserScramCredentialUpsertion("carol", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 8192),
                                            ALICE_PASSWORD.encode()),
               UserScramCredentialUpsertion("carol", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096),
                                            ALICE_PASSWORD.encode())]
    assert [f.result(15) for f in admin.alter_user_scram_credentials(upserts).values()] == [None]
    done = suoi("configs", "--bootstrap-server", secure.bootstrap, "--alter", "--entity-type", "users",
                "--entity-name", "carol", "--add-config", "producer_byte_rate=1024,request_percentage=12.5")
    assert done.returncode == 0, done.stderr
    page.goto(secure.console + "/#/users")
    wait_text(page, "scram-creds-carol", "SCRAM-SHA-256 (8192 iterations), SCRAM-SHA-512 (4096 iterations)")
    wait_text(page, "quota-user=carol", "producer_byte_rate=1024, request_percentage=12.50")
    import urllib.request

    with urllib.request.urlopen(secure.console + "/api/users", timeout=10) as r:
        answer = r.read().decode()
    assert ALICE_PASSWORD not in answer and "salt" not in answer.lower()


def test_byte_rates_come_from_the_nodes_metrics_endpoint(secure: SecureNode, page: Any) -> None:
    """The node has admin.listeners: the console finds it (DescribeConfigs of the broker) and shows
    bytes/s per topic and broker; its byte counters are the endpoint's, to the byte."""
    import urllib.request

    from suoi.http.console.byte_rates import parse_byte_counters

    create_topic(secure.bootstrap, "rates")
    page.goto(secure.console + "/#/topics")
    page.get_by_test_id("in-bytes-rate-rates").wait_for()  # the bytes/s columns: the endpoint answered
    producer = Producer({"bootstrap.servers": secure.bootstrap, "linger.ms": 0})
    for i in range(20):
        producer.produce("rates", value=b"x" * 1000, key=str(i).encode(), partition=0)
    assert producer.flush(15) == 0
    page.wait_for_function("!['–', '0 B/s'].includes(document.querySelector('[data-testid=\"in-bytes-rate-rates\"]')"
                           ".innerText.trim())", timeout=UI_TIMEOUT_MS)
    with urllib.request.urlopen(secure.admin + "/metrics", timeout=10) as r:
        scraped = parse_byte_counters(r.read().decode())
    assert scraped["rates"][0] > 20_000  # 20 records of 1000 bytes, in batches

    def console_counts() -> Any:
        with urllib.request.urlopen(secure.console + "/api/snapshot", timeout=10) as r:
            snap = json.loads(r.read())
        topic = next(t for t in snap["topics"] if t["name"] == "rates")
        return topic["bytes_in"] == scraped["rates"][0] and snap

    snap = wait_until(console_counts, 10, 0.2, "the console's byte counters")
    topic = next(t for t in snap["topics"] if t["name"] == "rates")
    assert 0 < topic["in_bytes_rate"] <= scraped["rates"][0]  # over a window of at least 0.5 s
    assert snap["brokers"][0]["in_bytes_rate"] >= topic["in_bytes_rate"]
    page.goto(secure.console + "/#/")
    page.get_by_test_id("broker-in-1").wait_for()
