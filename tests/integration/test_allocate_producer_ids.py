"""AllocateProducerIds (KIP-730) in a real 3-node KRaft cluster (combined mode): brokers take
producer ids from blocks of 1000 that the active controller records in the metadata log, so two
brokers never hand out the same id, and ids keep growing after brokers -- and the whole
cluster, controllers included -- restart. Over the wire: only the active controller answers
AllocateProducerIds, with Kafka's code (STALE_BROKER_EPOCH) for a stale epoch or an unknown broker."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import confluent_kafka
import pytest
from kio.schema.allocate_producer_ids.v0.request import AllocateProducerIdsRequest
from kio.schema.api_versions.v3.request import ApiVersionsRequest
from kio.schema.describe_producers.v0.request import DescribeProducersRequest, TopicRequest
from kio.schema.errors import ErrorCode
from kio.schema.find_coordinator.v4.request import FindCoordinatorRequest
from kio.schema.init_producer_id.v4.request import InitProducerIdRequest
from kio.schema.types import BrokerId, TopicName
from kio.static.primitive import i8, i32, i64

from tests.conftest import wait_until
from tests.integration.kraft_cluster import KRaftCluster, kraft_cluster
from tests.integration.support import create_topic, metadata_req
from tests.rawclient import RawClient

BLOCK = 1000
NODES = (1, 2, 3)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KRaftCluster]:
    with kraft_cluster(tmp_path_factory.mktemp("pids"), len(NODES)) as c:
        yield c


def node_address(cluster: KRaftCluster, node: int) -> str:
    return cluster.nodes[node].bootstrap


def controller_port(cluster: KRaftCluster, node: int) -> int:
    listeners = cluster.nodes[node].overrides["listeners"]
    return int(next(x for x in listeners.split(",") if x.startswith("CONTROLLER://")).rsplit(":", 1)[1])


def logs(cluster: KRaftCluster) -> str:
    return "\n".join(f"--- node {i}\n{n.logs()[-4000:]}" for i, n in cluster.nodes.items())


def init_pid(address: str, transactional_id: str | None = None) -> tuple[ErrorCode, int]:
    with RawClient(address) as c:
        r = c.request(InitProducerIdRequest(
            transactional_id=transactional_id, transaction_timeout=datetime.timedelta(seconds=60),
            producer_id=i64(-1), producer_epoch=-1))
    return ErrorCode(r.error_code), int(r.producer_id)


def new_pids(address: str, n: int) -> list[int]:
    """`n` idempotent-producer ids from the broker at `address`. Until the broker has its first
    block from the controller it answers the retriable COORDINATOR_LOAD_IN_PROGRESS."""
    out: list[int] = []
    while len(out) < n:
        def answered() -> tuple[int] | None:  # a tuple: producer id 0 is an answer too
            error, pid = init_pid(address)
            assert error in (ErrorCode.none, ErrorCode.coordinator_load_in_progress), error
            return (pid,) if error == ErrorCode.none else None

        out += wait_until(answered, timeout=30, interval=0.05, message=f"a producer id from {address}")
    return out


def blocks(pids: list[int]) -> set[int]:
    return {p // BLOCK for p in pids}


def allocate(cport: int, broker_id: int, broker_epoch: int) -> ErrorCode:
    with RawClient(f"127.0.0.1:{cport}") as c:
        r = c.request(AllocateProducerIdsRequest(broker_id=BrokerId(broker_id), broker_epoch=i64(broker_epoch)))
    return ErrorCode(r.error_code)


def test_active_controller_alone_answers_allocate_producer_ids(cluster: KRaftCluster) -> None:
    for i in NODES:
        with RawClient(node_address(cluster, i)) as c:
            keys = {int(k.api_key): (int(k.min_version), int(k.max_version))
                    for k in c.request(ApiVersionsRequest(client_software_name="t", client_software_version="1")).api_keys}
        assert keys[67] == (0, 0)  # every node here is a voter
    # a made-up epoch: the active controller refuses it; the other voters are not the controller
    def one_controller() -> dict[int, ErrorCode] | None:
        answers = {i: allocate(controller_port(cluster, i), 1, 10**12) for i in NODES}
        return answers if list(answers.values()).count(ErrorCode.not_controller) == 2 else None

    answers = wait_until(one_controller, timeout=20, message="one active controller") or {}
    assert sorted(answers.values()) == sorted([ErrorCode.not_controller] * 2 + [ErrorCode.stale_broker_epoch])
    leader = next(i for i, e in answers.items() if e != ErrorCode.not_controller)
    assert allocate(controller_port(cluster, leader), 99, 1) == ErrorCode.stale_broker_epoch  # unknown broker: Kafka's code too


def coordinators(cluster: KRaftCluster, transactional_ids: list[str]) -> dict[str, int] | None:
    """transactional id -> coordinator node id, if every node names the same one for each."""
    views: list[dict[str, int]] = []
    for i in NODES:
        with RawClient(node_address(cluster, i)) as c:
            r = c.request(FindCoordinatorRequest(key_type=i8(1), coordinator_keys=tuple(transactional_ids)))
        if any(x.error_code != ErrorCode.none for x in r.coordinators):
            return None
        views.append({x.key: int(x.node_id) for x in r.coordinators})
    return views[0] if all(v == views[0] for v in views) else None


def test_transactional_producers_get_ids_from_their_coordinators_blocks(cluster: KRaftCluster) -> None:
    """Runs before the restarts: leaderships are settled. A transactional producer's id comes
    from its coordinator's current block, the very next id that broker hands out follows it."""
    topic = "txn-pids"
    create_topic(node_address(cluster, 1), topic)
    tids = [f"pid-test-{k}" for k in range(40)]
    where = wait_until(lambda: coordinators(cluster, tids), timeout=30, interval=0.2, message="stable coordinators") or {}
    picked: dict[int, str] = {}
    for tid in tids:
        picked.setdefault(where[tid], tid)
    assert len(picked) >= 2, where
    got: dict[int, int] = {}
    for coordinator, tid in sorted(picked.items())[:2]:
        p = confluent_kafka.Producer({"bootstrap.servers": cluster.bootstrap, "transactional.id": tid})
        p.init_transactions(30)
        p.begin_transaction()
        p.produce(topic, value=tid.encode(), partition=0)
        p.commit_transaction(30)
        pid = producer_ids_on(cluster, topic) - set(got.values())
        assert len(pid) == 1, pid
        got[coordinator] = pid.pop()
        assert new_pids(node_address(cluster, coordinator), 1) == [got[coordinator] + 1]  # same block, next id
    first, second = got.values()
    assert first // BLOCK != second // BLOCK, got  # two brokers, two blocks of the controller's


def producer_ids_on(cluster: KRaftCluster, topic: str) -> set[int]:
    """The producer ids DescribeProducers lists for partition 0 of `topic` (asked of its leader)."""
    def leader() -> tuple[int] | None:
        with RawClient(node_address(cluster, 1)) as c:
            t = c.request(metadata_req(topic, allow_create=False)).topics[0]
        return (int(t.partitions[0].leader_id),) if t.partitions and t.partitions[0].leader_id >= 0 else None

    (node,) = wait_until(leader, timeout=15, message=f"a leader of {topic}")
    with RawClient(node_address(cluster, node)) as c:
        r = c.request(DescribeProducersRequest(topics=(TopicRequest(name=TopicName(topic), partition_indexes=(i32(0),)),)))
    part = r.topics[0].partitions[0]
    assert part.error_code == ErrorCode.none, part
    return {int(s.producer_id) for s in part.active_producers}


def test_brokers_hand_out_disjoint_ids_from_controller_blocks_also_after_restarts(cluster: KRaftCluster) -> None:
    one, two = new_pids(node_address(cluster, 1), 30), new_pids(node_address(cluster, 2), 30)
    assert len(set(one)) == 30 and len(set(two)) == 30
    assert blocks(one).isdisjoint(blocks(two))  # each broker has its own block of the controller's
    assert all(b - a == 1 for a, b in zip(one, one[1:], strict=False))  # consecutive inside a block
    seen = one + two

    # a rolling restart: each broker gets a new block past every id handed out so far
    for i in (1, 2):
        cluster.nodes[i].restart()
        cluster.wait_registered()
        again = new_pids(node_address(cluster, i), 5)
        assert min(again) > max(seen) and again[0] % BLOCK == 0, (again, max(seen))
        seen += again

    # the whole cluster, controllers included: the metadata log remembers the blocks
    cluster.stop()
    cluster.start()
    after = {i: new_pids(node_address(cluster, i), 5) for i in (1, 2)}
    assert min(after[1] + after[2]) > max(seen)
    assert blocks(after[1]).isdisjoint(blocks(after[2]))
    seen += after[1] + after[2]
    assert len(seen) == len(set(seen))
    assert "Traceback" not in logs(cluster), logs(cluster)
