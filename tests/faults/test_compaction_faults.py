"""A compacted topic (cleanup.policy=compact) under faults: a 3-node cluster, idempotent producers
overwriting and deleting (tombstones) their keys (tests/faults/compaction.py) while every replica's
log cleaner compacts small segments and a nemesis kills, stops, pauses and cuts off nodes.
Afterwards, for every key the latest acknowledged write survives (a deleted key stays deleted or
keeps its tombstone), compaction kept every surviving record's offset, and every replica's
compacted log on disk holds the same latest value per key as the leaders serve.

SUOI_NEMESIS_SEED=<n> replays a fault sequence; SUOI_FAULTS_SECONDS=<s> runs the faults longer
(default 8 s, to keep CI short).
"""

from __future__ import annotations

import os
import random

import pytest

from tests.faults.checker import consume_all, wait_for_count
from tests.faults.cluster import ReplicatedCluster, wait_until
from tests.faults.compaction import KeyedTxnWorkload, KeyedWorkload, check_compacted, keyed, latest, replica_latest
from tests.faults.nemesis import run_nemesis
from tests.faults.nemesis import seed as nemesis_seed
from tests.faults.test_replication_faults import OVERRIDES, PRODUCER, REJOIN_S, TXN_PRODUCER, create, progress, wait_full_isr

pytestmark = pytest.mark.slow

FAULT_SECONDS = float(os.environ.get("SUOI_FAULTS_SECONDS", "8"))
#: Small segments that roll often, cleaned as soon as anything is dirty, tombstones dropped soon.
COMPACTED = {"cleanup.policy": "compact", "segment.bytes": "8192", "segment.ms": "500",
             "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "1000"}


@pytest.fixture
def cluster(make_cluster: object) -> ReplicatedCluster:
    return make_cluster(overrides={**OVERRIDES, "log.cleaner.backoff.ms": "200"})  # type: ignore[operator]


def test_compacted_topic_keeps_the_latest_acknowledged_value_per_key(cluster: ReplicatedCluster) -> None:
    seed = nemesis_seed()
    rng = random.Random(seed)
    topic = create(cluster, list(cluster.ids), config=COMPACTED)
    w = KeyedWorkload(cluster.bootstrap, topic, producers=3, keys=8, interval_s=0.01, config=PRODUCER).start()
    # a transactional writer too, every other transaction aborted: its aborted writes of a key sit between
    # committed ones (the cleaner must neither count them as the key's latest nor clean past the LSO)
    t = KeyedTxnWorkload(cluster.bootstrap, topic, producers=1, keys=4, values_per_txn=4, abort_every=2,
                         interval_s=0.05, config=TXN_PRODUCER, name="t").start()
    done: list[str] = []
    try:
        progress(w, 200)
        run_nemesis(cluster, rng, FAULT_SECONDS, done, hold=(2.0, 4.0), rejoin_s=REJOIN_S)
        cluster.heal()
        wait_full_isr(cluster, topic, 3)
        progress(w, 100, timeout=REJOIN_S)
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
    print(f"nemesis seed {seed}: {done}\n{report.summary()}\ntransactional: {txn_report.summary()}")
