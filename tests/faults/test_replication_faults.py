"""Partition replication under faults: a 3-node cluster (tests/faults/cluster.py) with every
peer link behind a fault-injecting proxy, idempotent acks=all producers and a transactional one
writing all the time and a read_committed consumer following the topic (tests/faults/checker.py,
workloads.py), and a nemesis that kills (SIGKILL), pauses (SIGSTOP) and cuts nodes off the
network. After the faults heal, transactions must commit again; then a consumer reads everything
back and the checker must find no acknowledged write lost, duplicated or reordered, no
transaction read in part, no record served during the run that the final log lacks (read past the
high watermark); every replica's log must be byte-identical.

Topics have replication factor 3 and min.insync.replicas=2. Failure detection is fast
(broker.session.timeout.ms=3000, replica.lag.time.max.ms=2000) so each test stays well under a
minute. Clients reach every node directly (CLIENT listener); only peer traffic is cut.
"""

from __future__ import annotations

import dataclasses
import random
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from kio.schema.errors import ErrorCode

from suoi.protocol.records import build_batch
from tests.faults.checker import CheckReport, ProducerWorkload, consume_all
from tests.faults.cluster import ReplicatedCluster, wait_until
from tests.faults.nemesis import run_nemesis
from tests.faults.nemesis import seed as nemesis_seed
from tests.faults.workloads import Writers
from tests.integration.support import ms, produce_req, read_all
from tests.rawclient import RawClient

pytestmark = pytest.mark.slow

OVERRIDES = {
    "replica.lag.time.max.ms": "2000",
    "replica.fetch.backoff.ms": "200",
    "replica.fetch.wait.max.ms": "200",
    "replica.socket.timeout.ms": "3000",
    "offsets.topic.num.partitions": "3",
    "transaction.state.log.num.partitions": "3",
}
#: Leader election / ISR change after a fault, with slack for a loaded 2-CPU runner.
FAILOVER_S = 25.0
#: A node back (restarted or healed) and caught up.
REJOIN_S = 40.0
PRODUCER = {"message.timeout.ms": 45000, "request.timeout.ms": 4000, "linger.ms": 5}
TXN_PRODUCER = {**PRODUCER, "transaction.timeout.ms": 60000}


@pytest.fixture
def cluster(make_cluster: Callable[..., ReplicatedCluster]) -> ReplicatedCluster:
    return make_cluster(overrides=OVERRIDES)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create(cluster: ReplicatedCluster, leaders: list[int], config: dict[str, str] | None = None) -> str:
    """A topic with one partition per entry of `leaders`, each led by that node first (preferred
    leader), replicated on all three, min.insync.replicas=2 (and `config`); waits for full ISRs."""
    topic = unique("faults")
    ids = cluster.ids
    assignment = [[lead] + [i for i in ids if i != lead] for lead in leaders]
    states = cluster.create_topic(topic, assignment=assignment, config={"min.insync.replicas": "2", **(config or {})})
    assert [s.leader for _, s in sorted(states.items())] == leaders
    wait_full_isr(cluster, topic, len(leaders), timeout=FAILOVER_S)
    return topic


def wait_full_isr(cluster: ReplicatedCluster, topic: str, partitions: int, timeout: float = REJOIN_S) -> None:
    def full() -> bool:
        views = [cluster.describe(topic, via=i) for i in cluster.healthy()]
        return all(len(v) == partitions and all(sorted(s.isr) == sorted(s.replicas) and s.leader >= 0
                                                 for s in v.values()) for v in views)

    def views() -> str:  # which node sees which ISR: tells a follower that never caught up from a stale view
        lines = [f"node {i}: " + ", ".join(f"p{p} leader {s.leader} isr {list(s.isr)}" for p, s in
                                          sorted(cluster.describe(topic, via=i).items())) for i in cluster.healthy()]
        return "\n".join(["ISR as each healthy node sees it:", *lines, cluster.dump()])

    wait_until(full, timeout, f"every replica of {topic} in sync", interval=0.2, on_timeout=views)


def workload(cluster: ReplicatedCluster, topic: str, producers: int = 3) -> Writers:
    return Writers(cluster.bootstrap, topic, producers=producers, interval_s=0.02, config=PRODUCER,
                   txn_config=TXN_PRODUCER).start()


def finish(cluster: ReplicatedCluster, w: Writers, topic: str, partitions: int, min_acked: int) -> CheckReport:
    """Heal every cut, wait until every replica is in sync and writes and transactions go on,
    stop writing, read everything back and check; at least `min_acked` values must have been
    acknowledged."""
    cluster.heal()
    wait_full_isr(cluster, topic, partitions)
    progress(w, 100, timeout=REJOIN_S)
    w.wait_committed(w.committed() + 2, timeout=REJOIN_S)
    w.stop(flush_timeout=60)
    assert not w.fatal and not w.txn.fatal, f"producers stopped by fatal errors: {w.fatal} {w.txn.fatal}"
    wait_full_isr(cluster, topic, partitions)
    report = w.check(consume_all(cluster.bootstrap, topic, timeout=45))
    assert report.ok, f"{report.summary()}\nproducer errors: {w.errors} {w.txn.errors}\n{cluster.dump()}"
    wait_identical_replicas(cluster, topic, partitions)
    assert report.acked >= min_acked, report.summary()
    print(report.summary())  # shown with pytest -rP: how much the run wrote, observed and committed
    slow = [(t.name, time.strftime("%H:%M:%S", time.localtime(time.time() - (time.monotonic() - t.started))),
             round(t.ended - t.started, 1)) for t in w.txn.transactions() if t.ended - t.started > 5]
    print(f"transactions over 5 s (name, began, seconds): {slow}; transactional producer errors: {w.txn.errors}")
    return report


def log_bytes(cluster: ReplicatedCluster, node: int, topic: str, partition: int) -> bytes:
    directory: Path = cluster.nodes[node].data_dir / f"{topic}-{partition}"
    return b"".join(f.read_bytes() for f in sorted(directory.glob("*.log")))


def wait_identical_replicas(cluster: ReplicatedCluster, topic: str, partitions: int) -> None:
    """Every replica of every partition holds the same bytes (offsets, epochs, batches)."""
    def same() -> bool:
        return all(len({log_bytes(cluster, n, topic, p) for n in cluster.ids}) == 1 for p in range(partitions))

    wait_until(same, 20, f"identical replica logs of {topic}", interval=0.2, on_timeout=cluster.dump)


def progress(w: ProducerWorkload, more: int, timeout: float = FAILOVER_S) -> None:
    """Until `more` further values are acknowledged."""
    w.wait_acked(w.acked() + more, timeout)


def raw_produce(cluster: ReplicatedCluster, node: int, topic: str, partition: int, value: bytes) -> int:
    """acks=all Produce sent straight to `node` with a 3 s timeout; its error code (an answer is
    awaited for 8 s: none counts as REQUEST_TIMED_OUT)."""
    request = dataclasses.replace(produce_req(topic, partition, build_batch([(None, value)]), acks=-1),
                                  timeout=ms(3000))  # type: ignore[arg-type]
    try:
        with RawClient(cluster.client_address(node), timeout=8) as c:
            r = c.request(request)
    except TimeoutError:
        return int(ErrorCode.request_timed_out)
    return int(r.responses[0].partition_responses[0].error_code)


def non_controller(cluster: ReplicatedCluster) -> int:
    controller = cluster.wait_controller()
    return next(i for i in cluster.ids if i != controller)


def writing(cluster: ReplicatedCluster, victim: int) -> tuple[str, Writers, list[int]]:
    """A topic whose partition 0 is led by `victim` and partitions 1, 2 by the others, and
    producers writing to it (150 values acknowledged): (topic, workload, the other nodes)."""
    others = [i for i in cluster.ids if i != victim]
    topic = create(cluster, [victim, *others])
    w = workload(cluster, topic)
    progress(w, 150)
    return topic, w, others


# ---------------------------------------------------------------------------- scenarios


def test_leader_killed_and_restarted_under_load(cluster: ReplicatedCluster) -> None:
    victim = non_controller(cluster)
    topic, w, others = writing(cluster, victim)
    cluster.kill(victim)
    assert cluster.wait_leader(topic, 0, not_in=[victim], timeout=FAILOVER_S) in others
    cluster.wait_isr(topic, 0, others, timeout=FAILOVER_S)
    progress(w, 150)
    cluster.start_node(victim)
    finish(cluster, w, topic, 3, min_acked=400)


def test_isolated_leader_never_acks_and_is_replaced(cluster: ReplicatedCluster) -> None:
    """The leader of partition 0 is cut off from its peers (clients still reach it). It must not
    acknowledge an acks=all write on its own; the majority elects a new leader and keeps
    writing; after the heal the old leader truncates whatever it appended alone and catches up."""
    victim = non_controller(cluster)
    topic, w, others = writing(cluster, victim)

    cluster.isolate(victim)
    # straight to the isolated leader: no acknowledgement (it cannot reach the ISR or the controller)
    assert raw_produce(cluster, victim, topic, 0, b"minority-write") != ErrorCode.none
    # ... and it never serves what it appended alone (above its high watermark) to a consumer
    assert b"minority-write" not in [value for _, value in read_all(cluster.client_address(victim), topic, 0)]
    new = cluster.wait_leader(topic, 0, not_in=[victim], timeout=FAILOVER_S)
    assert new in others
    cluster.wait_isr(topic, 0, others, timeout=FAILOVER_S)
    progress(w, 150)
    assert raw_produce(cluster, victim, topic, 0, b"minority-write-2") != ErrorCode.none
    finish(cluster, w, topic, 3, min_acked=400)  # heals: the old leader truncates and catches up


def test_isolated_follower_leaves_the_isr_and_returns(cluster: ReplicatedCluster) -> None:
    follower = non_controller(cluster)
    leader = next(i for i in cluster.ids if i != follower)
    topic = create(cluster, [leader])
    w = workload(cluster, topic)
    progress(w, 100)

    # the proxy tells the follower's fetches apart by their client id, so it can hold them alone
    assert str(follower) in cluster.replication_routes[leader].stats().sources
    cluster.isolate(follower)
    survivors = [i for i in cluster.ids if i != follower]
    cluster.wait_isr(topic, 0, survivors, timeout=FAILOVER_S, via=leader)
    assert cluster.leader_of(topic, 0, via=leader) == leader  # no election: the leader kept its ISR quorum
    progress(w, 150)  # min.insync.replicas=2 still met
    finish(cluster, w, topic, 1, min_acked=350)  # heals: the follower catches up and rejoins the ISR


def test_paused_leader_comes_back_as_a_follower(cluster: ReplicatedCluster) -> None:
    """SIGSTOP the leader past the session timeout (a long GC pause, a stalled VM): it is fenced
    and replaced; on SIGCONT it still believes it leads until it learns otherwise, must not
    acknowledge anything as the old leader, and rejoins as a follower."""
    victim = non_controller(cluster)
    topic, w, others = writing(cluster, victim)

    cluster.pause(victim)
    assert cluster.wait_leader(topic, 0, not_in=[victim], timeout=FAILOVER_S) in others
    progress(w, 150)
    cluster.resume(victim)
    wait_full_isr(cluster, topic, 3)
    assert cluster.leader_of(topic, 0) in others
    finish(cluster, w, topic, 3, min_acked=400)


def test_controller_and_leader_cut_off_together(cluster: ReplicatedCluster) -> None:
    """The active controller also leads partition 0, and is cut off: a new controller must be
    elected before the partition can get a new leader."""
    controller = cluster.wait_controller()
    topic, w, others = writing(cluster, controller)

    cluster.isolate(controller)
    cluster.wait_controller(not_in=[controller], timeout=FAILOVER_S)
    assert cluster.wait_leader(topic, 0, not_in=[controller], timeout=FAILOVER_S) in others
    assert raw_produce(cluster, controller, topic, 0, b"minority-write") != ErrorCode.none
    progress(w, 150, timeout=FAILOVER_S * 2)
    finish(cluster, w, topic, 3, min_acked=400)


def test_nemesis_random_faults(cluster: ReplicatedCluster) -> None:
    """A seeded random sequence of faults, one node at a time (so a majority always remains):
    kill + restart, clean stop (controlled shutdown, final flush, clean-shutdown marker) + start,
    pause + resume, isolate (connections blackholed or reset) + heal, each held 3-6 s, while
    three producers and a transactional one write to three partitions. SUOI_NEMESIS_SEED=<n>
    replays a sequence."""
    seed = nemesis_seed()
    rng = random.Random(seed)
    topic = create(cluster, list(cluster.ids))
    w = workload(cluster, topic)
    progress(w, 100)
    done: list[str] = []
    try:
        run_nemesis(cluster, rng, 24.0, done, rejoin_s=REJOIN_S)
    except BaseException as exc:
        exc.add_note(f"nemesis seed {seed}: {done}")
        raise
    print(f"nemesis seed {seed}: {done}")
    try:
        finish(cluster, w, topic, 3, min_acked=300)
    except AssertionError as exc:
        exc.add_note(f"nemesis seed {seed}: {done}")
        raise
