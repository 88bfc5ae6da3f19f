"""A slow disk does not stall the event loop while the log cleaner commits (issue 19): on an
in-process cluster whose fsyncs of a compacted topic's partition files take 400 ms (fault
injection), the node's own cleaner compacts the topic and none of those fsyncs (the cleaned
segments', the moved abort index's, the partition directory's at each step of the swap, the
cleaner checkpoint's) runs on the node's event-loop thread; the node keeps answering ApiVersions
quickly meanwhile."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from kafka import KafkaProducer

from suoi.log.cleaner_files import CHECKPOINT_FILE, read_checkpoint
from suoi.protocol.records import iter_records
from suoi.testing.inprocess import InProcessCluster
from tests.conftest import wait_until
from tests.integration.test_loop_fsync_stall import BOUND_S, TOPIC, Prober, SlowFsyncs


@pytest.fixture
def cluster() -> Iterator[InProcessCluster]:
    with InProcessCluster(1, overrides={"log.segment.bytes": "4096", "log.cleaner.backoff.ms": "200"}) as c:
        yield c


def test_a_cleaning_fsyncs_nothing_on_the_loop(cluster: InProcessCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    cluster.create_topic(TOPIC, partitions=1, replication_factor=1,
                         configs={"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.5"})
    node = next(iter(cluster.nodes.values()))
    plog = wait_until(lambda: node.broker.logs.get_log(TOPIC, 0), timeout=20, message="the log")
    slow = SlowFsyncs()
    monkeypatch.setattr(os, "fsync", slow)
    producer = KafkaProducer(bootstrap_servers=cluster.bootstrap, acks=1, linger_ms=0)
    try:
        with Prober([node]) as probe:
            for i in range(300):  # 20 keys, 15 versions each: ~9 segments, most of them superseded
                producer.send(TOPIC, key=b"k%02d" % (i % 20), value=b"v%05d" % i + b"x" * 100, partition=0)
                if i % 20 == 19:
                    producer.flush(30)
            wait_until(lambda: (plog.directory / CHECKPOINT_FILE).exists() and slow.synced(
                str(plog.directory / CHECKPOINT_FILE)), timeout=60, message="a cleaning committed and its checkpoint synced")
            first_dirty = read_checkpoint(plog.directory).first_dirty_offset
            assert 0 < first_dirty <= 300
            records = [(r.key, r.value) for r in iter_records(plog.read(0, 1 << 30))]
            assert len(records) < 300  # superseded versions went
            assert dict(records) == {b"k%02d" % k: b"v%05d" % (280 + k) + b"x" * 100 for k in range(20)}
            names = [p.name for p in plog.directory.iterdir()]
            assert not [n for n in names if n.endswith((".cleaned", ".swap", ".deleted"))], names
            assert probe.count > 20
            longest = probe.longest
        cleaner_fsyncs = [p for p, _ in slow.made if p.endswith(".cleaned") or p == str(plog.directory)]
        assert cleaner_fsyncs  # the cleaned files and the directory were synced (on other threads)
        assert slow.on_loops() == []
        assert longest < BOUND_S, f"an ApiVersions round trip took {longest * 1000:.0f} ms"
    finally:
        producer.close()
