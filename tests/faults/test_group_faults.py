"""Consumer groups under faults: a 3-node cluster (tests/faults/cluster.py), idempotent producers
writing a 3-partition topic, a group of consumers (tests/faults/groups.py) consuming it and
committing what they processed, and a group of exactly-once copiers (tests/faults/eos.py), while
a nemesis kills (SIGKILL), stops, pauses and cuts off nodes
-- most often the group's coordinator, so its __consumer_offsets partition moves -- and consumers
leave and join (rebalances). Afterwards: every acknowledged commit is still what OffsetFetch
answers until a newer commit replaced it (committed offsets never go backwards), no record was
skipped by the group (at-least-once), nothing consumed is missing from the final log, every record
is copied exactly once, and the producers' history checks out as in test_replication_faults.

SUOI_NEMESIS_SEED=<n> replays a fault sequence; SUOI_FAULTS_SECONDS=<s> runs the faults longer
(default 6 s, to keep CI short).
"""

from __future__ import annotations

import os
import random
from typing import Any

import pytest
from kio.schema.errors import ErrorCode
from kio.schema.find_coordinator.v4.request import FindCoordinatorRequest
from kio.static.primitive import i8

from tests.faults.checker import ProducerWorkload, check, consume_all
from tests.faults.cluster import ReplicatedCluster, wait_until
from tests.faults.eos import Copiers, check_copied
from tests.faults.groups import GroupWorkload
from tests.faults.nemesis import run_nemesis
from tests.faults.nemesis import seed as nemesis_seed
from tests.faults.test_replication_faults import FAILOVER_S, PRODUCER, REJOIN_S, cluster, create, progress, wait_full_isr
from tests.rawclient import RawClient

pytestmark = pytest.mark.slow
__all__ = ["cluster"]  # the fixture

#: How long the nemesis runs (seconds).
FAULT_SECONDS = float(os.environ.get("SUOI_FAULTS_SECONDS", "6"))


def coordinator_of(cluster: ReplicatedCluster, group: str) -> int | None:
    """The node a healthy node names as `group`'s coordinator (None if none can say right now)."""
    for node in cluster.healthy():
        try:
            with RawClient(cluster.client_address(node), timeout=3) as c:
                (found,) = c.request(FindCoordinatorRequest(key_type=i8(0), coordinator_keys=(group,))).coordinators
        except (OSError, TimeoutError):
            continue
        if found.error_code == ErrorCode.none:
            return int(found.node_id)
    return None


def end_offsets(cluster: ReplicatedCluster, topic: str, partitions: list[int]) -> dict[int, int]:
    import confluent_kafka

    c: Any = confluent_kafka.Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "watermarks"})
    try:
        return {p: c.get_watermark_offsets(confluent_kafka.TopicPartition(topic, p), timeout=10)[1] for p in partitions}
    finally:
        c.close()


def test_group_offsets_and_exactly_once_copy_under_faults(cluster: ReplicatedCluster) -> None:
    """Two groups read one topic while the nemesis hits either group's coordinator (two times in
    three) or any node, and a member of each group is replaced after every fault: a plain group
    (tests/faults/groups.py: committed offsets never go backwards, no record skipped) and copiers
    doing consume-transform-produce into a second topic (tests/faults/eos.py: their offsets are
    TxnOffsetCommits in the same transactions; every input record the group committed as consumed
    is in the output exactly once, and nothing else is)."""
    seed = nemesis_seed()
    rng = random.Random(seed)
    source, sink = create(cluster, list(cluster.ids)), create(cluster, list(cluster.ids))
    producers = ProducerWorkload(cluster.bootstrap, source, producers=2, interval_s=0.02, config=PRODUCER).start()
    group = GroupWorkload(cluster.bootstrap, source, consumers=3).start()
    copiers = Copiers(cluster.bootstrap, source, sink, copiers=2).start()
    done: list[str] = []

    def victim() -> int | None:
        return coordinator_of(cluster, rng.choice([group.group, copiers.group])) if rng.random() < 2 / 3 else None

    def rebalance() -> None:
        group.rotate()
        copiers.rotate()

    try:
        progress(producers, 50)
        wait_until(lambda: len(group.committed_offsets()) == 3 and group.assignments >= 3 and copiers.committed_txns >= 3,
                   FAILOVER_S, "both groups consuming",
                   on_timeout=lambda: f"errors {group.errors[-5:]} {copiers.errors[-5:]}, failed {copiers.failed}")
        run_nemesis(cluster, rng, FAULT_SECONDS, done, faults=("kill", "stop", "pause", "isolate"), hold=(2.0, 4.0),
                    rejoin_s=REJOIN_S, after=rebalance, victim=victim)
        cluster.heal()
        wait_full_isr(cluster, source, 3)
        progress(producers, 50, timeout=REJOIN_S)
        sent = producers.stop(flush_timeout=60)
        assert not producers.fatal, f"producers stopped by fatal errors: {producers.fatal}"
        ends = end_offsets(cluster, source, [0, 1, 2])
        wait_until(lambda: all(group.committed_offsets().get(p, 0) >= e for p, e in ends.items())
                   and copiers.committed([0, 1, 2]) == ends, REJOIN_S * 2,
                   f"both groups committing up to the end offsets {ends}", interval=0.5,
                   on_timeout=lambda: f"group committed {group.committed_offsets()}, errors {group.errors[-10:]}; "
                   f"copiers committed {copiers.committed([0, 1, 2])}, errors {copiers.errors[-10:]}, "
                   f"failed {copiers.failed}")
        committed_end = group.stop()
        copiers.stop()
        assert not copiers.failed, copiers.failed
        final = consume_all(cluster.bootstrap, source, timeout=45)
        produced = check(sent, final)
        assert produced.ok, produced.summary()
        report = group.check(sent, final, committed_end)
        assert report.ok, f"{report.summary()}\nconsumer errors: {group.errors[-20:]}\n{cluster.dump()}"
        assert committed_end == ends, f"final committed offsets {committed_end}, end offsets {ends}"
        assert report.consumed >= produced.acked and report.commits_acked > 10, report.summary()
        copied = check_copied(final, consume_all(cluster.bootstrap, sink, timeout=45), copiers.committed([0, 1, 2]))
        assert copied.ok, (f"{copied.summary()}\nhow: {copiers.explain(final, copied.duplicated + copied.missing)}\n"
                           f"copier errors: {copiers.errors[-30:]}\n{cluster.dump()}")
        assert copied.output == copied.input == len(final), copied.summary()
    except BaseException as exc:
        exc.add_note(f"nemesis seed {seed}: {done}")
        raise
    print(f"nemesis seed {seed}: {done}\ngroup: {report.summary()}\ncopy: {copied.summary()}; transactions "
          f"committed {copiers.committed_txns}, aborted {copiers.aborted_txns}; copiers left hanging in "
          f"librdkafka: {sorted(copiers.abandoned)}")
