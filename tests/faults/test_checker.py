"""The Jepsen-style checker: its analysis on hand-made histories, and the runner against one real
broker (no anomalies normally; records deleted after their acks are reported lost)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from suoi.testing import EmbeddedBroker
from tests.conftest import wait_until
from tests.faults.checker import (
    CheckReport,
    ProducerWorkload,
    Received,
    Sent,
    Txn,
    check,
    consume_all,
    run_check,
)
from tests.faults.workloads import TailReader, TransactionalWorkload


def acked(producer: str, seq: int, partition: int, offset: int) -> Sent:
    return Sent(producer, seq, f"{producer}-{seq}", partition, "acked", offset)


def read(*items: tuple[int, int, str]) -> list[Received]:
    return [Received(p, o, v) for p, o, v in items]


def test_clean_history() -> None:
    sent = [acked("a", 0, 0, 0), acked("b", 0, 0, 1), acked("a", 1, 1, 0), acked("a", 2, 0, 2)]
    report = check(sent, read((0, 0, "a-0"), (0, 1, "b-0"), (1, 0, "a-1"), (0, 2, "a-2")))
    assert report.ok, report.summary()
    assert (report.sent, report.acked, report.failed, report.unknown, report.read) == (4, 4, 0, 0, 4)
    assert report.summary().endswith("OK")


def test_lost_means_acked_and_never_read() -> None:
    sent = [acked("a", 0, 0, 0), acked("a", 1, 0, 1), Sent("a", 2, "a-2", 0, "failed", error="X"),
            Sent("a", 3, "a-3", 0, "unknown")]
    report = check(sent, read((0, 0, "a-0")))
    assert report.lost == ["a-1"] and not report.ok
    assert "lost: 1" in report.summary() and report.summary().endswith("ANOMALIES")


def test_failed_or_unknown_values_may_or_may_not_be_in_the_log() -> None:
    sent = [Sent("a", 0, "a-0", 0, "failed", error="NOT_ENOUGH_REPLICAS"), Sent("a", 1, "a-1", 0, "unknown"),
            Sent("a", 2, "a-2", 0, "unknown"), acked("a", 3, 0, 2)]
    report = check(sent, read((0, 0, "a-0"), (0, 1, "a-1"), (0, 2, "a-3")))
    assert report.ok, report.summary()
    assert (report.failed_read, report.unknown_read) == (1, 1)


def test_duplicated_any_value_read_twice() -> None:
    sent = [acked("a", 0, 0, 0), Sent("a", 1, "a-1", 0, "unknown")]
    report = check(sent, read((0, 0, "a-0"), (0, 1, "a-1"), (0, 2, "a-1"), (0, 3, "a-0")))
    assert report.duplicated == {"a-0": 2, "a-1": 2} and not report.ok


def test_reordered_within_one_producer_and_partition() -> None:
    sent = [acked("a", 0, 0, 0), acked("a", 1, 0, 1), acked("a", 2, 0, 2), acked("b", 0, 0, 3)]
    # a-2 overtook a-0 and a-1; b's value in between is another stream
    received = read((0, 0, "a-2"), (0, 1, "b-0"), (0, 2, "a-0"), (0, 3, "a-1"))
    report = check(sent, received)
    assert report.reordered == [("a-0", "a-2"), ("a-1", "a-2")]
    assert {m[0] for m in report.moved} == {"a-0", "a-1", "a-2", "b-0"}  # the acks said otherwise, too
    assert not report.ok


def test_order_is_per_partition_and_ignores_unacked_values() -> None:
    sent = [acked("a", 0, 1, 0), acked("a", 1, 0, 0), Sent("a", 2, "a-2", 0, "unknown"), acked("a", 3, 0, 2)]
    # across partitions any order is fine; the unacked a-2 read early is no reordering
    received = read((0, 0, "a-1"), (0, 1, "a-2"), (0, 2, "a-3"), (1, 0, "a-0"))
    assert check(sent, received).ok


def test_unexpected_and_moved() -> None:
    sent = [acked("a", 0, 0, 0), acked("a", 1, 0, 1)]
    report = check(sent, read((0, 0, "a-0"), (0, 1, "zz-9"), (0, 2, "a-1")))
    assert report.unexpected == ["zz-9"]
    assert report.moved == [("a-1", (0, 1), (0, 2))]
    assert not report.ok
    # without an acked offset (e.g. acks from an old client) nothing can have moved
    report = check([Sent("a", 0, "a-0", 0, "acked")], read((0, 7, "a-0")))
    assert report.ok


def test_misordered_when_the_final_read_goes_back_or_repeats_an_offset() -> None:
    sent = [acked("a", 0, 0, 0), acked("a", 1, 0, 1), acked("a", 2, 1, 0)]
    report = check(sent, read((0, 1, "a-1"), (1, 0, "a-2"), (0, 0, "a-0")))
    assert report.misordered == [(0, 0, 1)] and not report.ok
    assert check(sent, read((0, 0, "a-0"), (1, 0, "a-2"), (0, 1, "a-1"))).ok  # partitions interleave freely


def test_phantom_a_record_served_during_the_run_that_the_final_log_does_not_hold() -> None:
    sent = [acked("a", 0, 0, 0), acked("a", 1, 0, 1), Sent("a", 2, "a-2", 0, "unknown")]
    final = read((0, 0, "a-0"), (0, 1, "a-1"))
    # a-2 was served at offset 2 (past the high watermark?) and is gone; offset 1 held another value once
    observed = read((0, 0, "a-0"), (0, 2, "a-2"), (0, 1, "a-2"), (0, 0, "a-0"))
    report = check(sent, final, observed=observed)
    assert report.phantom == [(0, 1, "a-2", "a-1"), (0, 2, "a-2", None)]
    assert report.observed == 4 and not report.ok
    assert "phantom: 2" in report.summary()
    assert check(sent, final, observed=read((0, 1, "a-1"), (0, 0, "a-0"), (0, 1, "a-1"))).ok  # re-reads are fine
    # the tail reader was never served offset 1 (e.g. it filtered it as aborted, the final read did not)
    report = check(sent, final, observed=read((0, 0, "a-0")))
    assert report.unobserved == [(0, 1)] and not report.ok and "unobserved: 1" in report.summary()


def txn(producer: str, seq: int, status: str, *values: tuple[int, int, int]) -> Txn:
    """values: (value seq, partition, offset)"""
    t = Txn(producer, seq, [Sent(producer, v, f"{producer}-{v}", p, offset=o) for v, p, o in values])
    t.settle(status)  # type: ignore[arg-type]
    return t


def test_transactions_are_read_whole_or_not_at_all() -> None:
    committed = txn("t", 0, "committed", (0, 0, 0), (1, 1, 0))
    aborted = txn("t", 1, "aborted", (2, 0, 1), (3, 1, 1))
    unknown = txn("t", 2, "unknown", (4, 0, 3), (5, 1, 3))
    whole = read((0, 0, "t-0"), (0, 3, "t-4"), (1, 0, "t-1"), (1, 3, "t-5"))
    report = check([], whole, txns=[committed, aborted, unknown])
    assert report.ok, report.summary()
    assert report.txns == {"committed": 1, "aborted": 1, "unknown": 1} and report.acked == 2
    assert check([], read((0, 0, "t-0"), (1, 0, "t-1")), txns=[committed, unknown]).ok  # unknown: none read

    report = check([], read((0, 0, "t-0"), (0, 3, "t-4"), (1, 1, "t-3")), txns=[committed, aborted, unknown])
    assert report.torn == [("t#0", 1, 2), ("t#2", 1, 2)]
    assert report.aborted_read == ["t#1"] and report.lost == ["t-1"]
    assert not report.ok and "torn: 2" in report.summary()


def test_summary_truncates_examples() -> None:
    report = CheckReport(lost=[f"a-{i}" for i in range(12)])
    assert "lost: 12 e.g. ['a-0', 'a-1', 'a-2', 'a-3', 'a-4'] (+7 more)" in report.summary()


# ---------------------------------------------------------------------------- against a broker


def create(bootstrap: str, partitions: int) -> str:
    topic = f"checker-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[topic].result(timeout=15)
    return topic


def test_runner_finds_nothing_on_a_healthy_broker(make_broker: Callable[..., EmbeddedBroker]) -> None:
    bootstrap = make_broker().bootstrap
    topic = create(bootstrap, 3)
    report, sent, received = run_check(bootstrap, topic, producers=3, messages=60)
    assert report.ok, report.summary()
    assert report.acked == report.sent == report.read == 180
    assert {s.partition for s in sent} == {0, 1, 2}
    by_partition = {p: sorted(r.offset for r in received if r.partition == p) for p in range(3)}
    assert by_partition == {p: list(range(60)) for p in range(3)}


def test_runner_reports_records_deleted_after_their_acks_as_lost(make_broker: Callable[..., EmbeddedBroker]) -> None:
    bootstrap = make_broker().bootstrap
    topic = create(bootstrap, 2)
    workload = ProducerWorkload(bootstrap, topic, producers=2, messages=20)
    sent = workload.run()
    assert all(s.status == "acked" for s in sent) and len(sent) == 40

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.delete_records([TopicPartition(topic, 0, 5)], request_timeout=15)
    for f in futures.values():
        f.result(timeout=15)

    report = check(sent, consume_all(bootstrap, topic))
    deleted = sorted(s.value for s in sent if s.partition == 0 and s.offset is not None and s.offset < 5)
    assert len(deleted) == 5
    assert sorted(report.lost) == deleted
    assert not (report.duplicated or report.reordered or report.unexpected or report.moved)
    assert not report.ok and report.read == 35


def test_transactions_and_a_tail_reader_on_a_healthy_broker(make_broker: Callable[..., EmbeddedBroker]) -> None:
    bootstrap = make_broker().bootstrap
    topic = create(bootstrap, 3)
    tail = TailReader(bootstrap, topic).start()
    w = TransactionalWorkload(bootstrap, topic, producers=2, messages=9, values_per_txn=4, abort_every=3)
    w.run(timeout=60)
    txns = w.transactions()
    assert [t.status for t in txns] == ["committed", "committed", "aborted"] * 6, w.errors
    final = consume_all(bootstrap, topic)
    wait_until(lambda: len(tail.observed) >= len(final), 20, message="the tail reader reads every committed value")
    report = check([], final, txns=txns, observed=tail.stop())
    assert report.ok, report.summary()
    assert report.read == report.acked == 48 and report.observed == 48
    assert {s.partition for t in txns for s in t.values} == {0, 1, 2}
    # the aborted values were written (and filtered by read_committed), not purged in the client
    everything = consume_all(bootstrap, topic, config={"isolation.level": "read_uncommitted"})
    assert len(everything) == 72 and check([], everything, txns=txns).aborted_read == [t.name for t in txns[2::3]]
