"""The leader's side of a follower's Fetch (`api/replica_fetch.py`) on the wire: a raw Fetch v13
that names a stopped follower's id reads as that follower would - records past nothing but
the log end, a privileged KIP-227 session whose incremental answers carry only what moved -,
and every check still answers Kafka's codes: a newer leader epoch (KIP-320), a fetch offset
past the log end, a follower ahead of the leader's log in its epoch (KIP-595: a diverging
epoch), a last fetched epoch newer than the leader's log (OFFSET_OUT_OF_RANGE, as Kafka answers),
a wrong session epoch."""

from __future__ import annotations

import datetime
from typing import Any

from kafka import KafkaProducer
from kio.schema.fetch.v13.request import FetchPartition, FetchRequest, FetchTopic
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic
from kio.schema.types import TopicName

from suoi.model import ErrorCode
from suoi.protocol.record_batch import iter_batches
from suoi.testing.inprocess import InProcessCluster
from tests.rawclient import RawClient


def _fetch(client: RawClient, replica_id: int, session: tuple[int, int], topic_id: Any,
           offset: int | None = None, *, leader_epoch: int = -1, last_fetched: int = -1) -> Any:
    parts = () if offset is None else (FetchTopic(topic_id=topic_id, partitions=(FetchPartition(
        partition=0, current_leader_epoch=leader_epoch, fetch_offset=offset, last_fetched_epoch=last_fetched,
        log_start_offset=0, partition_max_bytes=1 << 20),)),)
    return client.request(FetchRequest(replica_id=replica_id, max_wait=datetime.timedelta(0), min_bytes=1,
                                       max_bytes=1 << 20, session_id=session[0], session_epoch=session[1],
                                       topics=parts, forgotten_topics_data=()))


def _partition(answer: Any) -> Any:
    [topic] = answer.responses
    [partition] = topic.partitions
    return partition


def test_a_follower_fetch_reads_in_a_privileged_session_and_keeps_every_check() -> None:
    with InProcessCluster(3) as cluster:
        cluster.create_topic("repl", partitions=1, replication_factor=3, configs={"min.insync.replicas": "2"})
        producer = KafkaProducer(bootstrap_servers=cluster.bootstrap, acks="all")
        try:
            for i in range(5):
                producer.send("repl", value=b"v%d" % i, partition=0)
            producer.flush(20)
        finally:
            producer.close()
        with RawClient(next(iter(cluster.nodes.values())).bootstrap) as client:
            md = client.request(MetadataRequest(topics=(MetadataRequestTopic(topic_id=None, name=TopicName("repl")),),
                                                allow_auto_topic_creation=False,
                                                include_topic_authorized_operations=False))
        topic_id, p = md.topics[0].topic_id, md.topics[0].partitions[0]
        leader, epoch = int(p.leader_id), int(p.leader_epoch)
        follower = next(int(r) for r in p.replica_nodes if int(r) != leader)
        cluster.nodes[follower].stop()  # its replica id is ours to fetch with
        sessions = cluster.nodes[leader].broker.kraft.replicas.fetch_sessions
        with RawClient(cluster.nodes[leader].bootstrap) as client:
            full = _fetch(client, follower, (0, 0), topic_id, 0, leader_epoch=epoch)
            got = _partition(full)
            assert (full.error_code, got.error_code, got.high_watermark) == (ErrorCode.none, ErrorCode.none, 5)
            assert sum(h.records_count for _, h in iter_batches(got.records)) == 5  # read up to the log end
            sid = full.session_id
            assert sid != 0 and sessions.get(sid).privileged and sessions.get(sid).uses_topic_ids
            # at the log end with this log's latest epoch: nothing moved, the incremental answer is empty
            quiet = _fetch(client, follower, (sid, 1), topic_id, 5, leader_epoch=epoch, last_fetched=epoch)
            assert (quiet.error_code, quiet.session_id, quiet.responses) == (ErrorCode.none, sid, ())
            assert _fetch(client, follower, (sid, 1), topic_id).error_code == ErrorCode.invalid_fetch_session_epoch
            newer = _partition(_fetch(client, follower, (sid, 2), topic_id, 5, leader_epoch=epoch + 1))
            assert newer.error_code == ErrorCode.unknown_leader_epoch  # KIP-320: the leader has not seen it yet
            past = _partition(_fetch(client, follower, (sid, 3), topic_id, 9, leader_epoch=epoch))
            assert past.error_code == ErrorCode.offset_out_of_range
            # past the log end in the leader's epoch (KIP-595): told where that epoch ends, to truncate there
            diverging = _partition(_fetch(client, follower, (sid, 4), topic_id, 6, leader_epoch=epoch,
                                          last_fetched=epoch))
            assert diverging.error_code == ErrorCode.none and diverging.records in (None, b"")
            assert (diverging.diverging_epoch.epoch, diverging.diverging_epoch.end_offset) == (epoch, 5)
            # an epoch newer than any of the leader's log: its end cannot be told, out of range (as Kafka)
            unknown = _partition(_fetch(client, follower, (sid, 5), topic_id, 5, leader_epoch=epoch,
                                        last_fetched=epoch + 7))
            assert unknown.error_code == ErrorCode.offset_out_of_range
        # the leader recorded the follower's position from the fetches it accepted (the last at the log end)
        state = cluster.nodes[leader].broker.kraft.replicas.leaders[("repl", 0)].state
        assert state.followers[follower].log_end_offset == 5
