"""Exactly-once copying (consume-transform-produce) and its checker.

`Copiers`: `copiers` threads, each a read_committed consumer in one group (subscribed to an input
topic) and a transactional producer, doing what Kafka Streams and every EOS application does: take
a few records, begin a transaction, produce each record's value to the same partition of an output
topic, add the consumer's positions to the transaction (TxnOffsetCommit with the group's
generation, KIP-447), commit. On an abortable error the transaction is aborted and the consumer
rewinds to the group's committed offsets (OffsetFetch, require_stable); a fenced or fatal producer
is replaced by a new one with the same transactional.id (which aborts whatever the old one left
open). Rebalances (`rotate`, faults) move partitions between copiers.

`check_copied(input_final, output_final, committed)` (pure): reading the output read_committed,
every input record below the group's committed offset of its partition is there exactly once, and
nothing else is: `missing` (committed as consumed, never produced), `duplicated` (produced by
two committed transactions), `extra` (in the output, but its input offset is not committed -- the
output committed without its offsets), `unexpected` (never in the input).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tests.faults.checker import Received
from tests.faults.workloads import _kafka_error

#: How long one transactional call (commit, abort, send_offsets, init) may take before a retry.
CALL_S = 10.0


@dataclass
class CopyReport:
    input: int = 0
    output: int = 0
    committed: dict[int, int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.duplicated or self.extra or self.unexpected)

    def summary(self) -> str:
        parts = [f"input {self.input}, output {self.output}, committed {self.committed}"]
        for name, items in (("missing", self.missing), ("duplicated", self.duplicated), ("extra", self.extra),
                            ("unexpected", self.unexpected)):
            if items:
                parts.append(f"{name}: {len(items)} e.g. {items[:5]}")
        parts.append("OK" if self.ok else "ANOMALIES")
        return "; ".join(parts)


def check_copied(input_final: Iterable[Received], output_final: Iterable[Received],
                 committed: dict[int, int]) -> CopyReport:
    """See the module."""
    inputs, outputs = list(input_final), list(output_final)
    report = CopyReport(input=len(inputs), output=len(outputs), committed=dict(committed))
    where = {r.value: r for r in inputs}
    copies = Counter(r.value for r in outputs)
    report.duplicated = sorted(v for v, n in copies.items() if n > 1)
    report.unexpected = sorted(v for v in copies if v not in where)
    report.extra = sorted(v for v in copies if v in where and where[v].offset >= committed.get(where[v].partition, 0))
    report.missing = sorted(r.value for r in inputs if r.offset < committed.get(r.partition, 0) and r.value not in copies)
    return report


class Copiers:
    """See the module."""

    def __init__(self, bootstrap: str, source: str, sink: str, *, copiers: int = 2, batch: int = 20,
                 group: str | None = None, producer_config: dict[str, Any] | None = None) -> None:
        self.bootstrap = bootstrap
        self.source = source
        self.sink = sink
        self.batch = batch
        self.group = group or f"copy-{uuid.uuid4().hex[:8]}"
        # an abandoned copier's transaction is aborted within 15 s (see _abandon_or_fail)
        self.producer_config = {"transaction.timeout.ms": 15000, "message.timeout.ms": 15000,
                                "request.timeout.ms": 4000, **(producer_config or {})}
        self.errors: list[str] = []
        self.failed: dict[str, str] = {}  # copiers that died, and why
        self.abandoned: dict[str, str] = {}  # copiers left hanging in librdkafka (see _abandon_or_fail)
        #: (time.monotonic(), copier, event, details): committed transactions with the input offsets they
        #: copied ({partition: (first, last)}) and the positions they committed, errors, rewinds
        self.history: list[tuple[float, str, str, Any]] = []
        self.committed_txns = 0
        self.aborted_txns = 0
        self._initial = copiers
        self._serial = 0
        self._members: list[tuple[threading.Thread, threading.Event]] = []

    def start(self) -> Copiers:
        for _ in range(self._initial):
            self.add()
        return self

    def add(self) -> None:
        name = f"copier{self._serial}"
        self._serial += 1
        stop = threading.Event()
        t = threading.Thread(target=self._run, args=(name, stop), name=name, daemon=True)
        t.start()
        self._members.append((t, stop))

    def rotate(self, timeout: float = 60.0) -> None:
        """Stop the oldest copier (it finishes or aborts its transaction, leaves) and start another."""
        t, stop = self._members.pop(0)
        stop.set()
        t.join(2 * CALL_S)
        if t.is_alive() and "send_offsets_to_transaction" not in self._stuck(t):
            t.join(timeout - 2 * CALL_S)
        self._abandon_or_fail([t])
        self.add()

    def stop(self, timeout: float = 60.0) -> None:
        for _, stop in self._members:
            stop.set()
        for t, _ in self._members:
            t.join(timeout)
        self._abandon_or_fail([t for t, _ in self._members])

    def _abandon_or_fail(self, threads: list[threading.Thread]) -> None:
        """A copier still running is left behind (`abandoned`) if it hangs in librdkafka's
        send_offsets_to_transaction, which ignores its timeout when the group coordinator went
        away (confluentinc/librdkafka#5456, #5511; open in librdkafka 2.16). Its transaction is
        aborted by transaction.timeout.ms, its partitions move on max.poll.interval.ms. Stuck
        anywhere else: RuntimeError."""
        stuck = []
        for t in threads:
            if not t.is_alive():
                continue
            where = self._stuck(t)
            if "send_offsets_to_transaction" in where:
                self.abandoned[t.name] = where
            else:
                stuck.append(f"{t.name}: {where}")
        if stuck:
            raise RuntimeError(f"copiers did not stop: {stuck}")

    def _stuck(self, t: threading.Thread) -> str:
        """Where a copier thread is, and what it did last."""
        import sys
        import traceback

        frame = sys._current_frames().get(t.ident or -1)
        stack = "".join(traceback.format_stack(frame)[-4:]) if frame is not None else "?"
        return f"{[e for e in self.history if e[1] == t.name][-5:]}; errors {self.errors[-8:]}\n{stack}"

    def explain(self, inputs: Iterable[Received], values: Iterable[str]) -> list[tuple[float, str, str, Any]]:
        """The history entries that copied any of `values` (input records), with the errors and
        rewinds of the copiers involved."""
        where = {r.value: (r.partition, r.offset) for r in inputs}
        spots = [where[v] for v in values if v in where]
        names = set()
        out = []
        for entry in self.history:
            if entry[2] == "committed" and any(first <= o <= last for p, o in spots
                                               for q, (first, last) in entry[3][1].items() if q == p):
                names.add(entry[1])
                out.append(entry)
        return sorted(out + [e for e in self.history if e[2] != "committed" and e[1] in names])

    def committed(self, partitions: list[int]) -> dict[int, int]:
        """The group's committed offsets (stable ones: librdkafka asks with require_stable)."""
        import confluent_kafka

        c = confluent_kafka.Consumer({"bootstrap.servers": self.bootstrap, "group.id": self.group,
                                      "isolation.level": "read_committed"})
        try:
            got = c.committed([confluent_kafka.TopicPartition(self.source, p) for p in partitions], timeout=CALL_S)
        finally:
            c.close()
        return {tp.partition: tp.offset for tp in got if tp.error is None and tp.offset >= 0}

    # -- one copier ----------------------------------------------------------------------
    def _producer(self, name: str) -> Any:
        import confluent_kafka

        producer = confluent_kafka.Producer({
            "bootstrap.servers": self.bootstrap, "transactional.id": f"{self.group}-{name}",
            "error_cb": lambda err: self.errors.append(f"{name}: {err}"), **self.producer_config})
        self._call(name, producer.init_transactions)
        return producer

    def _call(self, name: str, call: Any, *args: Any) -> None:
        """`call(*args, timeout)`, retried while it fails with a retriable error (bounded)."""
        deadline = time.monotonic() + 2 * CALL_S
        while True:
            try:
                call(*args, CALL_S)
                return
            except Exception as exc:
                err = _kafka_error(exc)
                if err is None or not err.retriable() or time.monotonic() > deadline:
                    raise
                self.errors.append(f"{name}: retrying {call.__name__}: {err}")

    def _rewind(self, name: str, consumer: Any) -> None:
        """Back to the group's committed offsets (after an abort)."""
        import confluent_kafka

        assigned = consumer.assignment()
        if not assigned:
            return
        committed = consumer.committed(assigned, timeout=CALL_S)
        self.history.append((time.monotonic(), name, "rewind", {tp.partition: (tp.offset, str(tp.error))
                                                                 for tp in committed}))
        for tp in committed:
            if tp.error is None:
                consumer.seek(confluent_kafka.TopicPartition(
                    self.source, tp.partition, tp.offset if tp.offset >= 0 else confluent_kafka.OFFSET_BEGINNING))

    def _run(self, name: str, stop: threading.Event) -> None:
        import confluent_kafka

        consumer = confluent_kafka.Consumer({
            "bootstrap.servers": self.bootstrap, "group.id": self.group, "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "isolation.level": "read_committed", "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 1000, "max.poll.interval.ms": 15000, "fetch.wait.max.ms": 100,
            "error_cb": lambda err: self.errors.append(f"{name} consumer: {err}")})
        try:
            consumer.subscribe([self.source])
            self._loop(name, stop, consumer)
        except Exception as exc:
            self.failed[name] = repr(exc)
            raise
        finally:
            consumer.close()

    def _loop(self, name: str, stop: threading.Event, consumer: Any) -> None:
        import confluent_kafka

        producer = None
        rewind = False
        while not stop.is_set():
            if producer is None:  # init_transactions completes or aborts whatever the last one left open
                producer = self._producer(name)
            if rewind:  # ... so the committed offsets are stable now
                try:
                    self._rewind(name, consumer)
                except confluent_kafka.KafkaException as exc:
                    self.errors.append(f"{name}: rewind: {exc}")
                    continue  # consume nothing before the rewind
                rewind = False
            msgs = [m for m in consumer.consume(self.batch, 0.2) if m.error() is None]
            if not msgs:
                continue
            try:
                producer.begin_transaction()
                for m in msgs:
                    producer.produce(self.sink, value=m.value(), partition=m.partition())
                positions = [tp for tp in consumer.position(consumer.assignment()) if tp.offset >= 0]
                self._call(name, producer.send_offsets_to_transaction, positions,
                           consumer.consumer_group_metadata())
                self._call(name, producer.commit_transaction)
                self.committed_txns += 1
                copied: dict[int, tuple[int, int]] = {}
                for m in msgs:
                    first, _ = copied.get(m.partition(), (m.offset(), 0))
                    copied[m.partition()] = (first, m.offset())
                self.history.append((time.monotonic(), name, "committed", (consumer.memberid(), copied,
                                     {tp.partition: tp.offset for tp in positions})))
            except confluent_kafka.KafkaException as exc:
                err = _kafka_error(exc)
                self.errors.append(f"{name}: {err or exc}")
                self.history.append((time.monotonic(), name, "error", str(err or exc)))
                rewind = True
                if err is not None and err.txn_requires_abort():
                    try:
                        self._call(name, producer.abort_transaction)
                        self.aborted_txns += 1
                        continue
                    except confluent_kafka.KafkaException as exc2:
                        self.errors.append(f"{name}: abort: {exc2}")
                producer = None  # fenced, fatal, or an outcome never learned: a new producer
