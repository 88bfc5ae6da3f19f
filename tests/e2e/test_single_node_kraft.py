"""`make run`'s single node: config/server.properties (KRaft combined mode, one Raft voter),
used by a Kafka tutorial's code unchanged; and the data dir of a node without process.roles
(the same one-voter node) keeps its topics under it. Also: the README's Python quick
start runs as written, and a first consumer is not held by the initial rebalance delay."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import confluent_kafka
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kio.schema.errors import ErrorCode

from suoi.config import read_properties
from suoi.testing import EmbeddedBroker
from suoi.testing.embedded import free_port
from tests.e2e.cli import suoi
from tests.e2e.helpers import ck_consume, ck_produce, create_topic
from tests.integration.support import metadata_req
from tests.rawclient import RawClient

REPO = Path(__file__).resolve().parents[2]


def make_run_properties(port: int, controller_port: int) -> dict[str, str]:
    """config/server.properties with test ports (log.dirs is EmbeddedBroker's; the admin endpoint on a free port)."""
    props = read_properties(REPO / "config" / "server.properties")
    props.pop("log.dirs")
    props.pop("schema.registry.listeners", None)  # tests' nodes run a schema registry only when they ask
    props.pop("console.listeners", None)  # the web console's port 8080: off in tests (test_web_console.py)
    for key in ("listeners", "advertised.listeners", "controller.quorum.voters"):
        props[key] = props[key].replace("9092", str(port)).replace("9093", str(controller_port))
    props["admin.listeners"] = props["admin.listeners"].replace("9644", "0")  # any free port: tests run side by side
    return props


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    port, cport = free_port(), free_port()
    props = make_run_properties(port, cport)
    assert props["process.roles"] == "broker,controller"
    with EmbeddedBroker(tmp_path_factory.mktemp("make-run"), port=port, overrides=props) as broker:
        yield broker


def test_a_tutorial_runs_unchanged(node: EmbeddedBroker) -> None:
    producer = KafkaProducer(bootstrap_servers=node.bootstrap)
    producer.send("orders", key=b"customer-42", value=b"first order").get(timeout=30)  # auto-created
    producer.close()
    consumer = KafkaConsumer("orders", bootstrap_servers=node.bootstrap, group_id="tutorial",
                             auto_offset_reset="earliest", consumer_timeout_ms=20000)
    try:
        first = next(iter(consumer))
        consumer.commit()
        assert (first.key, first.value, first.offset) == (b"customer-42", b"first order", 0)
        assert consumer.committed(TopicPartition("orders", 0)) == 1
    finally:
        consumer.close()


def test_console_producer_to_a_new_topic_delivers_the_first_record(node: EmbeddedBroker) -> None:
    """`echo hi | suoi console-producer --topic new` (issue 11 bug 8): it failed with "Leader not
    available" and lost the record, because the first Metadata answer for an auto-created topic
    was LEADER_NOT_AVAILABLE. The node now answers once the topic exists (and the tool would retry)."""
    for topic in ("new", "new-too"):
        proc = suoi("console-producer", "--topic", topic, "--bootstrap-server", node.bootstrap, stdin="hi\n")
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == ""
        assert [r.value for r in ck_consume(node.bootstrap, topic, [0], 1, timeout=20)] == [b"hi"]


def test_first_metadata_of_an_auto_created_topic_names_its_leader(node: EmbeddedBroker) -> None:
    with RawClient(node.bootstrap) as c:
        for topic in ("auto-a", "auto-b", "auto-c"):
            t = c.request(metadata_req(topic, allow_create=True)).topics[0]
            assert t.error_code == ErrorCode.none and [int(p.leader_id) for p in t.partitions] == [1], t


def test_transactions_work_on_one_node(node: EmbeddedBroker) -> None:
    create_topic(node.bootstrap, "one-node-txn", 2)
    producer = confluent_kafka.Producer({"bootstrap.servers": node.bootstrap, "transactional.id": "one-node"})
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce("one-node-txn", value=b"kept", partition=0)
    producer.commit_transaction(30)
    producer.begin_transaction()
    producer.produce("one-node-txn", value=b"dropped", partition=1)
    producer.flush(30)
    producer.abort_transaction(30)
    ck_produce(node.bootstrap, "one-node-txn", [{"value": b"plain", "partition": 1}])
    got = ck_consume(node.bootstrap, "one-node-txn", [0, 1], 2, timeout=20,
                     conf={"isolation.level": "read_committed"})
    assert sorted(r.value for r in got) == [b"kept", b"plain"]


def test_a_data_dir_of_a_node_without_process_roles_keeps_its_topics_under_make_runs_config(
        tmp_path: Path) -> None:
    """Both are the same one-voter KRaft node (one without a CONTROLLER listener): the topics of
    the first are in the metadata log the second reads, none is deleted, the records are there."""
    port = free_port()
    with EmbeddedBroker(tmp_path / "n", port=port) as single:
        create_topic(single.bootstrap, "precious", 1)
        ck_produce(single.bootstrap, "precious", [{"value": b"keep me"}])
    log_dir = tmp_path / "n" / "data"
    before = sorted(p.name for p in (log_dir / "precious-0").iterdir())

    with EmbeddedBroker(tmp_path / "n", port=port, overrides=make_run_properties(port, free_port())) as configured:
        got = ck_consume(configured.bootstrap, "precious", [0], 1, timeout=20)
        assert [r.value for r in got] == [b"keep me"]
        assert "migrating" not in configured.logs()  # it was a KRaft dir already
    assert set(before) <= {p.name for p in (log_dir / "precious-0").iterdir()}


def test_a_first_consumer_gets_its_partitions_at_once(node: EmbeddedBroker) -> None:
    """config/server.properties sets group.initial.rebalance.delay.ms=0, as Kafka's shipped file
    does: without it the first JoinGroup of a new group is held 3 s."""
    assert read_properties(REPO / "config" / "server.properties")["group.initial.rebalance.delay.ms"] == "0"
    create_topic(node.bootstrap, "first-consumer", 1)
    assigned: list[float] = []
    consumer = confluent_kafka.Consumer({"bootstrap.servers": node.bootstrap, "group.id": "first-consumer"})
    try:
        started = time.monotonic()
        consumer.subscribe(["first-consumer"], on_assign=lambda c, ps: assigned.append(time.monotonic()))
        deadline = started + 20
        while not assigned and time.monotonic() < deadline:
            consumer.poll(0.1)
        assert assigned, "no assignment within 20 s"
        assert assigned[0] - started < 2.5  # 3 s or more with the broker default delay
    finally:
        consumer.close()


def test_the_readme_quick_start_runs_as_written(node: EmbeddedBroker) -> None:
    """The README's Python block, run as is (only the address changed) in a fresh interpreter
    that has suoi's runtime dependencies: it prints every record of `orders` from the start."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", readme.split("## Quick start", 1)[1], flags=re.S | re.M)
    code = blocks[0]
    assert code.count("localhost:9092") == 2
    proc = subprocess.run([sys.executable, "-c", code.replace("localhost:9092", node.bootstrap)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines, proc.stderr
    # `orders` holds the tutorial test's record (same key and value) and the README's: all of them, in order
    assert lines == [f"0 {offset} b'customer-42' b'first order'" for offset in range(len(lines))]
