"""JBOD: a KRaft node with two log dirs. New partitions are spread over them, DescribeLogDirs
answers per dir, AlterReplicaLogDirs moves a replica (future copy, then swap) while it keeps
serving, and `suoi log-dirs --describe` prints Kafka's JSON; driven by kafka-python and
confluent-kafka."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.structs import TopicPartitionReplica
from kio.schema.errors import ErrorCode
from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData
from kio.schema.types import TopicName
from kio.static.primitive import i16, i32, i32Timedelta

from suoi.log.dir_lock import LOCK_FILE
from suoi.protocol.records import build_batch
from suoi.testing import EmbeddedBroker
from suoi.testing.embedded import free_port
from tests.conftest import wait_until
from tests.e2e.cli import fails, ok
from tests.e2e.helpers import ck_consume, ck_produce
from tests.e2e.test_kafka4_apis import admin  # noqa: F401  (the module-scoped admin client fixture)
from tests.e2e.test_single_node_kraft import make_run_properties
from tests.rawclient import RawClient


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    base = tmp_path_factory.mktemp("jbod")
    port = free_port()
    props = make_run_properties(port, free_port())
    with EmbeddedBroker(base, port=port, overrides=props, log_dirs=[base / "disk-a", base / "disk-b"]) as broker:
        yield broker


def _dirs(node: EmbeddedBroker, topic: str, *, allow_errors: bool = False) -> dict[str, dict[int, dict]]:
    """`suoi log-dirs --describe`: log dir -> partition -> its entry (the JSON line)."""
    out = ok("log-dirs", "--describe", "--bootstrap-server", node.bootstrap, "--topic-list", topic).splitlines()
    assert out[:2] == ["Querying brokers for log directories information",
                       "Received log directory information from brokers 1"]
    doc = json.loads(out[2])
    assert doc["version"] == 1 and [b["broker"] for b in doc["brokers"]] == [1]
    dirs = {}
    for d in doc["brokers"][0]["logDirs"]:
        assert d["error"] is None or (allow_errors and d["error"].endswith("KafkaStorageException")), d
        dirs[Path(d["logDir"]).name] = {int(p["partition"].rsplit("-", 1)[1]): p for p in d["partitions"]
                                        if not p["isFuture"]}
    return dirs


def test_partitions_spread_over_log_dirs_and_a_replica_moves(node: EmbeddedBroker, admin: KafkaAdminClient  # noqa: F811
                                                              ) -> None:
    topic = "jbod-orders"
    admin.create_topics([NewTopic(topic, 4, 1)])
    before = wait_until(lambda: (lambda d: d if sum(map(len, d.values())) == 4 else None)(_dirs(node, topic)),
                        timeout=15, message="4 replicas in the log dirs")
    assert sorted(before) == ["disk-a", "disk-b"]
    assert sorted(len(parts) for parts in before.values()) == [2, 2]  # the least loaded dir gets the next one
    source = next(name for name, parts in before.items() if 0 in parts)
    target = "disk-b" if source == "disk-a" else "disk-a"
    ck_produce(node.bootstrap, topic, [{"value": b"before-%d" % i, "partition": 0} for i in range(50)])

    described = admin.describe_log_dirs()
    (broker,) = described
    paths = {Path(d["log_dir"]).name: d["log_dir"] for d in broker["log_dirs"]}
    result = admin.alter_replica_log_dirs({
        TopicPartitionReplica(topic, 0, 1): paths[target],
        TopicPartitionReplica(topic, 9, 1): paths[target],  # no such replica
        TopicPartitionReplica("jbod-elsewhere", 0, 1): "/no/such/dir",
    })
    assert {(k.topic, k.partition): v.__name__ for k, v in result.items()} == {
        (topic, 0): "NoError", (topic, 9): "ReplicaNotAvailableError",
        ("jbod-elsewhere", 0): "LogDirNotFoundError"}
    # a replica that does not exist yet goes to the asked dir when it is created (Kafka's rule)
    early = admin.alter_replica_log_dirs({TopicPartitionReplica("jbod-later", 0, 1): paths[target]})
    assert [v.__name__ for v in early.values()] == ["ReplicaNotAvailableError"]
    after = wait_until(lambda: (lambda d: d if 0 in d[target] and 0 not in d[source] else None)(_dirs(node, topic)),
                       timeout=15, message="partition 0 in the target dir")
    assert after[target][0]["size"] > 0 and after[target][0]["offsetLag"] == 0
    assert not list(Path(node.log_dirs[0].parent).glob("disk-*/*-future"))  # no future replica left behind

    admin.create_topics([NewTopic("jbod-later", 1, 1)])
    # (the target dir holds 3 replicas by now, the source 1: without the request it would go there)
    wait_until(lambda: 0 in _dirs(node, "jbod-later")[target], timeout=15, message="jbod-later-0 in the asked dir")
    ck_produce(node.bootstrap, topic, [{"value": b"after-%d" % i, "partition": 0} for i in range(10)])
    node.stop()
    # a crash in the middle of a move back: a partial -future copy (no indexes) in the source dir
    moved_dir = node.log_dirs[0].parent / target / f"{topic}-0"
    future = node.log_dirs[0].parent / source / f"{topic}-0.{'ab' * 16}-future"
    shutil.copytree(moved_dir, future, ignore=shutil.ignore_patterns("*.index", "*.timeindex"))
    node.start()  # the moved replica is recovered from its new dir, and the interrupted move resumes
    wait_until(lambda: 0 in _dirs(node, topic)[source], timeout=15, message="the interrupted move finished")
    got = ck_consume(node.bootstrap, topic, [0], 60, timeout=30)
    assert [r.offset for r in got] == list(range(60))
    assert [r.value for r in got] == [b"before-%d" % i for i in range(50)] + [b"after-%d" % i for i in range(10)]
    assert not future.exists() and not moved_dir.exists()


def test_log_dirs_tool_refuses_unknown_brokers(node: EmbeddedBroker) -> None:
    err = fails("log-dirs", "--describe", "--bootstrap-server", node.bootstrap, "--broker-list", "1,7")
    assert "The given brokers do not exist from --broker-list: 7" in err


def test_a_failed_log_dir_goes_offline_and_the_node_keeps_serving(node: EmbeddedBroker,
                                                                  admin: KafkaAdminClient  # noqa: F811
                                                                  ) -> None:
    topic = "jbod-failing"
    admin.create_topics([NewTopic(topic, 4, 1)])
    placed = wait_until(lambda: (lambda d: d if sum(map(len, d.values())) == 4 else None)(_dirs(node, topic)),
                        timeout=15, message="4 replicas placed")
    doomed, healthy = node.log_dirs[1], node.log_dirs[0]  # the first dir holds the node's metadata
    lost, kept = sorted(placed[doomed.name]), sorted(placed[healthy.name])
    assert lost and kept
    with RawClient(node.bootstrap) as c:  # a full Fetch of every partition, twice: the node remembers it
        for _ in range(2):
            assert _full_fetch(c, topic, 4) == [(p, ErrorCode.none) for p in range(4)]
    shutil.rmtree(doomed)  # the disk goes away under the running node

    def offline() -> dict | None:
        (broker,) = admin.describe_log_dirs()
        dirs = {Path(d["log_dir"]).name: d for d in broker["log_dirs"]}
        gone = dirs[doomed.name]
        return dirs if gone["error_code"] == 56 and gone["topics"] == [] else None  # KAFKA_STORAGE_ERROR

    dirs = wait_until(offline, timeout=15, message="the removed dir reported offline")
    assert dirs[healthy.name]["error_code"] == 0
    locks = [link for link in _open_files(node.pid) if Path(link.removesuffix(" (deleted)")).name == LOCK_FILE]
    assert locks == [os.path.realpath(healthy / LOCK_FILE)]  # the failed dir's lock let go, as Kafka does
    with RawClient(node.bootstrap) as c:
        # the same full Fetch: the lost replicas KAFKA_STORAGE_ERROR, never read from the closed logs
        assert _full_fetch(c, topic, 4) == [
            (p, ErrorCode.kafka_storage_error if p in lost else ErrorCode.none) for p in range(4)]
        for p in lost:
            assert _produce(c, topic, p) == ErrorCode.kafka_storage_error
        for p in kept:
            assert _produce(c, topic, p) == ErrorCode.none
    # the other dir serves on; new replicas avoid the failed dir, moves to it are refused
    got = ck_consume(node.bootstrap, topic, kept, len(kept), timeout=20)
    assert sorted(r.partition for r in got) == kept
    admin.create_topics([NewTopic("jbod-after-failure", 2, 1)])
    after = wait_until(lambda: (lambda d: d if sum(map(len, d.values())) == 2 else None)(
        _dirs(node, "jbod-after-failure", allow_errors=True)), timeout=15, message="new replicas placed")
    assert sorted(after[healthy.name]) == [0, 1]
    moved = admin.alter_replica_log_dirs({TopicPartitionReplica(topic, kept[0], 1): str(doomed)})
    assert [v.__name__ for v in moved.values()] == ["KafkaStorageError"]
    assert node.logs().count("taken offline") == 1 and "Traceback" not in node.logs()  # one line for the failure
    assert node.proc is not None and node.proc.poll() is None


def _open_files(pid: int) -> list[str]:
    links = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):  # closed meanwhile
            links.append(os.readlink(fd))
    return links


def _produce(c: RawClient, topic: str, partition: int) -> ErrorCode:
    request = ProduceRequest(transactional_id=None, acks=i16(1), timeout=i32Timedelta.parse(
        datetime.timedelta(seconds=5)), topic_data=(TopicProduceData(name=TopicName(topic), partition_data=(
            PartitionProduceData(index=i32(partition), records=build_batch([(None, b"v")])),)),))
    return c.request(request).responses[0].partition_responses[0].error_code


def _full_fetch(c: RawClient, topic: str, partitions: int) -> list[tuple[int, ErrorCode]]:
    """A sessionless Fetch v12 of every partition from offset 0, answered at once."""
    answer = c.request(FetchRequest(max_wait=datetime.timedelta(0), min_bytes=1, max_bytes=1 << 20, topics=(
        FetchTopic(topic=TopicName(topic), partitions=tuple(
            FetchPartition(partition=i32(p), fetch_offset=0, partition_max_bytes=i32(1 << 20))
            for p in range(partitions))),), forgotten_topics_data=()))
    return [(p.partition_index, p.error_code) for p in answer.responses[0].partitions]
