"""A node upgraded from a version before the follower fix (`suoi.log.txn_upgrade`): its abort
indexes lack entries (the old bug's output, made by hand: .txnindex files removed, producer
snapshots written as version 2). The restart rebuilds them before the partition serves, so a
read_committed consumer (confluent-kafka) is served no aborted record; the next start trusts the
repaired log and does not rebuild again."""

from __future__ import annotations

import json
from pathlib import Path

import confluent_kafka

from suoi.log.producer_state import SNAPSHOT_SUFFIX
from suoi.testing import EmbeddedBroker
from tests.e2e.txn_helpers import ck_read_to_end, txn_producer
from tests.integration.support import create_topic

REBUILT = "rebuilt the transaction index from the log's batch headers"


def transactions(bootstrap: str, topic: str) -> tuple[list[bytes], list[bytes]]:
    """Four transactions, the 2nd and 4th aborted, with plain records between them."""
    p = txn_producer(bootstrap, "upgrade-tx")
    plain = confluent_kafka.Producer({"bootstrap.servers": bootstrap})
    committed: list[bytes] = []
    aborted: list[bytes] = []
    for t in range(4):
        values = [b"t%d-%d" % (t, i) for i in range(5)]
        p.begin_transaction()
        for v in values:
            p.produce(topic, v, partition=0)
        if t % 2:
            assert p.flush(10) == 0  # in the log before the abort (an abort purges what is unsent)
            p.abort_transaction(20)
            aborted += values
        else:
            p.commit_transaction(20)
            committed += values
        plain.produce(topic, b"plain-%d" % t, partition=0)
        assert plain.flush(10) == 0
        committed.append(b"plain-%d" % t)
    return committed, aborted


def age(directory: Path) -> None:
    """What a replica of an old version could hold: no abort index entry, version-2 snapshots."""
    indexes = list(directory.glob("*.txnindex"))
    assert indexes, "the aborts wrote index entries"
    for index in indexes:
        index.unlink()
    for path in directory.glob(f"*{SNAPSHOT_SUFFIX}"):
        snap = json.loads(path.read_text())
        path.write_text(json.dumps({**snap, "version": 2}))


def test_read_committed_skips_aborted_records_after_an_upgrade_rebuilds_the_abort_index(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path / "node").start()
    try:
        create_topic(broker.bootstrap, "upgraded", 1)
        committed, aborted = transactions(broker.bootstrap, "upgraded")
        assert broker.stop() == 0
        age(broker.log_dirs[0] / "upgraded-0")

        broker.start()
        seen = [m.value() for m in ck_read_to_end(broker.bootstrap, "upgraded", [0], isolation="read_committed")]
        assert not set(seen) & set(aborted) and seen == committed
        assert broker.logs().count(REBUILT) == 1
        assert broker.stop() == 0

        restarted_at = len(broker.logs())
        broker.start()
        assert REBUILT not in broker.logs()[restarted_at:]  # marked: not rescanned
    finally:
        broker.close()
