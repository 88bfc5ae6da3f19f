"""A 3-broker KRaft cluster started with `suoi cluster up` (combined mode: every node is a broker
and a Raft voter), driven by real clients (confluent-kafka, kafka-python) and by the CLI itself.

One cluster per module (starting it takes seconds); tests use their own topics. The fault tests
kill -9 nodes and bring them back with `suoi cluster start-node`, leaving all 3 running again.
Everything is polled with deadlines (wait_until); nothing sleeps to synchronise.
"""

from __future__ import annotations

import json
import os
import re
import signal
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import confluent_kafka
import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaProducer
from kio.schema.errors import ErrorCode

from suoi.cli.cluster import pid_running
from suoi.protocol.records import build_batch
from tests.conftest import wait_until
from tests.e2e.admin_scrape import get, scrape, value
from tests.e2e.cli import ok, suoi
from tests.e2e.helpers import ck_consume, ck_produce, kp_consume
from tests.integration.support import metadata_req
from tests.integration.support import produce as raw_produce
from tests.rawclient import RawClient

#: A new leader must be elected within this many seconds of killing the active controller.
FAILOVER_S = 10.0
#: `suoi cluster up` / `start-node` bound.
START_S = 60.0


@dataclass
class LocalCluster:
    dir: Path
    bootstrap: str

    def state(self) -> dict[str, Any]:
        return json.loads((self.dir / "cluster.json").read_text())

    def status(self) -> dict[str, Any]:
        return json.loads(ok("cluster", "status", "--dir", str(self.dir), "--output", "json", timeout=30))

    def address(self, node_id: int) -> str:
        return next(n["address"] for n in self.state()["nodes"] if n["id"] == node_id)

    def addresses(self) -> dict[int, str]:
        return {n["id"]: n["address"] for n in self.state()["nodes"] if n["address"]}

    def live_bootstrap(self) -> str:
        state = self.state()
        return ",".join(n["address"] for n in state["nodes"]
                        if n["address"] and pid_running(n["pid"], Path(n["config"])))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    directory = tmp_path_factory.mktemp("cluster") / "c"
    proc = suoi("cluster", "up", "--brokers", "3", "--dir", str(directory), "--wait", str(START_S),
                timeout=START_S + 30)
    try:
        assert proc.returncode == 0, f"cluster up failed: {proc.stderr}\n{_logs(directory)}"
        yield LocalCluster(directory, proc.stdout.strip())
    finally:
        if (directory / "cluster.json").exists():
            state = json.loads((directory / "cluster.json").read_text())
            down = suoi("cluster", "down", "--dir", str(directory), timeout=90)
            for n in state["nodes"]:  # never leave a process behind, whatever happened above
                if pid_running(n["pid"], Path(n["config"])):
                    os.kill(n["pid"], signal.SIGKILL)
            assert down.returncode == 0, down.stderr


def _logs(directory: Path, tail: int = 30) -> str:
    out = []
    for log in sorted(directory.glob("node-*/broker.log")):
        lines = log.read_text(errors="replace").splitlines()[-tail:]
        out.append(f"--- {log}\n" + "\n".join(lines))
    return "\n".join(out)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    a = admin(bootstrap)  # keep the client alive until the future resolves
    fut = a.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)],
                                         operation_timeout=15)[name]
    fut.result(timeout=20)


def leaders(address: str, topic: str) -> dict[int, int]:
    """partition -> leader id (-1 = none) in the Metadata answer of the broker at `address` itself
    (a client library may send its request to any broker it knows; brokers' views converge
    independently)."""
    with RawClient(address) as c:
        t = c.request(metadata_req(topic, allow_create=False)).topics[0]
    if t.error_code != ErrorCode.none:
        return {}
    return {int(p.partition_index): int(p.leader_id) for p in t.partitions}


def broker_ids(bootstrap: str) -> set[int]:
    return set(admin(bootstrap).list_topics(timeout=10).brokers)


def all_led(bootstrap: str, topic: str, partitions: int) -> dict[int, int] | None:
    got = leaders(bootstrap, topic)
    return got if len(got) == partitions and all(v >= 0 for v in got.values()) else None


# ---------------------------------------------------------------------------- tests


def test_up_prints_bootstrap_and_status_shows_the_quorum(cluster: LocalCluster) -> None:
    addresses = cluster.bootstrap.split(",")
    assert len(addresses) == 3 and all(a.startswith("127.0.0.1:") for a in addresses)
    state = cluster.state()
    assert state["bootstrap"] == cluster.bootstrap
    assert [(n["id"], n["roles"]) for n in state["nodes"]] == [(i, ["broker", "controller"]) for i in (1, 2, 3)]
    for n in state["nodes"]:
        props = Path(n["config"]).read_text()
        assert f"cluster.id={state['cluster_id']}" in props and f"node.id={n['id']}" in props

    status = wait_until(lambda: (s := cluster.status())["quorum"]["leader_id"] is not None and s,
                        timeout=15, message="a quorum leader in cluster status")
    assert [(n["id"], n["alive"], n["in_metadata"]) for n in status["nodes"]] == [(1, True, True), (2, True, True),
                                                                                  (3, True, True)]
    quorum = status["quorum"]
    assert quorum["leader_id"] in (1, 2, 3) and quorum["leader_epoch"] >= 1 and quorum["high_watermark"] >= 1
    assert sorted(v["id"] for v in quorum["voters"]) == [1, 2, 3]
    text = ok("cluster", "status", "--dir", str(cluster.dir))
    assert "Quorum: leader" in text, text
    for i in (1, 2, 3):
        assert re.search(rf"^{i}\s+broker,controller\s.*\salive\s+listed$", text, re.M), text


def test_every_node_serves_its_admin_endpoint_and_prometheus_yml_lists_them(cluster: LocalCluster) -> None:
    urls = [n["admin_url"] for n in cluster.state()["nodes"]]
    assert len(set(urls)) == 3 and all(u.startswith("http://127.0.0.1:") for u in urls)
    targets = [u.removeprefix("http://") for u in urls]
    assert f"- targets: [{', '.join(map(json.dumps, targets))}]" in (cluster.dir / "prometheus.yml").read_text()
    for url in urls:
        wait_until(lambda url=url: get(f"{url}/v1/status/ready")[0] == 200, timeout=15, message=f"{url} ready")
    actives = [value(scrape(url), "kafka_controller_kafkacontroller_activecontrollercount") for url in urls]
    assert sorted(actives) == [0, 0, 1]  # exactly one active controller


def test_six_partitions_spread_and_every_broker_serves_clients(cluster: LocalCluster) -> None:
    topic = unique("spread")
    nodes = cluster.addresses()
    create_topic(nodes[1], topic, 6)
    # every broker learns the topic from the metadata log, with the same leaders
    views = {i: wait_until(lambda a=a: all_led(a, topic, 6), timeout=15, message=f"6 led partitions via {a}")
             for i, a in nodes.items()}
    assert views[1] == views[2] == views[3]
    assert Counter(views[1].values()) == {1: 2, 2: 2, 3: 2}, views[1]
    expected_leads = {i: sorted(p for p, b in views[1].items() if b == i) for i in nodes}
    wait_until(lambda: {n["id"]: sorted(n["leader_of"].get(topic, [])) for n in cluster.status()["nodes"]}
               == expected_leads, timeout=10, message=f"cluster status to show leaders {expected_leads}")

    # produce through each broker as bootstrap: confluent-kafka (explicit partitions) and kafka-python
    expected: dict[int, list[bytes]] = {p: [] for p in range(6)}
    for i, address in nodes.items():
        records = [{"value": f"ck-{i}-{p}".encode(), "partition": p} for p in range(6)]
        delivered = ck_produce(address, topic, records)
        assert sorted(p for p, _ in delivered) == list(range(6))
        for p in range(6):
            expected[p].append(f"ck-{i}-{p}".encode())
        kp = KafkaProducer(bootstrap_servers=address)
        try:
            for p in range(6):
                kp.send(topic, value=f"kp-{i}-{p}".encode(), partition=p).get(timeout=15)
                expected[p].append(f"kp-{i}-{p}".encode())
        finally:
            kp.close(timeout=10)

    # consume everything through each broker as bootstrap, with both clients
    total = sum(len(v) for v in expected.values())
    for address in nodes.values():
        for consume in (ck_consume, kp_consume):
            got = consume(address, topic, list(range(6)), total, timeout=20)
            by_partition: dict[int, list[bytes]] = {p: [] for p in range(6)}
            for r in sorted(got, key=lambda r: (r.partition, r.offset)):
                by_partition[r.partition].append(r.value or b"")
            assert by_partition == expected, f"{consume.__name__} via {address}"


def test_non_leader_answers_not_leader_or_follower(cluster: LocalCluster) -> None:
    topic = unique("notleader")
    nodes = cluster.addresses()
    create_topic(nodes[1], topic, 3)
    led = {i: wait_until(lambda a=a: all_led(a, topic, 3), timeout=15, message=f"leaders via {a}")
           for i, a in nodes.items()}[1]
    batch = build_batch([(b"k", b"v")])
    for partition, leader in led.items():
        # the leader may create its local log a moment after Metadata names it (clients retry)
        wait_until(lambda p=partition, b=leader: raw_produce(nodes[b], topic, p, batch).error_code == ErrorCode.none,
                   timeout=10, interval=0.1, message=f"leader {leader} to accept partition {partition}")
        for node_id, address in nodes.items():
            if node_id != leader:
                answer = raw_produce(address, topic, partition, batch)
                assert answer.error_code == ErrorCode.not_leader_or_follower, (partition, node_id, answer)


def test_stale_metadata_producer_recovers_when_leadership_moves(cluster: LocalCluster) -> None:
    """A long-lived producer caches partition 0's leader; the topic is deleted and created again
    with partition 0 on another broker (manual assignment). Its next send goes to the old leader,
    which refuses it; the client refreshes metadata and delivers to the new leader."""
    topic = unique("stale")
    nodes = cluster.addresses()
    a = admin(nodes[1])
    a.create_topics([NewTopic(topic, num_partitions=1, replica_assignment=[[1]])], operation_timeout=15)[topic].result(timeout=20)
    wait_until(lambda: all(leaders(addr, topic).get(0) == 1 for addr in nodes.values()), timeout=15,
               message="partition 0 led by broker 1 everywhere")
    producer = confluent_kafka.Producer({"bootstrap.servers": nodes[2], "message.timeout.ms": 30000,
                                         "topic.metadata.refresh.interval.ms": 300000})
    delivered: list[Any] = []

    def on_delivery(err: Any, msg: Any) -> None:
        delivered.append(err if err is not None else (msg.partition(), msg.offset()))

    try:
        producer.produce(topic, value=b"before", partition=0, on_delivery=on_delivery)
        assert producer.flush(20) == 0 and delivered == [(0, 0)], delivered

        a.delete_topics([topic], operation_timeout=15)[topic].result(timeout=20)
        wait_until(lambda: all(not leaders(addr, topic) for addr in nodes.values()), timeout=15,
                   message="the topic gone from every broker")
        # broker 1 applies the deletion from the metadata log: its copy of the partition goes
        old_dir = cluster.dir / "node-1" / "data" / f"{topic}-0"
        wait_until(lambda: not old_dir.exists(), timeout=15, message=f"{old_dir} removed after DeleteTopics")
        wait_until(lambda: _create_assigned(a, topic, [[3]]), timeout=20, message="re-creating the topic")
        wait_until(lambda: all(leaders(addr, topic).get(0) == 3 for addr in nodes.values()), timeout=15,
                   message="partition 0 led by broker 3 everywhere")
        assert raw_produce(nodes[1], topic, 0, build_batch([(None, b"x")])).error_code == \
            ErrorCode.not_leader_or_follower

        producer.produce(topic, value=b"after", partition=0, on_delivery=on_delivery)
        assert producer.flush(25) == 0
        assert len(delivered) == 2 and isinstance(delivered[1], tuple), delivered
    finally:
        producer.flush(1)
    got = ck_consume(nodes[3], topic, [0], 1, timeout=10)
    assert [r.value for r in got] == [b"after"]  # the refused raw produce wrote nothing


def _create_assigned(a: AdminClient, topic: str, assignment: list[list[int]]) -> bool:
    try:
        new = NewTopic(topic, num_partitions=len(assignment), replica_assignment=assignment)
        a.create_topics([new], operation_timeout=15)[topic].result(timeout=20)
        return True
    except confluent_kafka.KafkaException as exc:
        if exc.args[0].code() == confluent_kafka.KafkaError.TOPIC_ALREADY_EXISTS:  # deletion still settling
            return False
        raise


@pytest.mark.slow
def test_kill_active_controller_then_restart_it(cluster: LocalCluster) -> None:
    nodes = cluster.addresses()
    topic = unique("failover")
    create_topic(nodes[1], topic, 6)
    led = wait_until(lambda: all_led(nodes[1], topic, 6), timeout=15, message="leaders of the topic")
    before = ck_produce(cluster.bootstrap, topic, [{"value": f"before-{p}".encode(), "partition": p} for p in range(6)])
    assert len(before) == 6

    status = wait_until(lambda: (s := cluster.status())["quorum"]["leader_id"] is not None and s, timeout=15,
                        message="a quorum leader")
    old_leader, old_epoch = status["quorum"]["leader_id"], status["quorum"]["leader_epoch"]
    victim = next(n for n in status["nodes"] if n["id"] == old_leader)
    os.kill(victim["pid"], signal.SIGKILL)
    wait_until(lambda: not pid_running(victim["pid"]), timeout=5, message="the killed controller to exit")

    # a new leader is elected among the survivors within a few seconds
    def new_leader() -> dict[str, Any] | None:
        q = cluster.status()["quorum"]
        return q if q["leader_id"] not in (None, old_leader) else None

    quorum = wait_until(new_leader, timeout=FAILOVER_S, interval=0.2, message="a new quorum leader")
    assert quorum["leader_epoch"] > old_epoch

    # topic creation keeps working; survivors keep serving the partitions they lead
    survivors = ",".join(a for i, a in nodes.items() if i != old_leader)
    created = unique("after-failover")
    create_topic(survivors, created, 2)
    wait_until(lambda: created in admin(survivors).list_topics(timeout=10).topics, timeout=15,
               message="the new topic in Metadata")
    live_parts = [p for p, b in led.items() if b != old_leader]
    dead_parts = [p for p, b in led.items() if b == old_leader]
    assert len(dead_parts) == 2
    ck_produce(survivors, topic, [{"value": f"during-{p}".encode(), "partition": p} for p in live_parts])

    # RF 1: the dead broker's partitions are offline; a producer queues for them until it returns
    producer = confluent_kafka.Producer({"bootstrap.servers": survivors, "message.timeout.ms": 60000})
    results: list[Any] = []
    for p in dead_parts:
        producer.produce(topic, value=f"queued-{p}".encode(), partition=p,
                         on_delivery=lambda err, msg: results.append(err or (msg.partition(), msg.offset())))
    producer.poll(0)

    ok("cluster", "start-node", "--dir", str(cluster.dir), "--node", str(old_leader), "--wait", str(START_S),
       timeout=START_S + 30)
    wait_until(lambda: broker_ids(survivors) == {1, 2, 3}, timeout=15, message="3 brokers in Metadata again")
    assert producer.flush(45) == 0, "records for the restarted broker's partitions were not delivered"
    assert sorted(r for r in results if isinstance(r, tuple)) == sorted((p, 1) for p in dead_parts), results

    # the restarted broker leads its partitions again and serves them, data from before the kill included
    for address in nodes.values():
        assert wait_until(lambda a=address: all_led(a, topic, 6), timeout=15, message=f"all led via {address}") == led
    restarted = cluster.address(old_leader)
    got = ck_consume(restarted, topic, dead_parts, 4, timeout=15)
    assert sorted(r.value or b"" for r in got) == sorted(
        [f"before-{p}".encode() for p in dead_parts] + [f"queued-{p}".encode() for p in dead_parts])
    ck_produce(restarted, topic, [{"value": b"again", "partition": p} for p in range(6)])
    status = cluster.status()
    assert all(n["alive"] and n["in_metadata"] for n in status["nodes"]), status["nodes"]


def test_down_stops_every_process(cluster: LocalCluster) -> None:
    """Last in the module: stops the shared cluster."""
    state = cluster.state()
    ok("cluster", "down", "--dir", str(cluster.dir), timeout=90)
    assert not (cluster.dir / "cluster.json").exists()
    alive = [n["id"] for n in state["nodes"] if pid_running(n["pid"], Path(n["config"]))]
    assert alive == []
    assert all((cluster.dir / f"node-{n['id']}" / "data").is_dir() for n in state["nodes"])  # data kept
    proc = suoi("cluster", "status", "--dir", str(cluster.dir))
    assert proc.returncode == 1 and "no cluster in" in proc.stderr
