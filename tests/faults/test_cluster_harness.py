"""The ReplicatedCluster harness against today's suoi (replication factor 1): the proxies sit on
every peer link, a cut-off node is fenced by the controller while clients still reach it, and
healing brings it back; SIGKILL/SIGSTOP/restart and an isolated controller too."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import confluent_kafka
import pytest

from suoi.config import read_properties
from tests.conftest import taken_port
from tests.faults.cluster import REPLICATION, ReplicatedCluster, node_of_client_id, wait_until
from tests.faults.proxy import kafka_client_id

#: broker.session.timeout.ms in the harness.
SESSION_S = 3.0
#: The session timeout plus heartbeats, Raft commit and polling.
FENCE_S = 10.0
#: How long nodes may take to list each other again after a controller failover.
CONTROLLER_STALL_S = 25.0

pytestmark = pytest.mark.slow


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def produce(bootstrap: str, topic: str, partitions: list[int], tag: str, timeout: float = 20.0) -> dict[int, int]:
    """One acks=all record per partition through confluent-kafka; partition -> offset."""
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0,
                                         "message.timeout.ms": int(timeout * 1000)})
    out: dict[int, int] = {}
    errors: list[object] = []

    def on_delivery(err: object, msg: confluent_kafka.Message) -> None:
        if err is not None:
            errors.append(err)
        else:
            out[msg.partition()] = msg.offset()  # type: ignore[index,assignment]

    for p in partitions:
        producer.produce(topic, value=f"{tag}-{p}".encode(), partition=p, on_delivery=on_delivery)
    assert producer.flush(timeout + 5) == 0, "records left undelivered"
    assert not errors, errors
    return out


def test_first_start_picks_new_ports_when_one_was_taken(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Another process binding a picked port before the node does (another test worker's node)
    costs a retry on fresh ports, not the test."""
    cluster = ReplicatedCluster(tmp_path, 1)
    taken = cluster.nodes[1].replication_port
    with taken_port(taken):
        try:
            cluster.start()
            node = cluster.nodes[1]
            assert node.replication_port != taken and node.running
            assert cluster.brokers_seen_by(1) == {1}
            assert read_properties(node.config_path)["listeners"].count(f":{node.replication_port},") == 1
            assert "address already in use" in node.log_path.read_text().lower()  # the first launch's refusal
            assert [r.levelname for r in caplog.records if "was taken" in r.getMessage()] == ["WARNING"]
        finally:
            cluster.close()


def test_node_of_client_id() -> None:
    def frame(cid: str) -> bytes:
        body = b"\x00\x01\x00\x0c\x00\x00\x00\x07" + len(cid).to_bytes(2, "big") + cid.encode()
        return len(body).to_bytes(4, "big") + body

    assert kafka_client_id(frame("suoi-replica-2")) == "suoi-replica-2"
    assert node_of_client_id(frame("suoi-replica-2")) == "2"
    assert node_of_client_id(frame("suoi-node-13")) == "13"
    assert node_of_client_id(frame("rdkafka")) == ""
    assert node_of_client_id(frame("suoi-node-2")[:10]) is None


def test_layout_and_isolating_a_node_fences_it_until_healed(cluster: ReplicatedCluster) -> None:
    # every peer address in a node's config is a proxy route; clients get the CLIENT listener
    for i in cluster.ids:
        props = read_properties(cluster.nodes[i].config_path)
        assert props["inter.broker.listener.name"] == REPLICATION
        assert f"{REPLICATION}://{cluster.replication_routes[i].address}" in props["advertised.listeners"]
        voters = dict(v.split("@") for v in props["controller.quorum.voters"].split(","))
        assert voters == {str(j): (cluster.nodes[j].controller_address if j == i
                                   else cluster.controller_routes[(i, j)].address) for j in cluster.ids}
    metadata = cluster.admin().list_topics(timeout=10)
    assert {b.id: f"{b.host}:{b.port}" for b in metadata.brokers.values()} == {
        i: cluster.client_address(i) for i in cluster.ids}

    # Raft and heartbeats run through every controller route (each node talks to the leader)
    controller = cluster.wait_controller()
    for (src, dst), route in cluster.controller_routes.items():
        if dst == controller:
            assert route.stats().bytes_up > 0, f"no traffic {src}->{dst}"

    topic = unique("iso")
    states = cluster.create_topic(topic, assignment=[[1], [2], [3]])
    assert {p: s.leader for p, s in states.items()} == {0: 1, 1: 2, 2: 3}
    assert all(s.replicas == s.isr == (p + 1,) for p, s in states.items())
    assert produce(cluster.bootstrap, topic, [0, 1, 2], "before") == {0: 0, 1: 0, 2: 0}

    victim = next(i for i in cluster.ids if i != controller)
    others = [i for i in cluster.ids if i != victim]
    cut_at = time.monotonic()
    cluster.isolate(victim)
    assert all(cluster.controller_routes[(victim, o)].mode == "drop" for o in others)
    assert all(cluster.controller_routes[(o, victim)].mode == "drop" for o in others)
    assert all(cluster.replication_routes[o].blocked_sources() == {str(victim): "drop"} for o in others)
    assert cluster.replication_routes[victim].blocked_sources() == {str(o): "drop" for o in others}

    cluster.wait_fenced(victim, timeout=FENCE_S)
    fenced_after = time.monotonic() - cut_at
    assert fenced_after >= 2.0, f"fenced after {fenced_after:.1f}s: before the 3 s session timeout ran out?"
    assert cluster.controller_id() == controller  # the majority keeps its controller
    for o in others:  # the victim's partition is offline for the others...
        assert cluster.describe(topic, via=o)[victim - 1].leader == -1
    assert cluster.brokers_seen_by(victim) is not None  # ...while clients still reach the victim itself
    # the others keep serving their own partitions
    live = [o - 1 for o in others]
    assert produce(cluster.bootstrap_of(others), topic, live, "during") == {p: 1 for p in live}

    cluster.heal()
    cluster.wait_listed(victim, timeout=FENCE_S)
    cluster.wait_ready(timeout=FENCE_S)
    cluster.wait_leaders(topic, 3)
    assert produce(cluster.bootstrap, topic, [0, 1, 2], "after") == {p: 1 if p == victim - 1 else 2 for p in range(3)}


def test_kill_pause_and_restart(cluster: ReplicatedCluster) -> None:
    topic = unique("procs")
    cluster.create_topic(topic, assignment=[[1], [2], [3]])
    controller = cluster.wait_controller()
    victim = next(i for i in cluster.ids if i != controller)
    others = [i for i in cluster.ids if i != victim]

    old_pid = cluster.nodes[victim].pid
    cluster.kill(victim)
    assert not cluster.nodes[victim].running and cluster.nodes[victim].proc.returncode == -9  # type: ignore[union-attr]
    cluster.wait_fenced(victim, timeout=FENCE_S)
    cluster.start_node(victim)
    assert cluster.nodes[victim].pid != old_pid
    cluster.wait_leaders(topic, 3)
    assert produce(cluster.bootstrap, topic, [victim - 1], "after-kill") == {victim - 1: 0}

    cluster.pause(victim)  # SIGSTOP: connections stay open, nothing answers, heartbeats stop
    cluster.wait_fenced(victim, timeout=FENCE_S, seen_by=others)
    cluster.resume(victim)
    cluster.wait_listed(victim, timeout=FENCE_S)

    cluster.restart(victim)  # SIGTERM (controlled shutdown) and start again on the same data
    cluster.wait_leaders(topic, 3)
    assert produce(cluster.bootstrap, topic, [victim - 1], "after-restart") == {victim - 1: 1}


def test_isolated_controller_is_replaced_and_rejoins(cluster: ReplicatedCluster) -> None:
    old = cluster.wait_controller()
    old_epoch = cluster.quorum(old)[1]  # type: ignore[index]
    others = [i for i in cluster.ids if i != old]
    cluster.isolate(old)
    new = cluster.wait_controller(not_in=[old], timeout=FENCE_S)
    assert new in others
    # the new leader names itself at once; the other voter learns it from its BeginQuorumEpoch
    wait_until(lambda: all((q := cluster.quorum(o)) is not None and q[0] == new and q[1] > old_epoch
                           for o in others), FENCE_S, f"both survivors following node {new}", on_timeout=cluster.dump)
    cluster.wait_fenced(old, timeout=FENCE_S)
    for o in others:  # (the next test checks that they are never fenced meanwhile)
        cluster.wait_listed(o, timeout=CONTROLLER_STALL_S)
    topic = unique("majority")  # the majority side keeps working
    cluster.create_topic(topic, assignment=[[others[0]], [others[1]]])

    cluster.heal()
    cluster.wait_ready(timeout=CONTROLLER_STALL_S)
    assert cluster.wait_controller() == new  # the old leader rejoined as a follower
    cluster.wait_leaders(topic, 2)


def test_survivors_stay_unfenced_when_the_controller_is_cut_off(cluster: ReplicatedCluster) -> None:
    old = cluster.wait_controller()
    others = [i for i in cluster.ids if i != old]
    cluster.isolate(old)
    cluster.wait_controller(not_in=[old], timeout=FENCE_S)
    deadline = time.monotonic() + 2 * SESSION_S
    while time.monotonic() < deadline:
        for o in others:
            seen = cluster.brokers_seen_by(o)
            assert seen is not None and set(others) <= seen, f"node {o} lists {seen} after the failover"
        time.sleep(0.2)
