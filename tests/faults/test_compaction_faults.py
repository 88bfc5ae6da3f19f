"""A compacted topic (cleanup.policy=compact) under faults: a 3-node cluster, idempotent producers
overwriting and deleting (tombstones) their keys and a transactional one whose aborted writes sit
between its committed ones (tests/faults/compaction.py), while every replica's log cleaner compacts
small segments and a nemesis kills, stops, pauses and cuts off nodes (most often a leader).
Afterwards, for every key the latest acknowledged (committed) write survives (a deleted key stays
deleted or keeps its tombstone), compaction kept every surviving record's offset, and every
replica's compacted log on disk holds the same latest value per key as the leaders serve. Beside
it, fast idempotent producers write a plain topic (exactly once, in order, across leader changes).

SUOI_NEMESIS_SEED=<n> replays a fault sequence; SUOI_FAULTS_SECONDS=<s> runs the faults longer
(default 6 s, to keep CI short).
"""

from __future__ import annotations

import os
import random

import pytest

from tests.faults.checker import ProducerWorkload, check, consume_all, wait_for_count
from tests.faults.cluster import ReplicatedCluster, wait_until
from tests.faults.compaction import KeyedTxnWorkload, KeyedWorkload, check_compacted, keyed, latest, replica_latest
from tests.faults.nemesis import run_nemesis
from tests.faults.nemesis import seed as nemesis_seed
from tests.faults.test_replication_faults import (
    OVERRIDES,
    PRODUCER,
    REJOIN_S,
    TXN_PRODUCER,
    create,
    progress,
    wait_full_isr,
    wait_identical_replicas,
)

pytestmark = pytest.mark.slow

FAULT_SECONDS = float(os.environ.get("SUOI_FAULTS_SECONDS", "6"))
#: Small segments that roll often, cleaned as soon as anything is dirty, tombstones dropped soon.
COMPACTED = {"cleanup.policy": "compact", "segment.bytes": "8192", "segment.ms": "500",
             "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "15000"}
# (tombstones outlive a follower's absence: one that comes back after the leader cleaned a tombstone
# away keeps the key's older value -- Kafka's rule: delete.retention.ms must cover how long replicas lag)
#: Many small batches in flight: each fast producer sends ~500 values/s in batches of a few.
FAST = {**PRODUCER, "linger.ms": 2, "max.in.flight.requests.per.connection": 5, "retry.backoff.ms": 50}


@pytest.fixture
def cluster(make_cluster: object) -> ReplicatedCluster:
    return make_cluster(overrides={**OVERRIDES, "log.cleaner.backoff.ms": "200"})  # type: ignore[operator]


def a_leader(cluster: ReplicatedCluster, topic: str, partition: int) -> int | None:
    """The leader of `partition` as a healthy node sees it (None if there is none right now)."""
    try:
        leader = cluster.leader_of(topic, partition)
    except Exception:  # no healthy node answered: a random victim this time
        return None
    return leader if leader in cluster.ids else None


def test_compaction_and_idempotence_under_leader_faults(cluster: ReplicatedCluster) -> None:
    """Two topics, one nemesis aimed at their partitions' leaders two times in three: the compacted
    one (see the module) and a plain one written fast by idempotent producers with 5 requests in
    flight (librdkafka retries every batch across the leader changes: the new leader must answer a
    batch it already has as a duplicate, and refuse with OUT_OF_ORDER_SEQUENCE only a real gap): no
    acknowledged record lost, duplicated or reordered, no producer stopped by a fatal error."""
    seed = nemesis_seed()
    rng = random.Random(seed)
    topic = create(cluster, list(cluster.ids), config=COMPACTED)
    plain = create(cluster, list(cluster.ids))
    fast = ProducerWorkload(cluster.bootstrap, plain, producers=2, interval_s=0.002, config=FAST, name="f").start()
    w = KeyedWorkload(cluster.bootstrap, topic, producers=3, keys=8, interval_s=0.01, config=PRODUCER).start()
    # a transactional writer too, every other transaction aborted: its aborted writes of a key sit between
    # committed ones (the cleaner must neither count them as the key's latest nor clean past the LSO)
    t = KeyedTxnWorkload(cluster.bootstrap, topic, producers=1, keys=4, values_per_txn=4, abort_every=2,
                         interval_s=0.05, config=TXN_PRODUCER, name="t").start()
    done: list[str] = []
    try:
        progress(w, 200)
        run_nemesis(cluster, rng, FAULT_SECONDS, done, hold=(2.0, 4.0), rejoin_s=REJOIN_S,
                    victim=lambda: a_leader(cluster, rng.choice([topic, plain]), rng.randrange(3))
                    if rng.random() < 2 / 3 else None)
        cluster.heal()
        wait_full_isr(cluster, topic, 3)
        progress(w, 100, timeout=REJOIN_S)
        progress(fast, 500, timeout=REJOIN_S)
        fast_sent = fast.stop(flush_timeout=60)
        assert not fast.fatal, f"fast producers stopped by fatal errors: {fast.fatal}; {fast.progress_report()}"
        wait_full_isr(cluster, plain, 3)
        fast_report = check(fast_sent, consume_all(cluster.bootstrap, plain, timeout=60))
        assert fast_report.ok, f"{fast_report.summary()}\nproducer errors: {fast.errors}\n{cluster.dump()}"
        assert fast_report.acked >= 1000, fast_report.summary()
        wait_identical_replicas(cluster, plain, 3)
        def committed() -> int:
            return sum(1 for x in t.transactions() if x.status == "committed")

        wait_for_count(committed, committed() + 2, REJOIN_S, lambda: f"transactions committed; {t.progress_report()}")
        t.stop(flush_timeout=60)
        t.abort_every_key()
        progress(w, 400, timeout=REJOIN_S)  # segments roll over the aborted writes and get cleaned
        sent = w.stop(flush_timeout=60)
        assert not w.fatal and not t.fatal, f"producers stopped by fatal errors: {w.fatal} {t.fatal}"
        wait_full_isr(cluster, topic, 3)
        final = consume_all(cluster.bootstrap, topic, timeout=45, record=keyed)
        report = check_compacted(w, sent, final)
        assert report.ok, f"{report.summary()}\n{cluster.dump()}"
        assert report.read < report.acked / 2, f"the cleaner compacted too little: {report.summary()}"
        aborted = t.aborted_ids()
        txn_report = check_compacted(t, t.sent_values(), final, aborted=aborted)
        assert txn_report.ok, f"transactional writer: {txn_report.summary()}\n{t.txns['t0'][-3:]}"
        assert len(aborted) >= 8 and txn_report.acked >= 4, txn_report.summary()
        served = {k: r.id for k, r in latest(final).items() if not r.tombstone}

        def differences() -> dict[int, list[tuple[str, str]]]:  # per node: (key, id) it holds or lacks
            out = {}
            for node in cluster.ids:
                held = {k: v for p in range(3)
                        for k, v in replica_latest(cluster.nodes[node].data_dir, topic, p, aborted).items()}
                if held != served:
                    out[node] = sorted(set(held.items()) ^ set(served.items()))
            return out

        wait_until(lambda: not differences(), 20, "every replica holding the latest value of every key",
                   on_timeout=lambda: f"served {sorted(served.items())}, replicas differ: {differences()}")
    except BaseException as exc:
        exc.add_note(f"nemesis seed {seed}: {done}")
        raise
    print(f"nemesis seed {seed}: {done}\n{report.summary()}\ntransactional: {txn_report.summary()}\n"
          f"fast idempotent: {fast_report.summary()}")
