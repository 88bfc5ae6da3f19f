"""The acks=all round trip on RF=3 is event-driven end to end (issue 19's replication timeline):
the append wakes each follower's parked Fetch, the follower fetches again as soon as it has
appended, that Fetch moves the high watermark and the Produce is answered in the same step.
Nothing on that path may wait for `replica.fetch.wait.max.ms`: with it at 30 s (and the
Produce timeout at 15 s), any wait for it shows as a round trip of seconds or a
REQUEST_TIMED_OUT, where the path takes milliseconds."""

from __future__ import annotations

import time

from kio.schema.errors import ErrorCode
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData

from suoi.protocol.records import build_batch
from suoi.testing import InProcessCluster
from tests.integration.support import metadata_req, ms, produce_req
from tests.rawclient import RawClient

MAX_WAIT_MS = 30_000


def test_acks_all_is_answered_on_the_followers_next_fetch_not_their_max_wait() -> None:
    # lag.time.max above the max wait: a follower that waited would not be dropped from the ISR
    overrides = {"replica.fetch.wait.max.ms": str(MAX_WAIT_MS), "replica.lag.time.max.ms": str(2 * MAX_WAIT_MS)}
    with InProcessCluster(3, overrides=overrides) as cluster:
        # min.insync.replicas=3: every answer waits for both followers
        cluster.create_topic("round-trip", 1, 3, {"min.insync.replicas": "3"})
        with RawClient(cluster.nodes[1].bootstrap) as c:
            partition = c.request(metadata_req("round-trip", allow_create=False)).topics[0].partitions[0]
        assert sorted(int(r) for r in partition.isr_nodes) == [1, 2, 3]
        took = []
        with RawClient(cluster.nodes[int(partition.leader_id)].bootstrap, timeout=MAX_WAIT_MS / 1000) as c:
            for i in range(10):  # the followers' Fetches are parked (caught up) before each append
                started = time.monotonic()
                r = c.request(produce_req("round-trip", 0, build_batch([(None, b"v%d" % i)]), acks=-1,
                                          timeout_ms=MAX_WAIT_MS // 2))
                took.append(time.monotonic() - started)
                p = r.responses[0].partition_responses[0]
                assert (p.error_code, int(p.base_offset)) == (ErrorCode.none, i)
        assert max(took) < 5.0, took  # milliseconds on an idle machine; a wait for the max wait: >= 15 s
        for node in cluster.nodes.values():  # and every replica has all ten
            plog = node.broker.logs.get_log("round-trip", 0)
            assert plog is not None and plog.log_end_offset == 10


def test_acks_all_produce_of_several_partitions_is_answered_and_replicated_byte_for_byte() -> None:
    """One acks=all Produce naming two partitions of a leader waits for the followers (the handler
    drops the request's records once they are appended, as Kafka's clearPartitionRecords): both
    are answered with their offsets, and every replica holds each batch exactly as produced
    (bytes from the magic on; base offset and leader epoch are the leader's)."""
    with InProcessCluster(3) as cluster:
        cluster.create_topic("several", 6, 3, {"min.insync.replicas": "3"})
        with RawClient(cluster.nodes[1].bootstrap) as c:
            partitions = c.request(metadata_req("several", allow_create=False)).topics[0].partitions
        by_leader: dict[int, list[int]] = {}
        for p in partitions:
            by_leader.setdefault(int(p.leader_id), []).append(int(p.partition_index))
        leader, indexes = max(by_leader.items(), key=lambda kv: len(kv[1]))
        assert len(indexes) >= 2, by_leader
        batches = {i: build_batch([(b"k%d" % i, b"v" * 40_000 + b"%d" % n) for n in range(3)]) for i in indexes[:2]}
        request = ProduceRequest(acks=-1, timeout=ms(10_000), topic_data=(TopicProduceData(name="several", partition_data=tuple(
            PartitionProduceData(index=i, records=batch) for i, batch in batches.items())),))
        with RawClient(cluster.nodes[leader].bootstrap, timeout=30) as c:
            for round_ in range(2):
                answer = c.request(request)
                got = {int(p.index): (p.error_code, int(p.base_offset)) for p in answer.responses[0].partition_responses}
                assert got == {i: (ErrorCode.none, 3 * round_) for i in batches}
        for node in cluster.nodes.values():
            for i, batch in batches.items():
                plog = node.broker.logs.get_log("several", i)
                assert plog is not None and plog.log_end_offset == 6
                data = bytes(plog.read(0, 1 << 20, max_offset=6))
                assert len(data) == 2 * len(batch)
                assert data[16:len(batch)] == batch[16:] and data[len(batch) + 16:] == batch[16:]
