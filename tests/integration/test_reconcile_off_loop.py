"""Partition logs are created and removed off the event loop by the KRaft reconciler (issue 19):
a topic of many partitions becomes usable while other clients keep producing, and metadata
changes that arrive while the logs are being made on the worker thread (a deletion, more
partitions, a config change, the name created again) apply after them, in order. Real
in-process nodes, confluent-kafka and raw Kafka requests; the worker thread's job is held by
the test where the order matters (`log_work.make_new_logs`; topics of more than `log_work.INLINE`
partitions: a few are made on the loop at once)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewPartitions, NewTopic
from kio.schema.errors import ErrorCode

from suoi.cluster import log_work
from suoi.protocol.records import build_batch
from suoi.testing import InProcessNode
from tests.conftest import wait_until
from tests.e2e.helpers import ck_consume, ck_produce
from tests.integration.support import produce_req
from tests.rawclient import RawClient


@pytest.fixture
def node(tmp_path: Path) -> Iterator[InProcessNode]:
    with InProcessNode(tmp_path) as n:
        yield n


def _admin(node: InProcessNode) -> AdminClient:
    return AdminClient({"bootstrap.servers": node.bootstrap})


def _create(node: InProcessNode, name: str, partitions: int) -> None:
    admin = _admin(node)  # (kept: a client destroyed before the answer fails its futures)
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)],
                        request_timeout=30)[name].result(30)


def _delete(node: InProcessNode, name: str) -> None:
    admin = _admin(node)
    admin.delete_topics([name], request_timeout=30)[name].result(30)


def _dirs(node: InProcessNode, name: str) -> list[Path]:
    """The topic's partition directories, those renamed ``-delete`` for removal included."""
    return [d for d in (node.data_dir / "data").iterdir()
            if d.name.startswith(name + "-") and d.name[len(name) + 1:].split(".")[0].isdigit()]


def _led_here(node: InProcessNode, name: str) -> list[int]:
    """Partitions of the topic named `name` now (not of a deleted one of that name) led here."""
    replicas = node.broker.kraft.replicas
    topic = node.broker.kraft.image.topic(name)
    return sorted(tp.partition for tp, p in list(replicas.leaders.items())
                  if tp.topic == name and topic is not None and p.topic_id == topic.topic_id)


def _produce_one(node: InProcessNode, name: str, partition: int, value: bytes) -> ErrorCode:
    with RawClient(node.bootstrap, timeout=10) as c:
        answer = c.request(produce_req(name, partition, build_batch([(None, value)]), acks=1))
    return answer.responses[0].partition_responses[0].error_code


def test_a_wide_topic_becomes_usable_while_another_client_produces(node: InProcessNode) -> None:
    _create(node, "steady", 1)
    sent, delivered, errors = 600, [], []
    stop = threading.Event()

    def steady() -> None:  # a producer on another topic all along the creation, linger.ms=0
        p = Producer({"bootstrap.servers": node.bootstrap, "linger.ms": 0, "log_level": 3})
        for i in range(sent):
            p.produce("steady", str(i).encode(), partition=0,
                      on_delivery=lambda err, msg: errors.append(err) if err else delivered.append(msg.offset()))
            p.poll(0)
            if not stop.is_set():
                time.sleep(0.002)
        p.flush(30)

    producer = threading.Thread(target=steady)
    producer.start()
    try:
        _create(node, "wide", 300)
        wait_until(lambda: len(_led_here(node, "wide")) == 300, timeout=60, message="300 partitions led here")
        records = [{"value": f"w{p}".encode(), "partition": p} for p in range(300)]
        assert sorted(ck_produce(node.bootstrap, "wide", records)) == [(p, 0) for p in range(300)]
    finally:
        stop.set()
        producer.join(60)
    assert errors == [] and delivered == list(range(sent))  # none lost, in order
    got = ck_consume(node.bootstrap, "steady", [0], sent, timeout=30)
    assert [(r.offset, r.value) for r in got] == [(i, str(i).encode()) for i in range(sent)]
    wide = ck_consume(node.bootstrap, "wide", list(range(300)), 300, timeout=30)
    assert sorted((r.partition, r.offset, r.value) for r in wide) == [(p, 0, f"w{p}".encode()) for p in range(300)]
    assert len(_dirs(node, "wide")) == 300


def test_a_small_topic_leads_before_the_next_request(node: InProcessNode) -> None:
    """A topic of a few partitions (`log_work.INLINE`) has its logs made in the round's first slice:
    a Produce right after Metadata shows the leaders is not sent away (as before the worker thread)."""
    for i in range(5):
        node.create_topic(f"small-{i}", partitions=log_work.INLINE)
        assert {_produce_one(node, f"small-{i}", p, b"v") for p in range(log_work.INLINE)} == {ErrorCode.none}


def test_a_delete_right_after_the_create_leaves_nothing(node: InProcessNode) -> None:
    _create(node, "flash", 200)
    _delete(node, "flash")  # the logs may still be in the making
    wait_until(lambda: node.broker.logs.topic("flash") is None and not _dirs(node, "flash"), timeout=30,
               message="flash's logs and directories gone")
    assert _led_here(node, "flash") == []
    assert "flash" not in _admin(node).list_topics(timeout=10).topics
    _create(node, "after-flash", 1)  # the node serves on
    assert ck_produce(node.bootstrap, "after-flash", [{"value": b"x"}]) == [(0, 0)]


def test_a_name_created_again_starts_empty(node: InProcessNode) -> None:
    _create(node, "again", 40)
    ck_produce(node.bootstrap, "again", [{"value": b"old", "partition": p} for p in range(40)] * 2)
    _delete(node, "again")
    wait_until(lambda: "again" not in _admin(node).list_topics(timeout=10).topics, timeout=30, message="deleted")
    _create(node, "again", 40)  # at once: the old directories may not be removed yet
    wait_until(lambda: len(_led_here(node, "again")) == 40, timeout=30, message="40 partitions led again")
    delivered = ck_produce(node.bootstrap, "again", [{"value": b"new", "partition": p} for p in range(40)])
    assert sorted(delivered) == [(p, 0) for p in range(40)]  # every log starts at offset 0
    got = ck_consume(node.bootstrap, "again", list(range(40)), 80, timeout=10)
    assert sorted((r.partition, r.offset, r.value) for r in got) == [(p, 0, b"new") for p in range(40)]
    wait_until(lambda: len(_dirs(node, "again")) == 40, timeout=30, message="the old directories removed")


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[threading.Event, threading.Event]]:
    """The worker thread's log-making job waits until the test lets it go."""
    entered, release = threading.Event(), threading.Event()
    real = log_work.make_new_logs

    def held_make(jobs: list, now_ms: object) -> None:  # type: ignore[type-arg]
        entered.set()
        release.wait(30)
        real(jobs, now_ms)  # type: ignore[arg-type]

    monkeypatch.setattr(log_work, "make_new_logs", held_make)
    yield entered, release
    release.set()


def test_a_deletion_waits_for_the_logs_in_the_making(node: InProcessNode,
                                                     held: tuple[threading.Event, threading.Event]) -> None:
    entered, release = held
    _create(node, "doomed", 100)
    assert entered.wait(10), "the logs were not handed to the worker thread"
    # In the making: not led here yet, as a Kafka broker that has not applied the change yet answers.
    assert _produce_one(node, "doomed", 0, b"early") == ErrorCode.not_leader_or_follower
    _delete(node, "doomed")  # the controller answers; this node applies it after the logs are made
    release.set()
    wait_until(lambda: node.broker.logs.topic("doomed") is None and not _dirs(node, "doomed"), timeout=30,
               message="doomed's logs and directories gone")
    assert _led_here(node, "doomed") == []
    assert node.broker.logs.missing_partitions("doomed") == [] and not node.broker.logs.failed
    assert _produce_one(node, "doomed", 0, b"late") == ErrorCode.unknown_topic_or_partition


def test_changes_behind_logs_in_the_making_apply_after_them(node: InProcessNode,
                                                            held: tuple[threading.Event, threading.Event]) -> None:
    entered, release = held
    _create(node, "growing", 100)
    assert entered.wait(10), "the logs were not handed to the worker thread"
    admin = _admin(node)
    admin.create_partitions([NewPartitions("growing", 130)], request_timeout=30)["growing"].result(30)
    retention = ConfigEntry("retention.ms", "123456", incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource(ConfigResource.Type.TOPIC, "growing", incremental_configs=[retention])
    admin.incremental_alter_configs([resource])[resource].result(30)
    assert _led_here(node, "growing") == []
    release.set()
    wait_until(lambda: _led_here(node, "growing") == list(range(130)), timeout=30, message="130 partitions led")
    logs = node.broker.logs
    wait_until(lambda: all(logs.get_log("growing", p).config.retention_ms == 123456 for p in range(130)),
               timeout=10, message="the config change on every log")
    delivered = ck_produce(node.bootstrap, "growing", [{"value": b"v", "partition": p} for p in range(130)])
    assert sorted(delivered) == [(p, 0) for p in range(130)]


def test_a_name_deleted_and_created_again_behind_logs_in_the_making_starts_empty(
        node: InProcessNode, held: tuple[threading.Event, threading.Event]) -> None:
    """The deletion and the new topic reach the reconciler in one image change: the old
    directories are set aside before the new logs are made under the same names."""
    entered, release = held
    release.set()
    _create(node, "reborn", 20)
    wait_until(lambda: len(_led_here(node, "reborn")) == 20, timeout=30, message="20 partitions led")
    ck_produce(node.bootstrap, "reborn", [{"value": b"old", "partition": p} for p in range(20)] * 3)
    release.clear()
    entered.clear()
    _create(node, "blocker", 40)  # its logs are held in the making: the next changes wait for one round
    assert entered.wait(10), "the logs were not handed to the worker thread"
    _delete(node, "reborn")
    _create(node, "reborn", 20)
    # Not applied here yet: the old replicas refuse the new topic's writes (they would go with them).
    assert _produce_one(node, "reborn", 0, b"too early") == ErrorCode.not_leader_or_follower
    release.set()
    wait_until(lambda: len(_led_here(node, "reborn")) == 20, timeout=30, message="20 partitions led again")
    delivered = ck_produce(node.bootstrap, "reborn", [{"value": b"new", "partition": p} for p in range(20)])
    assert sorted(delivered) == [(p, 0) for p in range(20)]
    got = ck_consume(node.bootstrap, "reborn", list(range(20)), 40, timeout=10)
    assert sorted((r.partition, r.offset, r.value) for r in got) == [(p, 0, b"new") for p in range(20)]
