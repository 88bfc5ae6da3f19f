"""Idempotent producers across leader failover: a 3-node cluster, producers with
enable.idempotence=true, acks=all and up to 5 requests in flight, writing fast (many small
batches in flight at any time) while a nemesis kills (SIGKILL), stops, pauses and isolates the
leaders of the topic's partitions. librdkafka retries every batch across the leader changes
(the new leader must answer a retried batch it already has as a duplicate, and refuse a gap with
OUT_OF_ORDER_SEQUENCE only when there really is one). Afterwards: no acknowledged record lost, none
duplicated, none reordered within a producer and partition, no producer stopped by a fatal
(sequence) error, and every replica's log byte-identical.

SUOI_NEMESIS_SEED=<n> replays a fault sequence; SUOI_FAULTS_SECONDS=<s> runs the faults longer
(default 8 s, to keep CI short).
"""

from __future__ import annotations

import os
import random

import pytest

from tests.faults.checker import ProducerWorkload, check, consume_all
from tests.faults.cluster import ReplicatedCluster
from tests.faults.nemesis import run_nemesis
from tests.faults.nemesis import seed as nemesis_seed
from tests.faults.test_replication_faults import (
    PRODUCER,
    REJOIN_S,
    cluster,
    create,
    progress,
    wait_full_isr,
    wait_identical_replicas,
)

pytestmark = pytest.mark.slow
__all__ = ["cluster"]  # the fixture

FAULT_SECONDS = float(os.environ.get("SUOI_FAULTS_SECONDS", "8"))
#: Many small batches in flight: each producer sends ~500 values/s in batches of a few.
FAST = {**PRODUCER, "linger.ms": 2, "max.in.flight.requests.per.connection": 5, "retry.backoff.ms": 50}


def a_leader(cluster: ReplicatedCluster, topic: str, partition: int) -> int | None:
    """The leader of `partition` as a healthy node sees it (None if there is none right now)."""
    try:
        leader = cluster.leader_of(topic, partition)
    except Exception:  # no healthy node answered: a random victim this time
        return None
    return leader if leader in cluster.ids else None


def test_idempotent_producers_across_leader_failover(cluster: ReplicatedCluster) -> None:
    seed = nemesis_seed()
    rng = random.Random(seed)
    topic = create(cluster, list(cluster.ids))
    w = ProducerWorkload(cluster.bootstrap, topic, producers=2, interval_s=0.002, config=FAST).start()
    done: list[str] = []
    try:
        progress(w, 500)
        run_nemesis(cluster, rng, FAULT_SECONDS, done, faults=("kill", "stop", "pause", "isolate", "isolate-reset"),
                    hold=(1.5, 3.0), rejoin_s=REJOIN_S,
                    victim=lambda: a_leader(cluster, topic, rng.randrange(3)))
        cluster.heal()
        wait_full_isr(cluster, topic, 3)
        progress(w, 500, timeout=REJOIN_S)
        sent = w.stop(flush_timeout=60)
        assert not w.fatal, f"producers stopped by fatal errors: {w.fatal}; {w.progress_report()}"
        wait_full_isr(cluster, topic, 3)
        report = check(sent, consume_all(cluster.bootstrap, topic, timeout=60))
        assert report.ok, f"{report.summary()}\nproducer errors: {w.errors}\n{cluster.dump()}"
        assert report.acked >= 1000, report.summary()
        wait_identical_replicas(cluster, topic, 3)
    except BaseException as exc:
        exc.add_note(f"nemesis seed {seed}: {done}")
        raise
    print(f"nemesis seed {seed}: {done}\n{report.summary()}")
