"""A corrupt batch in one replica of an RF=3 partition (KRaft, 3 combined nodes) heals from the
others, and every acked record stays readable, in order, once: a damaged *leader* hands
leadership to an in-sync follower and refetches; a damaged *follower* (found by the scrubber)
truncates to the last good batch and refetches. The files are clean afterwards
(`suoi dump-log --verify`'s check)."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kio.schema.errors import ErrorCode

from suoi.cli.dump_log import dump_file
from suoi.cli.main import main as suoi_main
from suoi.protocol.records import build_batch
from suoi.testing import EmbeddedBroker
from tests.conftest import wait_until
from tests.integration.kraft_cluster import KRaftCluster, kraft_cluster
from tests.integration.support import metadata_req, produce_req, unique
from tests.rawclient import RawClient
from tests.unit.log.log_helpers import batch_positions, flip

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]

BATCHES, PER_BATCH = 60, 5
TOTAL = BATCHES * PER_BATCH


def partition_logs(node: EmbeddedBroker, topic: str) -> list[Path]:
    return sorted((node.data_dir / "data" / f"{topic}-0").glob("*.log"))


def bad_batches(node: EmbeddedBroker, topic: str) -> int:
    return sum(dump_file(p, io.StringIO(), verify=True) for p in partition_logs(node, topic))


def log_bytes(node: EmbeddedBroker, topic: str) -> int:
    return sum(p.stat().st_size for p in partition_logs(node, topic))


def leader_and_isr(c: KRaftCluster, node_id: int, topic: str) -> tuple[int, list[int]]:
    with RawClient(c.nodes[node_id].bootstrap) as client:
        p = client.request(metadata_req(topic, allow_create=False)).topics[0].partitions[0]
    return int(p.leader_id), sorted(int(b) for b in p.isr_nodes)


def in_sync_everywhere(c: KRaftCluster, topic: str) -> bool:
    sizes = {log_bytes(n, topic) for n in c.nodes.values()}
    return len(sizes) == 1 and leader_and_isr(c, 2, topic)[1] == [1, 2, 3]


def consume_all(bootstrap: str, topic: str) -> list[int]:
    # check.crcs: a corrupt batch served by any broker fails the read instead of passing unnoticed
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("g"), "enable.auto.commit": False,
                         "fetch.error.backoff.ms": 100, "topic.metadata.refresh.interval.ms": 500,
                         "check.crcs": True})
    got: list[int] = []
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        deadline = time.monotonic() + 40
        while len(got) < TOTAL and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                got.append(msg.offset())
    finally:
        consumer.close()
    return got


def test_damaged_leader_and_follower_heal_from_the_other_replicas(tmp_path: Path) -> None:
    with kraft_cluster(tmp_path, 3) as c:
        topic = unique("rot3")
        admin = AdminClient({"bootstrap.servers": c.bootstrap})
        new = NewTopic(topic, num_partitions=1, replica_assignment=[[1, 2, 3]],
                       config={"segment.bytes": "4096", "index.interval.bytes": "256"})
        admin.create_topics([new])[topic].result(15)
        assert c.wait_leaders(topic, 1)[0][0] == 1
        with RawClient(c.nodes[1].bootstrap) as client:
            for b in range(BATCHES):
                records = [(b"k", b"value-%05d-" % (b * PER_BATCH + i) + b"x" * 40) for i in range(PER_BATCH)]
                part = client.request(produce_req(topic, 0, build_batch(records))).responses[0].partition_responses[0]
                assert (part.error_code, part.base_offset) == (ErrorCode.none, b * PER_BATCH)  # acks=all
        wait_until(lambda: in_sync_everywhere(c, topic), 20, message="every replica caught up")

        # -- the leader (node 1, the preferred replica) rots while stopped ----------------
        leader = c.nodes[1]
        leader.stop()
        path = partition_logs(leader, topic)[1]
        pos, base = batch_positions(path)[3]
        flip(path, pos + 80)
        assert bad_batches(leader, topic) == 1
        leader.start()
        wait_until(lambda: leader_and_isr(c, 2, topic)[1] == [1, 2, 3], 30, message="node 1 back in the ISR")
        assert suoi_main(["leader-election", "--bootstrap-server", c.nodes[2].bootstrap, "--election-type",
                          "PREFERRED", "--topic", topic, "--partition", "0"]) == 0
        # every node's metadata names node 1 (a consumer bootstrapping from a node that has not seen the
        # election yet would read everything from node 2)
        wait_until(lambda: all(leader_and_isr(c, n, topic)[0] == 1 for n in (1, 2, 3)), 15,
                   message="node 1 leads again, in every node's metadata")
        # a consumer reading from the start hits the bad batch on node 1, which steps down
        assert consume_all(c.bootstrap, topic) == list(range(TOTAL))
        assert f"corrupt batch at offset {base} in this leader's log" in leader.logs()
        assert leader_and_isr(c, 2, topic)[0] != 1
        wait_until(lambda: bad_batches(leader, topic) == 0 and in_sync_everywhere(c, topic), 30,
                   message="node 1 refetched the bad batch")

        # -- a follower rots while stopped; its scrubber finds it -------------------------
        current, _ = leader_and_isr(c, 2, topic)
        follower = c.nodes[next(i for i in (1, 2, 3) if i != current)]
        follower.stop()
        path = partition_logs(follower, topic)[2]
        pos, base = batch_positions(path)[4]
        flip(path, pos + 18, 0x10)  # its CRC
        follower.overrides.update({"log.scrubber.enable": "true", "log.scrubber.bytes.per.second": "1000000"})
        follower.start()
        wait_until(lambda: f"dropped the log from the corrupt batch at offset {base}" in follower.logs(), 30,
                   message="the follower's scrubber found the bad batch")
        wait_until(lambda: bad_batches(follower, topic) == 0 and in_sync_everywhere(c, topic), 30,
                   message="the follower refetched the bad batch")
        assert consume_all(c.bootstrap, topic) == list(range(TOTAL))
