"""Leader epochs over the wire (KIP-101/279/320): OffsetForLeaderEpoch, ListOffsets' leader
epochs and current_leader_epoch checks, Metadata's leader epochs; on a single node (no
process.roles: every partition led here, at epoch 0 until a restart) and on a 3-node KRaft cluster (RF=1: leaders
elsewhere, an epoch moved by a leader's restart)."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kio.schema.errors import ErrorCode
from kio.schema.list_offsets.v9.request import ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic

from suoi.log.leader_epoch import CHECKPOINT_FILE
from suoi.protocol.records import SimpleRecord, build_batch
from suoi.testing import EmbeddedBroker
from tests.conftest import wait_until
from tests.integration.kraft_cluster import KRaftCluster, kraft_cluster
from tests.integration.support import (
    EARLIEST,
    LATEST,
    create_topic,
    metadata_req,
    module_broker,
    partition_dir,
    produce,
    unique,
)
from tests.rawclient import RawClient

MAX_TIMESTAMP = -3
NONE = ErrorCode.none
#: (partition, leader_epoch, current_leader_epoch)
Ask = tuple[int, int, int]


def offsets_for_epochs(bootstrap: str, asks: dict[str, list[Ask]], *, version: int = 4,
                       replica_id: int = -1) -> dict[tuple[str, int], tuple[ErrorCode, int, int]]:
    """OffsetForLeaderEpoch at `version`: (topic, partition) -> (error, leader epoch, end offset)."""
    m = importlib.import_module(f"kio.schema.offset_for_leader_epoch.v{version}.request")
    topics = tuple(m.OffsetForLeaderTopic(topic=name, partitions=tuple(
        m.OffsetForLeaderPartition(partition=p, leader_epoch=e, current_leader_epoch=c) for p, e, c in ps))
        for name, ps in asks.items())
    request = (m.OffsetForLeaderEpochRequest(topics=topics) if version < 3
               else m.OffsetForLeaderEpochRequest(replica_id=replica_id, topics=topics))
    with RawClient(bootstrap) as c:
        response = c.request(request)
    assert [t.topic for t in response.topics] == list(asks)
    out = {}
    for t, (name, ps) in zip(response.topics, asks.items(), strict=True):
        assert [p.partition for p in t.partitions] == [p for p, _, _ in ps]
        out.update({(name, int(p.partition)): (ErrorCode(p.error_code), int(p.leader_epoch), int(p.end_offset))
                    for p in t.partitions})
    return out


def end_of(bootstrap: str, topic: str, partition: int, epoch: int, current: int = -1, **kw: Any
           ) -> tuple[ErrorCode, int, int]:
    return offsets_for_epochs(bootstrap, {topic: [(partition, epoch, current)]}, **kw)[(topic, partition)]


def list_offsets(bootstrap: str, topic: str, partition: int, timestamp: int, *, current: int = -1,
                 replica_id: int = -1) -> tuple[ErrorCode, int, int, int]:
    """ListOffsets v9: (error, offset, timestamp, leader epoch)."""
    request = ListOffsetsRequest(replica_id=replica_id, isolation_level=0, topics=(ListOffsetsTopic(
        name=topic, partitions=(ListOffsetsPartition(partition_index=partition, timestamp=timestamp,
                                                     current_leader_epoch=current),)),))
    with RawClient(bootstrap) as c:
        p = c.request(request).topics[0].partitions[0]
    return ErrorCode(p.error_code), int(p.offset), int(p.timestamp), int(p.leader_epoch)


def leader_epoch(bootstrap: str, topic: str) -> int:
    with RawClient(bootstrap) as c:
        (t,) = c.request(metadata_req(topic, allow_create=False)).topics
    return int(t.partitions[0].leader_epoch)


def records(n: int, *, epoch: int = -1, ts: int = 1_000) -> bytes:
    """One batch of `n` records with timestamps ts, ts+1, ...; `epoch` in its header, as a
    client writes it (librdkafka writes 0, the Java producer -1)."""
    return build_batch([SimpleRecord(key=None, value=b"v%d" % i, timestamp_ms=ts + i) for i in range(n)],
                       partition_leader_epoch=epoch)


def produce_ok(bootstrap: str, topic: str, partition: int, batch: bytes) -> int:
    r = produce(bootstrap, topic, partition, batch)
    assert r.error_code == NONE, r.error_code
    return int(r.base_offset)


# -- a single node ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    yield from module_broker(tmp_path_factory, {"auto.create.topics.enable": "false"})


@pytest.mark.parametrize("version", [2, 3, 4])
def test_epoch_zero_ends_at_the_log_end_offset(broker: EmbeddedBroker, version: int) -> None:
    topic, empty = unique("ofle"), unique("ofle-empty")
    create_topic(broker.bootstrap, topic)
    create_topic(broker.bootstrap, empty)
    produce_ok(broker.bootstrap, topic, 0, records(3, epoch=0))
    produce_ok(broker.bootstrap, topic, 0, records(2, epoch=-1))
    answers = offsets_for_epochs(broker.bootstrap, {topic: [(0, 0, -1)], empty: [(0, 0, 0)]}, version=version)
    assert answers == {(topic, 0): (NONE, 0, 5), (empty, 0): (NONE, 0, 0)}


def test_epochs_the_log_does_not_know(broker: EmbeddedBroker) -> None:
    topic = unique("ofle-unknown-epoch")
    create_topic(broker.bootstrap, topic)
    produce_ok(broker.bootstrap, topic, 0, records(4, epoch=0))
    # Above the latest epoch and UNDEFINED: -1/-1 without an error, as Kafka answers.
    assert end_of(broker.bootstrap, topic, 0, 1) == (NONE, -1, -1)
    assert end_of(broker.bootstrap, topic, 0, -1) == (NONE, -1, -1)


def test_unknown_topic_and_partition(broker: EmbeddedBroker) -> None:
    topic, missing = unique("ofle-parts"), unique("ofle-missing")
    create_topic(broker.bootstrap, topic, partitions=2)
    produce_ok(broker.bootstrap, topic, 1, records(2, epoch=0))
    answers = offsets_for_epochs(broker.bootstrap, {topic: [(1, 0, -1), (2, 0, -1), (-1, 0, -1)],
                                                    missing: [(0, 0, -1)]})
    assert answers == {(topic, 1): (NONE, 0, 2),
                       (topic, 2): (ErrorCode.unknown_topic_or_partition, -1, -1),
                       (topic, -1): (ErrorCode.unknown_topic_or_partition, -1, -1),
                       (missing, 0): (ErrorCode.unknown_topic_or_partition, -1, -1)}
    with RawClient(broker.bootstrap) as c:  # asking did not create it
        assert c.request(metadata_req(missing, allow_create=False)).topics[0].error_code == \
            ErrorCode.unknown_topic_or_partition


def test_current_leader_epoch_is_checked(broker: EmbeddedBroker) -> None:
    topic = unique("ofle-current")
    create_topic(broker.bootstrap, topic)
    produce_ok(broker.bootstrap, topic, 0, records(3, epoch=0))
    assert end_of(broker.bootstrap, topic, 0, 0, current=0) == (NONE, 0, 3)
    assert end_of(broker.bootstrap, topic, 0, 0, current=-1) == (NONE, 0, 3)  # -1: not checked
    assert end_of(broker.bootstrap, topic, 0, 0, current=1) == (ErrorCode.unknown_leader_epoch, -1, -1)
    # Only -1 means "do not check": any other epoch below the current one is fenced (Kafka's rule).
    assert end_of(broker.bootstrap, topic, 0, 0, current=-2) == (ErrorCode.fenced_leader_epoch, -1, -1)
    assert end_of(broker.bootstrap, topic, 0, 0, current=1, version=2) == (ErrorCode.unknown_leader_epoch, -1, -1)


@pytest.mark.parametrize("replica_id", [-1, -2, 3])
def test_a_single_node_leads_every_partition(broker: EmbeddedBroker, replica_id: int) -> None:
    topic = unique("ofle-replica")
    create_topic(broker.bootstrap, topic)
    produce_ok(broker.bootstrap, topic, 0, records(2, epoch=0))
    assert end_of(broker.bootstrap, topic, 0, 0, replica_id=replica_id) == (NONE, 0, 2)


def test_list_offsets_leader_epochs_on_an_empty_log(broker: EmbeddedBroker) -> None:
    topic = unique("lo-epoch-empty")
    create_topic(broker.bootstrap, topic)
    assert list_offsets(broker.bootstrap, topic, 0, LATEST) == (NONE, 0, -1, 0)
    assert list_offsets(broker.bootstrap, topic, 0, EARLIEST) == (NONE, 0, -1, 0)
    assert list_offsets(broker.bootstrap, topic, 0, MAX_TIMESTAMP) == (NONE, -1, -1, -1)
    assert list_offsets(broker.bootstrap, topic, 0, 0) == (NONE, -1, -1, -1)


def test_list_offsets_checks_current_leader_epoch(broker: EmbeddedBroker) -> None:
    topic = unique("lo-epoch-check")
    create_topic(broker.bootstrap, topic)
    produce_ok(broker.bootstrap, topic, 0, records(2, epoch=0))
    assert list_offsets(broker.bootstrap, topic, 0, LATEST, current=0) == (NONE, 2, -1, 0)
    assert list_offsets(broker.bootstrap, topic, 0, LATEST, current=1)[0] == ErrorCode.unknown_leader_epoch
    assert list_offsets(broker.bootstrap, topic, 0, LATEST, current=-7)[0] == ErrorCode.fenced_leader_epoch
    assert list_offsets(broker.bootstrap, topic, 1, LATEST)[0] == ErrorCode.unknown_topic_or_partition


def test_epochs_rebuilt_from_batch_headers(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A log whose leader-epoch checkpoint is missing (written before suoi kept one) gets its
    cache rebuilt from the batches' partitionLeaderEpoch (librdkafka writes 0) at the next
    start; ListOffsets then names the epoch of each offset it returns."""
    with EmbeddedBroker(tmp_path_factory.mktemp("epochs")) as b:
        topic = unique("lo-epoch-rebuilt")
        create_topic(b.bootstrap, topic)
        produce_ok(b.bootstrap, topic, 0, records(3, epoch=0, ts=1_000))
        produce_ok(b.bootstrap, topic, 0, records(3, epoch=0, ts=2_000))
        b.stop()
        (partition_dir(b, topic) / CHECKPOINT_FILE).unlink()
        b.start()
        # rebuilt: epoch 0 from offset 0 (then the epoch this restart made it leader in, at 6)
        assert (partition_dir(b, topic) / CHECKPOINT_FILE).read_text().split()[2:4] == ["0", "0"]
        current = leader_epoch(b.bootstrap, topic)
        assert current > 0  # a restarted KRaft leader leads in a new epoch
        assert list_offsets(b.bootstrap, topic, 0, EARLIEST) == (NONE, 0, -1, 0)
        assert list_offsets(b.bootstrap, topic, 0, LATEST) == (NONE, 6, -1, current)
        assert list_offsets(b.bootstrap, topic, 0, 2_001) == (NONE, 4, 2_001, 0)
        assert list_offsets(b.bootstrap, topic, 0, MAX_TIMESTAMP) == (NONE, 5, 2_002, 0)
        assert end_of(b.bootstrap, topic, 0, 0, current=current) == (NONE, 0, 6)


# -- a 3-node KRaft cluster, RF=1 ---------------------------------------------------------

@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KRaftCluster]:
    with kraft_cluster(Path(tmp_path_factory.mktemp("kraft-epochs"))) as c:
        yield c


def test_only_the_leader_answers(cluster: KRaftCluster) -> None:
    topic = unique("ofle-kraft")
    create_topic(cluster.nodes[1].bootstrap, topic, partitions=3)
    leaders = cluster.wait_leaders(topic, 3)
    assert {epoch for _, epoch in leaders.values()} == {0}
    leader = leaders[0][0]
    at_leader = cluster.nodes[leader].bootstrap
    produce_ok(at_leader, topic, 0, records(5, epoch=0))
    for node_id, node in cluster.nodes.items():
        if node_id == leader:
            for version in (2, 3, 4):
                assert end_of(node.bootstrap, topic, 0, 0, current=0, version=version) == (NONE, 0, 5)
            assert end_of(node.bootstrap, topic, 0, 0, replica_id=-2) == (NONE, 0, 5)
            assert list_offsets(node.bootstrap, topic, 0, LATEST, current=0) == (NONE, 5, -1, 0)
            continue
        # Consumers (v2 has no replica_id: a consumer), followers and, with RF=1, even a
        # debugging tool: this node hosts no replica of the partition.
        for kw in ({"version": 2}, {"version": 4, "replica_id": -1}, {"version": 4, "replica_id": leader},
                   {"version": 4, "replica_id": -2}):
            assert end_of(node.bootstrap, topic, 0, 0, current=0, **kw) == \
                (ErrorCode.not_leader_or_follower, -1, -1), (node_id, kw)
        assert list_offsets(node.bootstrap, topic, 0, LATEST)[0] == ErrorCode.not_leader_or_follower
        answers = offsets_for_epochs(node.bootstrap, {topic: [(3, 0, -1)], unique("nope"): [(0, 0, -1)]})
        assert {e for e, _, _ in answers.values()} == {ErrorCode.unknown_topic_or_partition}


def test_a_leader_restart_moves_the_epoch(cluster: KRaftCluster) -> None:
    topic = unique("ofle-kraft-epoch")
    create_topic(cluster.nodes[1].bootstrap, topic, partitions=1)
    leader, epoch = cluster.wait_leaders(topic, 1)[0]
    assert epoch == 0
    produce_ok(cluster.nodes[leader].bootstrap, topic, 0, records(5, epoch=0))
    others = [i for i in cluster.nodes if i != leader]

    # A clean stop is a controlled shutdown: the partition loses its leader (epoch + 1) and
    # gets it back on the restart (epoch + 1 again).
    cluster.nodes[leader].stop()
    wait_until(lambda: cluster.partitions(others[0], topic).get(0, (0, 0))[0] == -1, timeout=20,
               message="the partition without a leader")
    cluster.nodes[leader].start()
    cluster.wait_registered()
    now, epoch = cluster.wait_leaders(topic, 1)[0]
    assert now == leader and epoch >= 2
    at_leader = cluster.nodes[leader].bootstrap

    assert end_of(at_leader, topic, 0, epoch, current=epoch) == (NONE, epoch, 5)
    assert end_of(at_leader, topic, 0, 0, current=epoch) == (NONE, 0, 5)  # epoch 0 wrote 0..4
    assert end_of(at_leader, topic, 0, epoch + 1, current=epoch) == (NONE, -1, -1)
    assert end_of(at_leader, topic, 0, 0, current=0) == (ErrorCode.fenced_leader_epoch, -1, -1)
    assert end_of(at_leader, topic, 0, 0, current=epoch + 1) == (ErrorCode.unknown_leader_epoch, -1, -1)
    assert list_offsets(at_leader, topic, 0, LATEST, current=epoch) == (NONE, 5, -1, epoch)
    assert list_offsets(at_leader, topic, 0, LATEST, current=0)[0] == ErrorCode.fenced_leader_epoch
    for node_id in others:  # the others still send clients to the leader, at the new epoch
        assert cluster.partitions(node_id, topic) == {0: (leader, epoch)}
        assert end_of(cluster.nodes[node_id].bootstrap, topic, 0, 0, current=epoch)[0] == \
            ErrorCode.not_leader_or_follower
