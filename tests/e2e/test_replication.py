"""Partition replication on a 3-broker KRaft cluster with a separate controller (`suoi cluster
up --brokers 3 --controllers 1`), driven by real clients.

Short failure-detection timeouts (`-o broker.session.timeout.ms=3000` ...) keep failovers to a
few seconds. One cluster for the module; tests that stop brokers bring them back before they
end. Everything is polled with deadlines; nothing sleeps to synchronise.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import confluent_kafka
import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from kio.schema.errors import ErrorCode

from suoi.cli.cluster import pid_running
from suoi.protocol.records import build_batch
from tests.conftest import wait_until
from tests.e2e.cli import ok, suoi
from tests.e2e.helpers import ck_consume
from tests.integration.support import metadata_req, produce_req
from tests.rawclient import RawClient

START_S = 60.0
OVERRIDES = {
    "broker.session.timeout.ms": "3000", "broker.heartbeat.interval.ms": "500",
    "replica.lag.time.max.ms": "3000", "replica.fetch.backoff.ms": "200",
    "offsets.topic.num.partitions": "3", "transaction.state.log.num.partitions": "3",
    "replica.selector.class": "rack-aware",
}
RACKS = {1: "rack-a", 2: "rack-b", 3: "rack-c"}


class Cluster:
    def __init__(self, directory: Path, bootstrap: str) -> None:
        self.dir = directory
        self.bootstrap = bootstrap

    def nodes(self) -> list[dict[str, Any]]:
        return list(json.loads((self.dir / "cluster.json").read_text())["nodes"])

    def address(self, node_id: int) -> str:
        return next(n["address"] for n in self.nodes() if n["id"] == node_id)

    def pid(self, node_id: int) -> int:
        return int(next(n["pid"] for n in self.nodes() if n["id"] == node_id))

    def running(self, node_id: int) -> bool:
        n = next(n for n in self.nodes() if n["id"] == node_id)
        return pid_running(n["pid"], Path(n["config"]))

    def kill(self, node_id: int) -> None:
        pid = self.pid(node_id)
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not pid_running(pid), timeout=10, message=f"node {node_id} to die")

    def start(self, node_id: int) -> None:
        ok("cluster", "start-node", "--dir", str(self.dir), "--node", str(node_id), "--wait", str(START_S),
           timeout=START_S + 30)

    def partition_dir(self, node_id: int, topic: str, partition: int) -> Path:
        return self.dir / f"node-{node_id}" / "data" / f"{topic}-{partition}"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    directory = tmp_path_factory.mktemp("replication") / "c"
    # A separate controller (node 4): killing two of the three brokers must not take the
    # metadata quorum with them, or nobody could fence them and shrink the ISR.
    args = ["cluster", "up", "--brokers", "3", "--controllers", "1", "--dir", str(directory), "--wait", str(START_S)]
    for k, v in OVERRIDES.items():
        args += ["-o", f"{k}={v}"]
    args += ["--racks", ",".join(RACKS.values())]
    proc = suoi(*args, timeout=START_S + 30)
    try:
        assert proc.returncode == 0, f"cluster up failed: {proc.stderr}"
        yield Cluster(directory, proc.stdout.strip())
    finally:
        if (directory / "cluster.json").exists():
            nodes = json.loads((directory / "cluster.json").read_text())["nodes"]
            suoi("cluster", "down", "--dir", str(directory), timeout=90)
            for n in nodes:
                if pid_running(n["pid"], Path(n["config"])):
                    os.kill(n["pid"], signal.SIGKILL)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_topic(bootstrap: str, name: str, partitions: int, rf: int = 3, **configs: str) -> None:
    a = AdminClient({"bootstrap.servers": bootstrap})
    fut = a.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=rf,
                                    config={k.replace("_", "."): v for k, v in configs.items()})],
                          operation_timeout=15)[name]
    fut.result(timeout=20)


def describe(address: str, topic: str) -> dict[int, tuple[int, list[int], list[int]]]:
    """partition -> (leader, replicas, isr) as the broker at `address` itself answers."""
    with RawClient(address) as c:
        t = c.request(metadata_req(topic, allow_create=False)).topics[0]
    if t.error_code != ErrorCode.none:
        return {}
    return {int(p.partition_index): (int(p.leader_id), [int(r) for r in p.replica_nodes], [int(r) for r in p.isr_nodes])
            for p in t.partitions}


def log_bytes(directory: Path) -> int:
    return sum(f.stat().st_size for f in directory.glob("*.log")) if directory.exists() else -1


def raw_produce(address: str, topic: str, partition: int, value: bytes, acks: int = -1) -> tuple[int, int]:
    with RawClient(address) as c:
        r = c.request(produce_req(topic, partition, build_batch([(None, value)]), acks=acks))
    p = r.responses[0].partition_responses[0]
    return int(p.error_code), int(p.base_offset)


# ---------------------------------------------------------------------------- tests


def test_replicas_hold_identical_logs_and_stay_in_sync(cluster: Cluster) -> None:
    topic = unique("rf3")
    create_topic(cluster.bootstrap, topic, 6)
    state = wait_until(lambda: (d := describe(cluster.address(1), topic)) and len(d) == 6 and d, timeout=15)
    assert {leader for leader, _, _ in state.values()} == {1, 2, 3}, state  # leaders spread
    for leader, replicas, isr in state.values():
        assert sorted(replicas) == [1, 2, 3] and sorted(isr) == [1, 2, 3] and leader == replicas[0]

    producer = confluent_kafka.Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all",
                                         "enable.idempotence": True, "linger.ms": 5})
    errors: list[Any] = []
    for i in range(3000):
        producer.produce(topic, key=str(i).encode(), value=b"v%d" % i,
                         on_delivery=lambda err, msg: err and errors.append(err))
        if i % 500 == 0:
            producer.poll(0)
    assert producer.flush(30) == 0 and errors == []

    # every replica has the same bytes (offsets, epochs and timestamps kept by followers)
    def same() -> bool:
        sizes = [[log_bytes(cluster.partition_dir(n, topic, p)) for n in (1, 2, 3)] for p in range(6)]
        return all(s[0] > 0 and s.count(s[0]) == 3 for s in sizes)
    wait_until(same, timeout=15, message="identical replica logs")
    for p in range(6):
        files = [sorted(x.name for x in cluster.partition_dir(n, topic, p).glob("*.log")) for n in (1, 2, 3)]
        assert files[0] == files[1] == files[2]
        contents = {(cluster.partition_dir(n, topic, p) / files[0][-1]).read_bytes() for n in (1, 2, 3)}
        assert len(contents) == 1, f"partition {p} differs between replicas"

    got = ck_consume(cluster.bootstrap, topic, list(range(6)), 3000, timeout=30)
    assert sorted(int(r.key) for r in got) == list(range(3000))
    assert all(sorted(isr) == [1, 2, 3] for _, _, isr in describe(cluster.address(2), topic).values())


def test_acks_all_needs_min_insync_replicas(cluster: Cluster) -> None:
    """Two of three brokers down with min.insync.replicas=2: acks=all produces fail with
    NOT_ENOUGH_REPLICAS, acks=1 and reads of committed data still work; one back: writes resume."""
    topic = unique("minisr")
    create_topic(cluster.bootstrap, topic, 1, min_insync_replicas="2")
    leader, replicas, _ = wait_until(lambda: describe(cluster.address(1), topic).get(0), timeout=15)
    assert raw_produce(cluster.address(leader), topic, 0, b"before") == (ErrorCode.none, 0)
    others = [r for r in replicas if r != leader]
    survivor = cluster.address(leader)
    for node in others:
        cluster.kill(node)
    try:
        # A killed broker whose endpoints refuse connections is fenced at the controller's next
        # tick, which its closed heartbeat connection wakes: the ISR may have shrunk to the leader
        # already (NOT_ENOUGH_REPLICAS at once). Otherwise an acks=all wait the followers never
        # answer ends at the request's timeout (or, had the ISR shrunk meanwhile, with the HW
        # past it and too small an ISR). Either way without offsets; the next answer follows.
        with RawClient(survivor) as c:
            started = time.monotonic()
            waited = c.request(produce_req(topic, 0, build_batch([(None, b"unreplicated")]), timeout_ms=300))
            answered = time.monotonic() - started
            after = c.request(metadata_req(topic, allow_create=False))
        p = waited.responses[0].partition_responses[0]
        assert p.error_code in (ErrorCode.request_timed_out, ErrorCode.not_enough_replicas_after_append,
                                ErrorCode.not_enough_replicas)
        assert p.base_offset == -1 and answered < 5, answered
        if p.error_code == ErrorCode.request_timed_out:
            assert answered >= 0.25, answered  # not before the request's timeout
        # NOT_ENOUGH_REPLICAS refuses before the append; the other two answer after it
        kept = [b"before"] if p.error_code == ErrorCode.not_enough_replicas else [b"before", b"unreplicated"]
        assert after.topics[0].error_code == ErrorCode.none
        # the controller fences the dead brokers and shrinks the ISR to the leader
        wait_until(lambda: describe(survivor, topic).get(0, (0, [], []))[2] == [leader], timeout=20,
                   message="ISR shrunk to the leader")
        error, _ = raw_produce(survivor, topic, 0, b"refused")
        assert error == ErrorCode.not_enough_replicas
        for flag in ("--under-min-isr-partitions", "--under-replicated-partitions"):
            out = ok("topics", "--describe", "--topic", topic, flag, "--bootstrap-server", survivor)
            assert f"Topic: {topic}\tPartition: 0\tLeader: {leader}\t" in out and f"Isr: {leader}\n" in out, out
        assert ok("topics", "--describe", "--topic", topic, "--at-min-isr-partitions",
                  "--bootstrap-server", survivor).strip() == ""
        error, offset = raw_produce(survivor, topic, 0, b"acks-1", acks=1)
        assert (error, offset) == (ErrorCode.none, len(kept))  # after the unreplicated batch, if appended
        got = ck_consume(survivor, topic, [0], len(kept) + 1, timeout=20)
        assert [r.value for r in got] == [*kept, b"acks-1"]
        cluster.start(others[0])
        wait_until(lambda: len(describe(survivor, topic).get(0, (0, [], []))[2]) == 2, timeout=30,
                   message="a restarted follower back in the ISR")
        error, offset = raw_produce(survivor, topic, 0, b"after")
        assert (error, offset) == (ErrorCode.none, len(kept) + 1)
    finally:
        for node in others:
            if not cluster.running(node):
                cluster.start(node)
    wait_until(lambda: sorted(describe(survivor, topic).get(0, (0, [], []))[2]) == [1, 2, 3], timeout=30,
               message="all three back in the ISR")
    assert ok("topics", "--describe", "--topic", topic, "--under-replicated-partitions",
              "--bootstrap-server", survivor).strip() == ""


def test_leader_kill_loses_no_acknowledged_write_and_the_old_leader_catches_up(cluster: Cluster) -> None:
    topic = unique("failover")
    create_topic(cluster.bootstrap, topic, 1, min_insync_replicas="2")
    leader, _, _ = wait_until(lambda: describe(cluster.address(1), topic).get(0), timeout=15)
    acked: list[bytes] = []
    failed: list[str] = []
    stop = threading.Event()

    def produce() -> None:
        p = confluent_kafka.Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all",
                                      "enable.idempotence": True, "linger.ms": 2, "message.timeout.ms": 60000})
        i = 0
        while not stop.is_set():
            try:
                p.produce(topic, value=b"m%06d" % i, on_delivery=lambda err, msg: (
                    failed.append(str(err)) if err else acked.append(msg.value())))
                i += 1
            except BufferError:
                pass
            p.poll(0.002)
        p.flush(60)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(acked) > 200, timeout=20, message="acks before the kill")
        killed_at = time.monotonic()
        cluster.kill(leader)
        survivors = ",".join(cluster.address(n) for n in (1, 2, 3) if n != leader)
        new_leader = wait_until(lambda: (lead := describe(survivors.split(",")[0], topic).get(0, (-1,))[0]) not in
                                (-1, leader) and lead, timeout=20, message="a new leader")
        count = len(acked)
        wait_until(lambda: len(acked) > count + 200, timeout=30, message="acks after the failover")
        failover_s = time.monotonic() - killed_at
        cluster.start(leader)
        # the old leader comes back as a follower, truncates any unacknowledged tail, catches up
        wait_until(lambda: sorted(describe(cluster.address(new_leader), topic).get(0, (0, [], []))[2]) == [1, 2, 3],
                   timeout=30, message="the old leader back in the ISR")
    finally:
        stop.set()
        thread.join(90)
    assert failed == [], failed[:5]
    assert failover_s < 30
    got = ck_consume(cluster.bootstrap, topic, [0], len(acked), timeout=60)
    values = [r.value for r in got]
    assert len(values) == len(set(values)), "duplicates"
    assert set(acked) <= set(values), f"{len(set(acked) - set(values))} acknowledged values lost"
    assert values == sorted(values), "reordered"

    def replicas_equal() -> bool:
        sizes = {log_bytes(cluster.partition_dir(n, topic, 0)) for n in (1, 2, 3)}
        return len(sizes) == 1
    wait_until(replicas_equal, timeout=20, message="the restarted replica's log to equal the others")


def test_follower_rejects_produce_and_a_consumer_reads_through_the_leader(cluster: Cluster) -> None:
    topic = unique("notleader")
    create_topic(cluster.bootstrap, topic, 1)
    leader, replicas, _ = wait_until(lambda: describe(cluster.address(1), topic).get(0), timeout=15)
    follower = next(r for r in replicas if r != leader)
    error, _ = raw_produce(cluster.address(follower), topic, 0, b"x")
    assert error == ErrorCode.not_leader_or_follower
    assert raw_produce(cluster.address(leader), topic, 0, b"y") == (ErrorCode.none, 0)
    got = ck_consume(cluster.address(follower), topic, [0], 1, timeout=20)  # the client finds the leader
    assert [r.value for r in got] == [b"y"]


def fetch_v12(address: str, topic: str, offset: int, *, rack: str = "", epoch: int = -1) -> Any:
    from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic

    from tests.integration.support import ms

    request = FetchRequest(replica_id=-1, max_wait=ms(0), min_bytes=1, max_bytes=1 << 20, isolation_level=0,
                           session_id=0, session_epoch=-1, rack_id=rack, forgotten_topics_data=(),
                           topics=(FetchTopic(topic=topic, partitions=(FetchPartition(
                               partition=0, current_leader_epoch=epoch, fetch_offset=offset, last_fetched_epoch=-1,
                               log_start_offset=-1, partition_max_bytes=1 << 20),)),))
    with RawClient(address) as c:
        return c.request(request).responses[0].partitions[0]


def test_a_consumer_reads_from_a_follower_in_its_rack(cluster: Cluster) -> None:
    """KIP-392 with replica.selector.class=rack-aware and broker.rack set on every broker."""
    topic = unique("rack")
    create_topic(cluster.bootstrap, topic, 1)
    leader, replicas, _ = wait_until(lambda: describe(cluster.address(1), topic).get(0), timeout=15)
    follower = next(r for r in replicas if r != leader)
    values = [b"r%d" % i for i in range(50)]
    for v in values:
        assert raw_produce(cluster.address(leader), topic, 0, v)[0] == ErrorCode.none

    # the leader sends a consumer of the follower's rack there, without records
    p = fetch_v12(cluster.address(leader), topic, 0, rack=RACKS[follower])
    assert (p.error_code, p.preferred_read_replica) == (ErrorCode.none, follower) and not p.records
    # no rack, or the leader's own rack: the leader serves
    for rack in ("", RACKS[leader], "rack-elsewhere"):
        p = fetch_v12(cluster.address(leader), topic, 0, rack=rack)
        assert p.preferred_read_replica == -1 and p.records
    # the follower serves consumers up to its high watermark once it has learned it
    got = wait_until(lambda: (r := fetch_v12(cluster.address(follower), topic, 0)).high_watermark == 50 and r,
                     timeout=15, message="the follower's high watermark")
    assert got.error_code == ErrorCode.none and got.records

    # librdkafka with client.rack reads everything (through the follower), in order
    consumer = confluent_kafka.Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": unique("g"),
                                         "client.rack": RACKS[follower], "auto.offset.reset": "earliest",
                                         "enable.auto.commit": False})
    try:
        consumer.assign([confluent_kafka.TopicPartition(topic, 0, 0)])
        seen: list[bytes] = []

        def read_all() -> bool:
            m = consumer.poll(0.2)
            if m is not None and not m.error():
                seen.append(m.value())
            return len(seen) >= 50
        wait_until(read_all, timeout=30, interval=0, message="50 records via the follower")
    finally:
        consumer.close()
    assert seen == values


def test_transactions_span_leaders_on_every_broker(cluster: Cluster) -> None:
    """Markers go to each partition's leader (WriteTxnMarkers) and replicate; the transaction
    coordinator and group offsets live on replicated internal partitions."""
    topic = unique("txn")
    create_topic(cluster.bootstrap, topic, 6)
    state = wait_until(lambda: (d := describe(cluster.address(1), topic)) and len(d) == 6 and d, timeout=15)
    assert {leader for leader, _, _ in state.values()} == {1, 2, 3}
    producer = confluent_kafka.Producer({"bootstrap.servers": cluster.bootstrap, "transactional.id": unique("tx"),
                                         "transaction.timeout.ms": 30000})
    producer.init_transactions(30)
    producer.begin_transaction()
    for p in range(6):
        producer.produce(topic, value=b"committed-%d" % p, partition=p)
    producer.commit_transaction(30)
    producer.begin_transaction()
    for p in range(6):
        producer.produce(topic, value=b"aborted-%d" % p, partition=p)
    producer.flush(30)
    producer.abort_transaction(30)
    producer.begin_transaction()
    producer.produce(topic, value=b"last", partition=0)
    group = unique("txn-group")
    consumer = confluent_kafka.Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group,
                                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                                         "isolation.level": "read_committed"})
    producer.send_offsets_to_transaction([confluent_kafka.TopicPartition(topic, 3, 42)],
                                         consumer.consumer_group_metadata(), 30)
    producer.commit_transaction(30)
    try:
        consumer.assign([confluent_kafka.TopicPartition(topic, p, 0) for p in range(6)])
        seen: list[bytes] = []

        def read() -> bool:
            m = consumer.poll(0.2)
            if m is not None and not m.error():
                seen.append(m.value())
            return len(seen) >= 7
        wait_until(read, timeout=30, interval=0, message="the committed records")
        extra = consumer.poll(1.0)
        assert extra is None or extra.error(), extra.value()
        committed = consumer.committed([confluent_kafka.TopicPartition(topic, 3)], timeout=10)
    finally:
        consumer.close()
    assert sorted(seen) == sorted([b"committed-%d" % p for p in range(6)] + [b"last"])
    assert committed[0].offset == 42
    # every replica holds the markers too: identical logs everywhere
    def same() -> bool:
        return all(len({log_bytes(cluster.partition_dir(n, topic, p)) for n in (1, 2, 3)}) == 1 for p in range(6))
    wait_until(same, timeout=15, message="identical replica logs")


def test_dynamic_broker_configs_go_through_the_metadata_log(cluster: Cluster) -> None:
    """AlterConfigs on a BROKER resource, sent to any broker, is decided by the controller and
    applied by every broker (cluster default) or by the one it names."""
    from confluent_kafka.admin import ConfigResource, ConfigSource, ResourceType

    DEFAULT, BROKER = ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value, ConfigSource.DYNAMIC_BROKER_CONFIG.value

    def alter(name: str, key: str, value: str | None) -> int:
        """IncrementalAlterConfigs through the raw client (librdkafka cannot name the "" default)."""
        from kio.schema.incremental_alter_configs.v1.request import IncrementalAlterConfigsRequest

        from suoi.protocol.codec import build

        request = build(IncrementalAlterConfigsRequest, {"validate_only": False, "resources": [{
            "resource_type": 4, "resource_name": name,
            "configs": [{"name": key, "config_operation": 0 if value is not None else 1, "value": value}]}]})
        with RawClient(cluster.address(1)) as c:
            return int(c.request(request).responses[0].error_code)

    def value_on(node: int, key: str) -> tuple[str, int] | None:
        admin = AdminClient({"bootstrap.servers": cluster.address(node)})
        res = ConfigResource(ResourceType.BROKER, str(node))
        entry = admin.describe_configs([res])[res].result(timeout=20)[key]
        return entry.value, entry.source

    try:
        assert alter("", "log.retention.ms", "7200000") == ErrorCode.none
        for n in (1, 2, 3):
            wait_until(lambda n=n: value_on(n, "log.retention.ms") == ("7200000", DEFAULT), timeout=15,
                       message=f"the cluster default on broker {n}")
        assert alter("2", "log.retention.ms", "3600000") == ErrorCode.none  # sent to broker 1, for broker 2
        wait_until(lambda: value_on(2, "log.retention.ms") == ("3600000", BROKER), timeout=15,
                   message="broker 2's own value")
        assert value_on(3, "log.retention.ms") == ("7200000", DEFAULT)
        assert alter("", "node.id", "7") == ErrorCode.invalid_config  # read-only
        assert alter("", "log.retention.ms", "soon") == ErrorCode.invalid_config
    finally:
        for name in ("", "2"):
            alter(name, "log.retention.ms", None)
    wait_until(lambda: all(value_on(n, "log.retention.ms")[1] not in (DEFAULT, BROKER) for n in (1, 2, 3)),  # type: ignore[index]
               timeout=15,
               message="the defaults back")


def test_consumers_see_only_what_every_in_sync_replica_has(cluster: Cluster) -> None:
    """The high watermark: with both followers paused (SIGSTOP), an acks=1 record is in the
    leader's log but neither fetched nor counted by ListOffsets(latest); it becomes visible once
    the followers have it (or once they left the ISR after replica.lag.time.max.ms)."""
    from tests.integration.support import fetch_req, list_offsets_req

    topic = unique("hw")
    create_topic(cluster.bootstrap, topic, 1)
    leader, replicas, _ = wait_until(lambda: describe(cluster.address(1), topic).get(0), timeout=15)
    address = cluster.address(leader)
    assert raw_produce(address, topic, 0, b"replicated") == (ErrorCode.none, 0)

    def visible() -> tuple[int, int, int]:
        with RawClient(address) as c:
            p = c.request(fetch_req(topic, 0, 0)).responses[0].partitions[0]
            latest = c.request(list_offsets_req(topic, 0, -1)).topics[0].partitions[0]
        return int(p.high_watermark), len(p.records or b"") and _count(p.records), int(latest.offset)
    wait_until(lambda: visible() == (1, 1, 1), timeout=15, message="the first record committed")

    followers = [r for r in replicas if r != leader]
    for node in followers:
        os.kill(cluster.pid(node), signal.SIGSTOP)
    try:
        assert raw_produce(address, topic, 0, b"leader only", acks=1) == (ErrorCode.none, 1)
        # checked well within replica.lag.time.max.ms (3 s), before the ISR could shrink
        assert visible() == (1, 1, 1)
    finally:
        for node in followers:
            os.kill(cluster.pid(node), signal.SIGCONT)
    wait_until(lambda: visible() == (2, 2, 2), timeout=20, message="the record committed after the followers resumed")
    wait_until(lambda: sorted(describe(address, topic)[0][2]) == [1, 2, 3], timeout=30,
               message="the followers back in the ISR")


def _count(records: bytes) -> int:
    from suoi.protocol.records import iter_batches

    return sum(h.records_count for _, h in iter_batches(records))
