"""Consumer groups under faults: a 3-node cluster (tests/faults/cluster.py), idempotent producers
writing a 3-partition topic, and a group of consumers (tests/faults/groups.py) consuming it and
committing what they processed, while a nemesis kills (SIGKILL), stops, pauses and cuts off nodes
-- most often the group's coordinator, so its __consumer_offsets partition moves -- and consumers
leave and join (rebalances). Afterwards: every acknowledged commit is still what OffsetFetch
answers until a newer commit replaced it (committed offsets never go backwards), no record was
skipped by the group (at-least-once), nothing consumed is missing from the final log, and the
producers' history checks out as in test_replication_faults.

SUOI_NEMESIS_SEED=<n> replays a fault sequence; SUOI_FAULTS_SECONDS=<s> runs the faults longer
(default 12 s, to keep CI short).
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
FAULT_SECONDS = float(os.environ.get("SUOI_FAULTS_SECONDS", "12"))


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


def test_group_commits_survive_coordinator_failover(cluster: ReplicatedCluster) -> None:
    seed = nemesis_seed()
    rng = random.Random(seed)
    topic = create(cluster, list(cluster.ids))
    producers = ProducerWorkload(cluster.bootstrap, topic, producers=2, interval_s=0.02, config=PRODUCER).start()
    group = GroupWorkload(cluster.bootstrap, topic, consumers=3).start()
    done: list[str] = []
    try:
        progress(producers, 50)
        wait_until(lambda: len(group.committed_offsets()) == 3 and group.assignments >= 3, FAILOVER_S,
                   "the group consuming every partition")
        # the coordinator is the victim two times in three; a consumer is replaced after every fault
        run_nemesis(cluster, rng, FAULT_SECONDS, done, faults=("kill", "stop", "pause", "isolate"), hold=(2.0, 4.0),
                    rejoin_s=REJOIN_S, after=group.rotate,
                    victim=lambda: coordinator_of(cluster, group.group) if rng.random() < 2 / 3 else None)
        cluster.heal()
        wait_full_isr(cluster, topic, 3)
        progress(producers, 50, timeout=REJOIN_S)
        sent = producers.stop(flush_timeout=60)
        assert not producers.fatal, f"producers stopped by fatal errors: {producers.fatal}"
        ends = end_offsets(cluster, topic, group.partitions)
        wait_until(lambda: all(group.committed_offsets().get(p, 0) >= e for p, e in ends.items()), REJOIN_S,
                   f"the group committing up to the end offsets {ends}",
                   on_timeout=lambda: f"committed {group.committed_offsets()}; errors {group.errors[-10:]}")
        committed_end = group.stop()
        final = consume_all(cluster.bootstrap, topic, timeout=45)
        produced = check(sent, final)
        assert produced.ok, produced.summary()
        report = group.check(sent, final, committed_end)
        assert report.ok, f"{report.summary()}\nconsumer errors: {group.errors[-20:]}\n{cluster.dump()}"
        assert committed_end == ends, f"final committed offsets {committed_end}, end offsets {ends}"
        assert report.consumed >= produced.acked and report.commits_acked > 20, report.summary()
    except BaseException as exc:
        exc.add_note(f"nemesis seed {seed}: {done}")
        raise
    print(f"nemesis seed {seed}: {done}\n{report.summary()}")


def test_exactly_once_copy_under_faults(cluster: ReplicatedCluster) -> None:
    """Consume-transform-produce (tests/faults/eos.py) from one topic to another while the nemesis
    hits the group's coordinator (its __consumer_offsets partition holds the transactional offset
    commits) or any node, and copiers leave and join: every input record the group committed as
    consumed is in the output exactly once, and nothing else is."""
    seed = nemesis_seed()
    rng = random.Random(seed)
    source, sink = create(cluster, list(cluster.ids)), create(cluster, list(cluster.ids))
    producers = ProducerWorkload(cluster.bootstrap, source, producers=2, interval_s=0.02, config=PRODUCER).start()
    copiers = Copiers(cluster.bootstrap, source, sink, copiers=2).start()
    done: list[str] = []
    try:
        progress(producers, 50)
        wait_until(lambda: copiers.committed_txns >= 5, FAILOVER_S, "copiers committing transactions",
                   on_timeout=lambda: f"errors {copiers.errors[-10:]}, failed {copiers.failed}")
        run_nemesis(cluster, rng, FAULT_SECONDS, done, faults=("kill", "stop", "pause", "isolate"), hold=(2.0, 4.0),
                    rejoin_s=REJOIN_S, after=copiers.rotate,
                    victim=lambda: coordinator_of(cluster, copiers.group) if rng.random() < 1 / 2 else None)
        cluster.heal()
        wait_full_isr(cluster, source, 3)
        progress(producers, 50, timeout=REJOIN_S)
        sent = producers.stop(flush_timeout=60)
        ends = end_offsets(cluster, source, [0, 1, 2])
        wait_until(lambda: copiers.committed([0, 1, 2]) == ends, REJOIN_S * 2, f"the copiers committing up to {ends}",
                   interval=0.5, on_timeout=lambda: f"committed {copiers.committed([0, 1, 2])}; "
                   f"errors {copiers.errors[-10:]}, failed {copiers.failed}")
        copiers.stop()
        assert not copiers.failed, copiers.failed
        source_final = consume_all(cluster.bootstrap, source, timeout=45)
        assert check(sent, source_final).ok
        report = check_copied(source_final, consume_all(cluster.bootstrap, sink, timeout=45), copiers.committed([0, 1, 2]))
        assert report.ok, f"{report.summary()}\ncopier errors: {copiers.errors[-30:]}\n{cluster.dump()}"
        assert report.output == report.input, report.summary()
    except BaseException as exc:
        exc.add_note(f"nemesis seed {seed}: {done}")
        raise
    print(f"nemesis seed {seed}: {done}\n{report.summary()}; transactions committed {copiers.committed_txns}, "
          f"aborted {copiers.aborted_txns}")
