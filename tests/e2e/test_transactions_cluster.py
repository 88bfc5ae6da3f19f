"""Transactions on a 3-node KRaft cluster whose internal topics have 3 replicas (issue 11, bug 1).

- Latency: two-topic transactions with send_offsets_to_transaction complete in well under a
  second each (tens of ms), and an acks=all producer on an unrelated topic never stalls. They
  took ~30 s from the second transaction on while the coordinator's WriteTxnMarkers shared a
  connection with the replica fetcher: the leader holds a WriteTxnMarkers answer until its
  followers have the marker, answers on a connection go in request order, so the follower
  fetch that would deliver the marker waited behind it until a 30 s timeout.
- librdkafka's own transaction test shape: several transactions (one aborted) with the
  consumer recreated in between; the recreated consumer joins quickly, every transaction
  completes (DescribeTransactions), read_committed sees each committed record once and no
  aborted one, and the group's committed offset is the last committed transaction's.
- An EndTxn(abort) sent after the next transaction's AddPartitionsToTxn was refused while the
  previous commit's markers were written succeeds (it was a fatal INVALID_TXN_STATE).
- Faults: transactions across leaders on every broker while the transaction coordinator's
  node and then another node are SIGKILLed and restarted (leaders and the coordinator move):
  checked exactly-once with a read_committed consumer, and no transaction is left in
  PrepareCommit/PrepareAbort on any node.
"""

from __future__ import annotations

import signal
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import confluent_kafka
import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from kio.schema.describe_transactions.v0.request import DescribeTransactionsRequest
from kio.schema.errors import ErrorCode
from kio.schema.find_coordinator.v4.request import FindCoordinatorRequest
from kio.schema.list_transactions.v1.request import ListTransactionsRequest

from suoi.coordinator.txn_coordinator import CONCURRENT_HOLD_S
from tests.conftest import wait_until
from tests.e2e.txn_helpers import ck_read_to_end
from tests.integration.kraft_cluster import KRaftCluster, kraft_cluster
from tests.integration.support import metadata_req
from tests.integration.test_txn_bad_input import add_partitions, end_txn, init_ok
from tests.rawclient import RawClient

pytestmark = pytest.mark.timeout(180)

#: A new group's first rebalance is not held back (Kafka's shipped server.properties).
OVERRIDES = {"group.initial.rebalance.delay.ms": "0"}
PARTITIONS = 3


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KRaftCluster]:
    with kraft_cluster(tmp_path_factory.mktemp("txn-cluster"), 3, OVERRIDES) as c:
        yield c


def create_topics(cluster: KRaftCluster, *names: str, config: dict[str, str] | None = None) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    futures = admin.create_topics([NewTopic(n, PARTITIONS, 3, config=config or {}) for n in names],
                                  operation_timeout=15)
    for f in futures.values():
        f.result(20)
    for n in names:
        cluster.wait_leaders(n, PARTITIONS)


def joined_consumer(bootstrap: str, group: str, topic: str, timeout: float = 20.0) -> tuple[confluent_kafka.Consumer,
                                                                                            float]:
    """A consumer of `group` subscribed to `topic`, once it has its assignment; and how long
    the join took (JoinGroup + SyncGroup as the client sees them)."""
    assigned = threading.Event()
    c = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                                  "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
    t0 = time.monotonic()
    c.subscribe([topic], on_assign=lambda _c, _parts: assigned.set())
    deadline = t0 + timeout
    while not assigned.is_set():
        assert time.monotonic() < deadline, f"consumer of {group} not assigned within {timeout}s"
        c.poll(0.05)
    return c, time.monotonic() - t0


def txn_producer(bootstrap: str, tid: str, **conf: Any) -> confluent_kafka.Producer:
    p = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "transactional.id": tid, "linger.ms": 0, **conf})
    p.init_transactions(30)
    return p


class Bystander:
    """An acks=all producer on its own topic, one record at a time: the longest wait for a
    delivery report while it ran."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
        self.topic = topic
        self.latencies: list[float] = []
        self.errors: list[Any] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            done: list[Any] = []
            t0 = time.monotonic()
            self.producer.produce(self.topic, b"x", on_delivery=lambda err, _m, done=done: done.append(err))
            while not done and time.monotonic() - t0 < 60:
                self.producer.poll(0.005)
            self.latencies.append(time.monotonic() - t0)
            if not done or done[0] is not None:
                self.errors.append(done[0] if done else "no delivery report within 60 s")
            self._stop.wait(0.01)

    def __enter__(self) -> Bystander:
        self._thread.start()
        wait_until(lambda: len(self.latencies) >= 3, timeout=20, message="the bystander's first deliveries")
        self.latencies.clear()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(70)
        self.producer.flush(10)


def live_bootstrap(cluster: KRaftCluster) -> str:
    """One running node's address (raw requests go to one node)."""
    return next(n.bootstrap for n in cluster.nodes.values() if n.proc is not None and n.proc.poll() is None)


def coordinator_of(cluster: KRaftCluster, key: str, key_type: int = 1) -> int:
    """The node coordinating `key` (1: a transactional id, 0: a group), once there is one."""
    def ask() -> int | None:
        with RawClient(live_bootstrap(cluster)) as c:
            [coord] = c.request(FindCoordinatorRequest(key_type=key_type, coordinator_keys=(key,))).coordinators
        return int(coord.node_id) if coord.error_code == ErrorCode.none else None
    return wait_until(ask, timeout=20, message=f"a coordinator for {key}")


def txn_state(cluster: KRaftCluster, tid: str) -> str | None:
    """`tid`'s state at its coordinator, or None while the coordinator cannot be asked (a node
    whose metadata still names a coordinator that was just killed)."""
    try:
        return str(describe_on(cluster, coordinator_of(cluster, tid), tid).transaction_state)
    except OSError:
        return None


def preparing_anywhere(cluster: KRaftCluster) -> list[str]:
    """Transactional ids in PrepareCommit/PrepareAbort on any running node."""
    stuck = []
    for node in cluster.nodes.values():
        if node.proc is None or node.proc.poll() is not None:
            continue
        with RawClient(node.bootstrap) as c:
            resp = c.request(ListTransactionsRequest(state_filters=("PrepareCommit", "PrepareAbort"),
                                                     producer_id_filters=(), duration_filter=-1))
        stuck += [t.transactional_id for t in resp.transaction_states]
    return stuck


#: What "fast, never stuck" allows on a loaded 2-core runner: a few slow ones (those in flight while
#: a node's process stalled), none near a request timeout. See `assert_fast`.
SLOW_S, SLOW_ALLOWED, STUCK_S = 1.0, 3, 5.0


def assert_fast(latencies: list[float], median_s: float, what: str) -> None:
    """Most `latencies` fast (the median under `median_s`), at most SLOW_ALLOWED over SLOW_S, none
    over STUCK_S. Not "every one under 1 s": on a loaded 2-core runner a node's process can stall
    for ~2 s (seen at load 10: the Raft followers lost their leader's fetch answers for 2 s and
    elected another, a symptom of that stall, not its cause, as no transaction request goes through
    the metadata quorum), and every record here is replicated with acks=all to all three nodes, so
    what is in flight during such a stall waits it out, as it would in Kafka (a replica leaves the
    ISR only after replica.lag.time.max.ms, 30 s). The bug this guards against (issue 11: ~30 s
    for every transaction from the second on) fails all three bounds."""
    shown = [round(x, 3) for x in latencies]
    assert statistics.median(latencies) < median_s, (what, shown)
    assert sum(x >= SLOW_S for x in latencies) <= SLOW_ALLOWED, (what, shown)
    assert max(latencies) < STUCK_S, (what, shown)


def test_two_topic_transactions_with_offsets_stay_fast_while_a_bystander_produces(cluster: KRaftCluster) -> None:
    """Two-topic transactions with send_offsets_to_transaction take tens of ms and never stick,
    and an acks=all producer on another topic is not held up by them (`assert_fast` says how
    "fast" is measured so that a loaded CI runner's stall of one node cannot fail it)."""
    run = uuid.uuid4().hex[:6]
    inp, out_a, out_b, side = (f"{n}-{run}" for n in ("in", "out-a", "out-b", "bystander"))
    create_topics(cluster, inp, out_a, out_b, side)
    bs = cluster.bootstrap
    consumer, _ = joined_consumer(bs, f"g-{run}", inp)
    p = txn_producer(bs, f"tx-{run}")

    def one_txn(i: int) -> float:
        t0 = time.monotonic()
        p.begin_transaction()
        p.produce(out_a, b"a%d" % i, partition=i % PARTITIONS)
        p.produce(out_b, b"b%d" % i, partition=(i + 1) % PARTITIONS)
        p.send_offsets_to_transaction([confluent_kafka.TopicPartition(inp, 0, i + 1)],
                                      consumer.consumer_group_metadata(), 30)
        p.commit_transaction(30)
        return time.monotonic() - t0

    try:
        for i in range(2):  # the client's first connections to each leader
            one_txn(i)
        with Bystander(bs, side) as bystander:
            latencies = [one_txn(i) for i in range(2, 22)]
        other_init = time.monotonic()
        txn_producer(bs, f"tx-other-{run}").flush(1)
        other_init = time.monotonic() - other_init
    finally:
        consumer.close()
    print(f"\ntwo-topic transactions with offsets: p50 {statistics.median(latencies) * 1000:.1f} ms, "
          f"max {max(latencies) * 1000:.1f} ms; bystander acks=all p50 "
          f"{statistics.median(bystander.latencies) * 1000:.1f} ms, max {max(bystander.latencies) * 1000:.1f} ms "
          f"({len(bystander.latencies)} records); another init_transactions {other_init * 1000:.0f} ms")
    assert bystander.errors == []
    # ~7-25 ms each since a request refused CONCURRENT_TRANSACTIONS waits for the markers (was
    # ~110 ms: librdkafka's retry backoff); the bound leaves room for a loaded runner
    assert_fast(latencies, 0.25, "transactions")
    assert_fast(bystander.latencies, 0.1, "bystander")  # ~5 ms each
    assert other_init < 5.0
    committed = ck_read_to_end(bs, out_b, list(range(PARTITIONS)), isolation="read_committed")
    assert sorted(m.value() for m in committed) == sorted(b"b%d" % i for i in range(22))


def test_transactions_with_a_recreated_consumer_complete_and_read_committed_sees_them_once(
        cluster: KRaftCluster) -> None:
    run = uuid.uuid4().hex[:6]
    inp, out = f"lrk-in-{run}", f"lrk-out-{run}"
    create_topics(cluster, inp, out)
    bs, tid, group = cluster.bootstrap, f"lrk-{run}", f"lrk-g-{run}"
    p = txn_producer(bs, tid)
    committed: list[bytes] = []
    aborted: list[bytes] = []
    join_times = []
    for rnd in range(5):
        # Recreated right after the previous commit, as librdkafka's test does: its JoinGroup and
        # SyncGroup write to __consumer_offsets while that transaction's markers are written.
        consumer, joined = joined_consumer(bs, group, inp)
        join_times.append(joined)
        try:
            values = [b"%d-%d" % (rnd, k) for k in range(10)]
            p.begin_transaction()
            for k, v in enumerate(values):
                p.produce(out, v, partition=k % PARTITIONS)
            p.send_offsets_to_transaction([confluent_kafka.TopicPartition(inp, 0, rnd + 1)],
                                          consumer.consumer_group_metadata(), 30)
            if rnd == 2:
                # Delivered first: librdkafka's abort purges what is still queued in the client, which
                # then never reaches the log (read_uncommitted below must see every aborted record).
                assert p.flush(30) == 0
                p.abort_transaction(30)
                aborted += values
            else:
                p.commit_transaction(30)
                committed += values
        finally:
            consumer.close()
    state = wait_until(lambda: (s := txn_state(cluster, tid)) and s.startswith("Complete") and s,
                       timeout=5, message="the last transaction completed")
    assert state == "CompleteCommit"
    print(f"\nrecreated consumer joined in {', '.join(f'{t * 1000:.0f}' for t in join_times)} ms")
    # JoinGroup + SyncGroup, not 2 x 5 s: below even one such 5 s wait, loose for a loaded machine
    assert max(join_times[1:]) < 4.0, join_times

    seen = [m.value() for m in ck_read_to_end(bs, out, list(range(PARTITIONS)), isolation="read_committed")]
    assert sorted(seen) == sorted(committed)
    assert not set(seen) & set(aborted)
    everything = ck_read_to_end(bs, out, list(range(PARTITIONS)), isolation="read_uncommitted")
    assert sorted(m.value() for m in everything if m.value() in aborted) == sorted(aborted)
    admin = AdminClient({"bootstrap.servers": bs})
    [offsets] = admin.list_consumer_group_offsets(
        [confluent_kafka.ConsumerGroupTopicPartitions(group, [confluent_kafka.TopicPartition(inp, 0)])]).values()
    assert offsets.result(15).topic_partitions[0].offset == 5  # the last committed transaction's
    assert preparing_anywhere(cluster) == []


def run_txn(p: confluent_kafka.Producer, topic: str, values: list[bytes], commit: bool,
            before_end: Callable[[], None] | None = None) -> bool:
    """One transaction; True if it committed. Retriable errors are retried, an abortable one
    aborts (librdkafka's documented error handling)."""
    p.begin_transaction()
    for k, v in enumerate(values):
        p.produce(topic, v, partition=k % PARTITIONS)
    if before_end is not None:
        before_end()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if commit:
                p.commit_transaction(30)
                return True
            p.abort_transaction(30)
            return False
        except confluent_kafka.KafkaException as exc:
            err = exc.args[0]
            if err.txn_requires_abort():
                commit = False
            elif not err.retriable():
                raise
    raise AssertionError(f"transaction {values[0]!r} did not end within 90 s")


@pytest.mark.slow
def test_exactly_once_while_the_coordinator_and_leaders_move(tmp_path: Path) -> None:
    with kraft_cluster(tmp_path, 3, {**OVERRIDES, "min.insync.replicas": "2"}) as cl:
        topic, tid = "eos-out", "eos-tx"
        create_topics(cl, topic)
        p = txn_producer(cl.bootstrap, tid, **{"transaction.timeout.ms": "60000", "message.timeout.ms": "60000"})
        committed: list[bytes] = []
        aborted: list[bytes] = []
        n = 0

        def some_txns(count: int, before_first_end: Callable[[], None] | None = None) -> None:
            nonlocal n
            for i in range(count):
                values = [b"%d-%d" % (n, k) for k in range(PARTITIONS * 2)]
                ok = run_txn(p, topic, values, commit=n % 4 != 3, before_end=before_first_end if i == 0 else None)
                (committed if ok else aborted).extend(values)
                n += 1

        some_txns(8)
        coordinator = coordinator_of(cl, tid)
        other = next(i for i in cl.nodes if i != coordinator)
        for victim in (coordinator, other):
            # SIGKILL while the transaction ends: the coordinator (a new one loads the
            # transaction and finishes it) or leaders of some partitions move meanwhile
            killer = threading.Timer(0.002, cl.nodes[victim].kill)
            some_txns(6, before_first_end=killer.start)
            killer.join()
            cl.nodes[victim].start()
            cl.wait_registered()
            some_txns(6)
        wait_until(lambda: preparing_anywhere(cl) == [], timeout=30, message="no transaction left in Prepare*")
        assert wait_until(lambda: txn_state(cl, tid), timeout=10) in ("CompleteCommit", "CompleteAbort")

        seen = [m.value() for m in ck_read_to_end(cl.bootstrap, topic, list(range(PARTITIONS)),
                                                  isolation="read_committed", timeout=30)]
        assert len(seen) == len(set(seen)), "a committed record was read twice"
        assert sorted(seen) == sorted(committed)
        assert not set(seen) & set(aborted)
        assert n == 32 and committed


@pytest.mark.slow
def test_a_new_coordinator_completes_a_transaction_found_in_prepare_commit(tmp_path: Path) -> None:
    """The only leader of a partition is frozen (SIGSTOP) while its transaction commits, so the
    coordinator cannot write that marker and the transaction stays in PrepareCommit; then the
    coordinator is SIGKILLed and the frozen node resumed. The next coordinator loads PrepareCommit,
    sends the markers to the partition's leader once it is back, and completes the transaction."""
    with kraft_cluster(tmp_path, 3, OVERRIDES) as cl:
        tid, spread, pinned = "failover-tx", "spread", "pinned"
        create_topics(cl, spread)
        coordinator = coordinator_of(cl, tid)
        frozen = next(i for i in cl.nodes if i != coordinator)
        admin = AdminClient({"bootstrap.servers": cl.bootstrap})
        admin.create_topics([NewTopic(pinned, num_partitions=1, replica_assignment=[[frozen]])])[pinned].result(20)
        cl.wait_leaders(pinned, 1)
        p = txn_producer(cl.bootstrap, tid, **{"transaction.timeout.ms": "120000", "message.timeout.ms": "120000"})
        values = [b"v%d" % k for k in range(6)]
        p.begin_transaction()
        for k, v in enumerate(values):
            p.produce(pinned if k % 2 else spread, v, partition=0 if k % 2 else k % PARTITIONS)
        assert p.flush(30) == 0

        frozen_proc = cl.nodes[frozen].proc
        assert frozen_proc is not None
        frozen_proc.send_signal(signal.SIGSTOP)
        errors: list[BaseException] = []
        committing = threading.Thread(target=_commit, args=(p, errors))
        try:
            committing.start()
            # PrepareCommit is replicated once the frozen node is fenced and leaves the ISR
            # (broker.session.timeout.ms); then the coordinator says which marker it waits for
            wait_until(lambda: f"for its COMMIT markers on {pinned}-0" in cl.nodes[coordinator].logs(), timeout=60,
                       interval=0.2, message="the coordinator waiting for the frozen leader's marker")
            assert describe_on(cl, coordinator, tid).transaction_state == "PrepareCommit"
            cl.nodes[coordinator].kill()
        finally:
            frozen_proc.send_signal(signal.SIGCONT)
        committing.join(130)
        assert not committing.is_alive() and errors == []  # the client retries EndTxn on the new coordinator
        wait_until(lambda: txn_state(cl, tid) == "CompleteCommit", timeout=30,
                   message="the new coordinator completed the transaction")
        assert coordinator_of(cl, tid) != coordinator
        cl.nodes[coordinator].start()
        seen = [m.value() for m in ck_read_to_end(cl.bootstrap, pinned, [0], isolation="read_committed", timeout=30)]
        seen += [m.value() for m in ck_read_to_end(cl.bootstrap, spread, list(range(PARTITIONS)),
                                                   isolation="read_committed", timeout=30)]
        assert sorted(seen) == sorted(values)
        assert preparing_anywhere(cl) == []


@pytest.mark.slow
def test_an_abort_after_an_add_refused_while_markers_are_written_succeeds(tmp_path: Path) -> None:
    """The cause of test_exactly_once_...'s INVALID_TXN_STATE, made deterministic: a commit is
    answered, its marker cannot be written yet (the partition's only replica is frozen), the
    producer's next AddPartitionsToTxn is refused (CONCURRENT_TRANSACTIONS) and it aborts, as
    librdkafka does when abort_transaction() follows a refused add (its EndTxn(abort) goes out
    because an add was sent; the coordinator held that add CONCURRENT_HOLD_S for the markers
    first). That abort succeeds; the commit completes once the node resumes."""
    internal_rf1 = {"transaction.state.log.replication.factor": "1", "transaction.state.log.min.isr": "1"}
    with kraft_cluster(tmp_path, 3, {**OVERRIDES, **internal_rf1}) as cl:
        tid = "refused-add"
        coordinator = coordinator_of(cl, tid)
        with RawClient(cl.nodes[coordinator].bootstrap) as c:
            controller = int(c.request(metadata_req(allow_create=False)).controller_id)
        frozen = next(i for i in cl.nodes if i not in (coordinator, controller))
        admin = AdminClient({"bootstrap.servers": cl.bootstrap})
        for topic, node in (("pinned", frozen), ("free", coordinator)):
            admin.create_topics([NewTopic(topic, num_partitions=1, replica_assignment=[[node]])])[topic].result(20)
            cl.wait_leaders(topic, 1)
        frozen_proc = cl.nodes[frozen].proc
        assert frozen_proc is not None
        with RawClient(cl.nodes[coordinator].bootstrap) as c:
            pid, epoch = init_ok(c, tid)
            assert add_partitions(c, tid, pid, epoch, {"pinned": [0]}) == {("pinned", 0): ErrorCode.none}
            frozen_proc.send_signal(signal.SIGSTOP)  # briefly: not long enough to be fenced
            try:
                assert end_txn(c, tid, pid, epoch, commit=True) == ErrorCode.none
                held = time.monotonic()
                refused = add_partitions(c, tid, pid, epoch, {"free": [0]})
                held = time.monotonic() - held
                assert refused == {("free", 0): ErrorCode.concurrent_transactions}
                assert held >= CONCURRENT_HOLD_S - 0.05, held  # held for the markers, then refused
                assert end_txn(c, tid, pid, epoch, commit=False) == ErrorCode.none  # was INVALID_TXN_STATE
                assert describe_on(cl, coordinator, tid).transaction_state == "PrepareCommit"
            finally:
                frozen_proc.send_signal(signal.SIGCONT)
            wait_until(lambda: describe_on(cl, coordinator, tid).transaction_state == "CompleteCommit", timeout=30,
                       message="the commit completed once the marker was written")
            # the producer carries on with real transactions; an abort of a committed one stays refused
            assert add_partitions(c, tid, pid, epoch, {"free": [0]}) == {("free", 0): ErrorCode.none}
            assert end_txn(c, tid, pid, epoch, commit=True) == ErrorCode.none
            assert end_txn(c, tid, pid, epoch, commit=False) == ErrorCode.invalid_txn_state


def _commit(p: confluent_kafka.Producer, errors: list[BaseException]) -> None:
    try:
        p.commit_transaction(120)
    except BaseException as exc:  # reported by the test thread
        errors.append(exc)


def describe_on(cluster: KRaftCluster, node_id: int, tid: str) -> Any:
    with RawClient(cluster.nodes[node_id].bootstrap) as c:
        [state] = c.request(DescribeTransactionsRequest(transactional_ids=(tid,))).transaction_states
    return state
