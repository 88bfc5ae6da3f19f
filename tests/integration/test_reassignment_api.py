"""ElectLeaders (43), AlterPartitionReassignments (45) and ListPartitionReassignments (46) over the
wire: a 3-node KRaft cluster of real broker processes (combined mode) and a single node (no process.roles).

Requests go to every node in turn, so the ones that are not the active controller forward
them. Topics are placed by hand (CreateTopics assignments). Everything is polled with
deadlines; nothing sleeps to synchronise.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from kio.schema.alter_partition_reassignments.v0.request import (
    AlterPartitionReassignmentsRequest,
    ReassignablePartition,
    ReassignableTopic,
)
from kio.schema.elect_leaders.v0.request import ElectLeadersRequest as ElectLeadersRequestV0
from kio.schema.elect_leaders.v0.request import TopicPartitions as TopicPartitionsV0
from kio.schema.elect_leaders.v2.request import ElectLeadersRequest, TopicPartitions
from kio.schema.errors import ErrorCode
from kio.schema.find_coordinator.v4.request import FindCoordinatorRequest
from kio.schema.list_partition_reassignments.v0.request import ListPartitionReassignmentsRequest
from kio.schema.offset_fetch.v8.request import OffsetFetchRequest, OffsetFetchRequestGroup
from kio.schema.types import BrokerId, TopicName
from kio.static.primitive import i8, i32

from suoi.coordinator.records import OFFSETS_TOPIC, partition_for
from suoi.protocol.records import decode_batch_records, iter_batches
from suoi.testing import EmbeddedBroker
from tests.conftest import wait_until
from tests.e2e.helpers import ck_consume, ck_produce
from tests.integration.reassign_cluster import (
    PREFERRED,
    UNCLEAN,
    Cluster,
    create,
    elect,
    election_codes,
    listed,
    node_down,
    reassign,
    running,
)
from tests.integration.support import api_versions_req, fetch_req, metadata_req
from tests.rawclient import RawClient


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running(tmp_path_factory.mktemp("reassign"), {"auto.leader.rebalance.enable": "false"}) as c:
        yield c


# ---------------------------------------------------------------------------- ElectLeaders


def test_elect_leaders_results_and_error_codes(cluster: Cluster) -> None:
    topic = create(cluster, [[1], [2], [3]])
    for node in (1, 2, 3):  # two of them forward to the active controller
        r = elect(cluster, node, PREFERRED, [(topic, 0), (topic, 2), (topic, 9), ("no-such-topic", 0)])
        assert r.error_code == ErrorCode.none
        assert election_codes(r) == {
            (topic, 0): ErrorCode.election_not_needed, (topic, 2): ErrorCode.election_not_needed,
            (topic, 9): ErrorCode.unknown_topic_or_partition, ("no-such-topic", 0): ErrorCode.unknown_topic_or_partition}
        r = elect(cluster, node, UNCLEAN, [(topic, 1)])
        assert election_codes(r) == {(topic, 1): ErrorCode.election_not_needed}
        # every partition: only those an election was tried for are listed, and none needs one
        assert elect(cluster, node, PREFERRED, None).replica_election_results == ()
        assert elect(cluster, node, UNCLEAN, None).replica_election_results == ()
    v0 = cluster.request(2, ElectLeadersRequestV0(topic_partitions=(
        TopicPartitionsV0(topic=TopicName(topic), partitions=(i32(1),)),)))
    assert [(p.partition_id, p.error_code) for r in v0.replica_election_results for p in r.partition_result] == [
        (1, ErrorCode.election_not_needed)]
    bad = elect(cluster, 3, 7, [(topic, 0)])
    assert bad.error_code == ErrorCode.invalid_request


def test_preferred_election_after_a_reorder(cluster: Cluster) -> None:
    topic = create(cluster, [[1, 2]])
    cluster.wait_partition(topic, ([1, 2], [1, 2], 1))
    # a reassignment that only reorders completes at once; the leader stays, the preferred one changes
    assert reassign(cluster, 3, [(topic, 0, [2, 1])]) == [(topic, 0, ErrorCode.none, None)]
    cluster.wait_partition(topic, ([2, 1], None, 1))
    assert listed(cluster, 1) == {}
    r = elect(cluster, 3, PREFERRED, [(topic, 0)])
    assert election_codes(r) == {(topic, 0): ErrorCode.none}
    cluster.wait_partition(topic, ([2, 1], None, 2))
    assert election_codes(elect(cluster, 1, PREFERRED, [(topic, 0)])) == {(topic, 0): ErrorCode.election_not_needed}


def test_a_leader_that_wrote_nothing_in_its_epoch_follows_again(cluster: Cluster) -> None:
    """Node 2 leads epoch 1 and writes nothing in it; node 3, which therefore never saw epoch 1,
    leads next. Node 2's truncation point is its own log end, and epoch 1 must leave its epoch
    cache even so: it used to stay, so every Fetch named it as the last fetched epoch, node 3
    answered with a diverging epoch ending at that same log end, and node 2 never fetched a
    record again (silently; the nemesis test's follower that never rejoined the ISR)."""
    topic = create(cluster, [[1, 2, 3]])
    cluster.wait_partition(topic, ([1, 2, 3], [1, 2, 3], 1))
    ck_produce(cluster.bootstrap, topic, [{"value": b"epoch 0"}] * 5)  # acks=all: on every replica
    for order in ([2, 1, 3], [3, 2, 1]):  # leader 2 (nothing written), then 3
        assert reassign(cluster, 1, [(topic, 0, order)]) == [(topic, 0, ErrorCode.none, None)]
        cluster.wait_partition(topic, (order, None, 1 if order[0] == 2 else 2))
        assert election_codes(elect(cluster, 1, PREFERRED, [(topic, 0)])) == {(topic, 0): ErrorCode.none}
        cluster.wait_partition(topic, (order, None, order[0]))
    ck_produce(cluster.bootstrap, topic, [{"value": b"epoch 2"}] * 5, {"acks": 1})

    def node2_copy() -> list[bytes]:  # node 2's own replica (a consumer Fetch v11+ reads a follower's copy)
        with RawClient(cluster.nodes[2].bootstrap) as c:
            p = c.request(fetch_req(topic, 0, 0)).responses[0].partitions[0]
        assert p.error_code == ErrorCode.none
        data = p.records or b""
        return [r.value for pos, h in iter_batches(data) for r in decode_batch_records(data, pos, h)]

    wait_until(lambda: len(node2_copy()) == 10, timeout=15, message="node 2 fetched epoch 2's records from node 3")
    assert node2_copy() == [b"epoch 0"] * 5 + [b"epoch 2"] * 5
    cluster.wait_partition(topic, ([3, 2, 1], [1, 2, 3], 3))


# ---------------------------------------------------------------------------- reassignments


@pytest.mark.parametrize(("target", "code", "message"), [
    ([], ErrorCode.invalid_replica_assignment, "The manual partition assignment includes an empty replica list."),
    ([2, 2], ErrorCode.invalid_replica_assignment,
     "The manual partition assignment includes the broker 2 more than once."),
    ([2, 99], ErrorCode.invalid_replica_assignment,
     "The manual partition assignment includes broker 99, but no such broker is registered."),
    (None, ErrorCode.no_reassignment_in_progress, "No partition reassignment is in progress."),
])
def test_reassignment_errors(cluster: Cluster, target: list[int] | None, code: ErrorCode, message: str) -> None:
    topic = create(cluster, [[1]])
    for node in (1, 2, 3):
        assert reassign(cluster, node, [(topic, 0, target), (topic, 5, [1]), ("no-such-topic", 0, [1])]) == [
            (topic, 0, code, message),
            (topic, 5, ErrorCode.unknown_topic_or_partition, f"Unable to find partition {topic}:5."),
            ("no-such-topic", 0, ErrorCode.unknown_topic_or_partition, "Unable to find a topic named no-such-topic."),
        ]
    assert cluster.partition(1, topic) == ([1], [1], 1)
    assert reassign(cluster, 2, [(topic, 0, [1])]) == [(topic, 0, ErrorCode.none, None)]  # the same replicas: no-op
    assert listed(cluster, 2) == {}


def test_pending_reassignment_is_listed_described_and_cancelled(cluster: Cluster) -> None:
    topic = create(cluster, [[1], [2]])
    with node_down(cluster, 3):  # its replica cannot catch up while it is away: the reassignment stays pending
        assert reassign(cluster, 1, [(topic, 0, [3])]) == [(topic, 0, ErrorCode.none, None)]
        pending = {(topic, 0): ([3, 1], [3], [1])}
        for node in (1, 2):  # answered by the active controller, whichever node is asked
            assert listed(cluster, node) == pending
            assert listed(cluster, node, [(topic, 0), (topic, 1), (topic, 7), ("no-such-topic", 0)]) == pending
            assert listed(cluster, node, [(topic, 1)]) == {}
        cluster.wait_partition(topic, ([3, 1], [1], 1), nodes=(1, 2))  # describe: target first, then the removing
        assert election_codes(elect(cluster, 2, PREFERRED, [(topic, 0)])) == {
            (topic, 0): ErrorCode.preferred_leader_not_available}
        assert reassign(cluster, 2, [(topic, 0, None)]) == [(topic, 0, ErrorCode.none, None)]
        cluster.wait_partition(topic, ([1], [1], 1), nodes=(1, 2))
        assert listed(cluster, 1) == {}
        assert reassign(cluster, 1, [(topic, 0, None)])[0][2] == ErrorCode.no_reassignment_in_progress


def test_reassignment_moves_the_data(cluster: Cluster) -> None:
    # Needs real data movement (the new replica fetches from the leader and joins the ISR, then
    # the controller completes the reassignment): extend here as replication grows (throttles,
    # larger logs, a leader that is itself moved while producers run).
    topic = create(cluster, [[1]])
    values = [f"v{i}".encode() for i in range(50)]
    ck_produce(cluster.bootstrap, topic, [{"value": v} for v in values])
    assert reassign(cluster, 2, [(topic, 0, [2, 3])]) == [(topic, 0, ErrorCode.none, None)]
    wait_until(lambda: listed(cluster, 1) == {}, timeout=30, message="reassignment completed")
    cluster.wait_partition(topic, ([2, 3], [2, 3], 2))
    assert [r.value for r in ck_consume(cluster.bootstrap, topic, [0], len(values))] == values
    wait_until(lambda: not (cluster.nodes[1].log_dirs[0] / f"{topic}-0").exists(), timeout=10,
               message="the removed replica deleted on broker 1")


def test_a_node_resigning_many_coordinator_partitions_logs_one_line(cluster: Cluster) -> None:
    """A leadership change that takes many __consumer_offsets partitions from a node at once (a
    preferred election here; a broker's controlled shutdown alike) is one INFO line there with
    the count, not one per partition (those are DEBUG); its group coordinator lets them go."""
    assert cluster.request(1, FindCoordinatorRequest(key_type=i8(0), coordinator_keys=("g",))).coordinators
    wait_until(lambda: cluster.partition(1, OFFSETS_TOPIC) is not None, message="the offsets topic created")
    offsets = cluster.request(1, metadata_req(OFFSETS_TOPIC, allow_create=False)).topics[0]
    led = {int(p.partition_index): [int(b) for b in p.replica_nodes] for p in offsets.partitions if p.leader_id == 2}
    assert len(led) >= 5 and all(len(replicas) == 3 for replicas in led.values())
    groups = {partition_for(f"g{i}", len(offsets.partitions)): f"g{i}" for i in range(5000)}

    def coordinator_errors() -> set[ErrorCode]:
        answer = cluster.request(2, OffsetFetchRequest(groups=tuple(
            OffsetFetchRequestGroup(group_id=groups[p], topics=None) for p in led), require_stable=False))
        return {g.error_code for g in answer.groups}

    wait_until(lambda: coordinator_errors() == {ErrorCode.none}, message="node 2 coordinates its partitions")
    mark = len(cluster.nodes[2].logs())
    moved = [(OFFSETS_TOPIC, p, [b for b in replicas if b != 2] + [2]) for p, replicas in led.items()]
    assert {code for _, _, code, _ in reassign(cluster, 3, moved)} == {ErrorCode.none}
    wait_until(lambda: all(cluster.partition(1, OFFSETS_TOPIC, p)[0][-1] == 2 for p in led), message="reordered")
    assert set(election_codes(elect(cluster, 3, PREFERRED, [(OFFSETS_TOPIC, p) for p in led])).values()) == {
        ErrorCode.none}
    wait_until(lambda: coordinator_errors() == {ErrorCode.not_coordinator}, message="node 2 resigned them")
    wait_until(lambda: "resigned" in cluster.nodes[2].logs()[mark:], timeout=5, message="the resignation logged")
    lines = [line for line in cluster.nodes[2].logs()[mark:].splitlines() if "resigned" in line]
    assert len(lines) == 1, lines
    assert f"{OFFSETS_TOPIC}: resigned {len(led)} partitions ({', '.join(map(str, sorted(led)))})" in lines[0]


# ---------------------------------------------------------------------------- auto leader rebalance


def test_auto_leader_rebalance(tmp_path: Path) -> None:
    with running(tmp_path, {"leader.imbalance.check.interval.seconds": "1"}) as c:
        topic = create(c, [[1, 2]])
        c.wait_partition(topic, ([1, 2], [1, 2], 1))
        assert reassign(c, 1, [(topic, 0, [2, 1])]) == [(topic, 0, ErrorCode.none, None)]
        # broker 2 is now the preferred leader of its only partition and does not lead it (100% > 10%):
        # the next check, at most a second away, elects it without any ElectLeaders request
        c.wait_partition(topic, ([2, 1], None, 2), timeout=10)


# ---------------------------------------------------------------------------- a single node


def test_a_single_node_answers_as_a_one_broker_cluster(make_broker: Any) -> None:
    broker: EmbeddedBroker = make_broker()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("solo", 2, 1)])["solo"].result(timeout=10)
    with RawClient(broker.bootstrap) as c:
        versions = {int(k.api_key): (int(k.min_version), int(k.max_version))
                    for k in c.request(api_versions_req()).api_keys}
        assert (versions[43], versions[45], versions[46]) == ((0, 2), (0, 0), (0, 0))
        r = c.request(ElectLeadersRequest(election_type=i8(PREFERRED), topic_partitions=(
            TopicPartitions(topic=TopicName("solo"), partitions=(i32(0), i32(1))),
            TopicPartitions(topic=TopicName("nope"), partitions=(i32(0),)))))
        assert election_codes(r) == {("solo", 0): ErrorCode.election_not_needed,
                                     ("solo", 1): ErrorCode.election_not_needed,
                                     ("nope", 0): ErrorCode.unknown_topic_or_partition}
        assert c.request(ElectLeadersRequest(election_type=i8(UNCLEAN), topic_partitions=None)).replica_election_results == ()
        r = c.request(AlterPartitionReassignmentsRequest(topics=(ReassignableTopic(name=TopicName("solo"), partitions=(
            ReassignablePartition(partition_index=i32(0), replicas=(BrokerId(1),)),
            ReassignablePartition(partition_index=i32(1), replicas=(BrokerId(2),)),
            ReassignablePartition(partition_index=i32(1), replicas=None))),)))
        assert [(p.partition_index, p.error_code, p.error_message) for p in r.responses[0].partitions] == [
            (0, ErrorCode.none, None),
            (1, ErrorCode.invalid_replica_assignment,
             "The manual partition assignment includes broker 2, but no such broker is registered."),
            (1, ErrorCode.no_reassignment_in_progress, "No partition reassignment is in progress.")]
        assert c.request(ListPartitionReassignmentsRequest(topics=None)).topics == ()
    assert "Traceback" not in broker.logs()
