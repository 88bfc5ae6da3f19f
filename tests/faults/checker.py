"""A Jepsen-style checker for a Kafka topic: what acknowledged writes did the log keep?

History: concurrent producers (`ProducerWorkload`, threads with confluent-kafka, idempotent,
acks=all) append unique values "<producer>-<seq>" to a topic, round-robin over its partitions,
and record for each value whether its delivery report said acknowledged (with partition and
offset), failed (the broker or client says it was not written), or unknown (timed out, never
reported, ... it may or may not be in the log). `consume_all` then reads every partition from
the beginning to the end offsets it saw when it started (read_committed).

`check(sent, received)` is pure and reports:

* lost: acknowledged, never read;
* duplicated: read more than once (any value: each is sent once, and the producers are
  idempotent, so a second copy is the broker's);
* reordered: per producer and partition, acknowledged values read in another order than sent;
* unexpected: read, never sent;
* moved: acknowledged at one partition/offset, read (first) at another -- the log under an
  acknowledged record changed;
* misordered: the final read served a partition's offsets out of order (not strictly increasing);
* phantom (with `observed`, what a `TailReader` read *while* the faults ran): a record a consumer
  was served that the final log does not hold at that offset -- it was read past the high
  watermark (or the last stable offset) and later truncated, or served from a diverged log;
* unobserved (with `observed`): a record of the final read the tail reader was never served
  (both read_committed: one of them was served a record the other was not, e.g. an aborted one);
* torn / aborted_read (with `txns`, from a `TransactionalWorkload`): read_committed must see all
  of a transaction's values or none: a committed transaction read in part is torn (its missing
  values are also lost), an aborted one read at all is aborted_read, a transaction of unknown
  outcome read in part is torn.

`report.ok` requires none of them. Failed or unknown values may be read or not (both counted).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["acked", "failed", "unknown"]
TxnStatus = Literal["committed", "aborted", "unknown"]
#: What a transaction's outcome makes of its values.
_VALUE_STATUS: dict[TxnStatus, Status] = {"committed": "acked", "aborted": "failed", "unknown": "unknown"}
#: How many examples of each anomaly `CheckReport.summary()` shows.
EXAMPLES = 5


@dataclass
class Sent:
    """One value a producer sent, and what its delivery report said."""

    producer: str
    seq: int  # send order within the producer
    value: str
    partition: int | None = None  # where it was sent (then: where the ack put it)
    status: Status = "unknown"
    offset: int | None = None  # from the ack
    error: str | None = None


@dataclass(frozen=True)
class Received:
    partition: int
    offset: int
    value: str


@dataclass
class Txn:
    """One transaction of a transactional producer: its values (as `Sent`, seq counting across
    the producer's transactions; status "acked" once committed, "failed" once aborted) and how it
    ended: "committed" (commit_transaction returned), "aborted" (abort_transaction returned) or
    "unknown" (the outcome was never learned)."""

    producer: str
    seq: int
    values: list[Sent] = field(default_factory=list)
    status: TxnStatus = "unknown"
    started: float = 0.0  # time.monotonic() at begin_transaction
    ended: float = 0.0  # at settle()

    @property
    def name(self) -> str:
        return f"{self.producer}#{self.seq}"

    def settle(self, status: TxnStatus) -> None:
        self.status = status
        self.ended = time.monotonic()
        for s in self.values:
            s.status = _VALUE_STATUS[status]


@dataclass
class CheckReport:
    sent: int = 0
    acked: int = 0
    failed: int = 0
    unknown: int = 0
    read: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: dict[str, int] = field(default_factory=dict)  # value -> times read
    #: (value, value sent after it by the same producer to the same partition but read before it)
    reordered: list[tuple[str, str]] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    #: (value, acked (partition, offset), first read (partition, offset))
    moved: list[tuple[str, tuple[int, int], tuple[int, int]]] = field(default_factory=list)
    #: (partition, offset, the offset read before it) where the final read went backwards or repeated
    misordered: list[tuple[int, int, int]] = field(default_factory=list)
    #: (partition, offset, value observed during the run, value in the final log there or None)
    phantom: list[tuple[int, int, str, str | None]] = field(default_factory=list)
    #: (partition, offset) of the final read the tail reader was never served
    unobserved: list[tuple[int, int]] = field(default_factory=list)
    #: (transaction, values read, values in it): read in part
    torn: list[tuple[str, int, int]] = field(default_factory=list)
    aborted_read: list[str] = field(default_factory=list)  # aborted transactions with values read
    failed_read: int = 0  # failed, yet in the log (librdkafka may call a written record failed)
    unknown_read: int = 0  # unknown outcome, in the log
    observed: int = 0  # records a TailReader was served during the run
    txns: Counter[str] = field(default_factory=Counter)  # transactions by outcome
    slowest_txn_s: float = 0.0  # begin to commit/abort returning

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.reordered or self.unexpected or self.moved
                    or self.misordered or self.phantom or self.unobserved or self.torn or self.aborted_read)

    def summary(self) -> str:
        head = (f"sent {self.sent} (acked {self.acked}, failed {self.failed}, unknown {self.unknown}), "
                f"read {self.read} (of them failed {self.failed_read}, unknown {self.unknown_read}), "
                f"observed {self.observed}, transactions {dict(sorted(self.txns.items()))} "
                f"(slowest {self.slowest_txn_s:.2f}s)")
        parts = [head]
        for name, items in (("lost", self.lost), ("duplicated", list(self.duplicated.items())),
                            ("reordered", self.reordered), ("unexpected", self.unexpected), ("moved", self.moved),
                            ("misordered", self.misordered), ("phantom", self.phantom),
                            ("unobserved", self.unobserved), ("torn", self.torn),
                            ("aborted_read", self.aborted_read)):
            if items:
                more = f" (+{len(items) - EXAMPLES} more)" if len(items) > EXAMPLES else ""
                parts.append(f"{name}: {len(items)} e.g. {items[:EXAMPLES]}{more}")
        parts.append("OK" if self.ok else "ANOMALIES")
        return "; ".join(parts)


def check(sent: Iterable[Sent], received: Iterable[Received], *, txns: Iterable[Txn] = (),
          observed: Iterable[Received] | None = None) -> CheckReport:
    """Compare what producers sent (and were told) with what the log holds (see the module).
    `received` is the final read in the order it was served; `txns` the transactions of
    transactional producers (their values join `sent`); `observed` what readers were served
    while the run went on."""
    txns = list(txns)
    sent = [*sent, *(s for t in txns for s in t.values)]
    received = list(received)
    by_value = {s.value: s for s in sent}
    if len(by_value) != len(sent):
        raise ValueError("sent values must be unique")
    report = CheckReport(sent=len(sent), read=len(received), txns=Counter(t.status for t in txns),
                         slowest_txn_s=max((t.ended - t.started for t in txns if t.ended), default=0.0))
    report.misordered = _misordered(received)
    if observed is not None:
        observed = list(observed)
        report.phantom, report.observed = _phantoms(received, observed), len(observed)
        seen = {(r.partition, r.offset) for r in observed}
        report.unobserved = sorted({(r.partition, r.offset) for r in received} - seen)
    status = Counter(s.status for s in sent)
    report.acked, report.failed, report.unknown = status["acked"], status["failed"], status["unknown"]

    reads: dict[str, list[Received]] = defaultdict(list)
    for r in sorted(received, key=lambda r: (r.partition, r.offset)):
        reads[r.value].append(r)
    report.unexpected = sorted(v for v in reads if v not in by_value)
    report.duplicated = {v: len(rs) for v, rs in sorted(reads.items()) if len(rs) > 1}
    report.failed_read = sum(1 for s in sent if s.status == "failed" and s.value in reads)
    report.unknown_read = sum(1 for s in sent if s.status == "unknown" and s.value in reads)

    # per (producer, partition): the acked values by the offset they were first read at
    streams: dict[tuple[str, int], list[tuple[int, Sent]]] = defaultdict(list)
    for s in sent:
        if s.status != "acked":
            continue
        got = reads.get(s.value)
        if not got:
            report.lost.append(s.value)
            continue
        first = got[0]
        if s.offset is not None and s.partition is not None and (s.partition, s.offset) != (first.partition, first.offset):
            report.moved.append((s.value, (s.partition, s.offset), (first.partition, first.offset)))
        streams[(s.producer, first.partition)].append((first.offset, s))
    for _, stream in sorted(streams.items()):
        latest: Sent | None = None  # the highest seq read so far in this stream
        for _, s in sorted(stream, key=lambda x: x[0]):
            if latest is not None and s.seq < latest.seq:
                report.reordered.append((s.value, latest.value))
            elif latest is None or s.seq > latest.seq:
                latest = s
    for t in txns:
        n = sum(1 for s in t.values if s.value in reads)
        if t.status == "aborted" and n:
            report.aborted_read.append(t.name)
        elif 0 < n < len(t.values) or (t.status == "committed" and n < len(t.values)):
            report.torn.append((t.name, n, len(t.values)))
    return report


def _misordered(received: list[Received]) -> list[tuple[int, int, int]]:
    """Per partition, offsets of the final read (in the order served) must strictly increase."""
    last: dict[int, int] = {}
    out = []
    for r in received:
        prev = last.get(r.partition)
        if prev is not None and r.offset <= prev:
            out.append((r.partition, r.offset, prev))
        last[r.partition] = r.offset
    return out


def _phantoms(final: list[Received], observed: list[Received]) -> list[tuple[int, int, str, str | None]]:
    """Every record served during the run must be in the final log, at the same offset, with the
    same value: a record read and later gone was read past the high watermark."""
    at = {(r.partition, r.offset): r.value for r in final}
    out = {(r.partition, r.offset, r.value, at.get((r.partition, r.offset))) for r in observed
           if at.get((r.partition, r.offset)) != r.value}
    return sorted(out, key=lambda x: (x[0], x[1], x[2]))


# ============================================================================ runner (real clients)

#: Errors after which the record is known not to be in the log (everything else: unknown).
_DEFINITE_FAILURES = {
    "NOT_ENOUGH_REPLICAS", "MSG_SIZE_TOO_LARGE", "INVALID_RECORD", "RECORD_LIST_TOO_LARGE", "INVALID_REQUIRED_ACKS",
    "TOPIC_AUTHORIZATION_FAILED", "CLUSTER_AUTHORIZATION_FAILED", "_PURGE_QUEUE", "_UNKNOWN_TOPIC", "_UNKNOWN_PARTITION",
    "_MSG_SIZE_TOO_LARGE", "_INVALID_ARG",
}


def wait_for_count(current: Callable[[], int], count: int, timeout: float, what: Callable[[], str]) -> None:
    """Poll `current()` until it reaches `count`; after `timeout`, AssertionError saying
    "only N of `count` " + `what()` (what the count is, and the workload's progress)."""
    deadline = time.monotonic() + timeout
    while current() < count:
        if time.monotonic() >= deadline:
            raise AssertionError(f"only {current()} of {count} {what()}")
        time.sleep(0.05)


def classify_error(err: Any) -> Status:
    """"failed" if a delivery error means the record was not written, else "unknown"."""
    return "failed" if err.name() in _DEFINITE_FAILURES else "unknown"


def topic_partitions(bootstrap: str, topic: str, timeout: float = 10.0) -> list[int]:
    from confluent_kafka.admin import AdminClient

    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=timeout)
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        raise LookupError(f"topic {topic}: {t.error if t is not None else 'not in Metadata'}")
    return sorted(t.partitions)


class ProducerWorkload:
    """`producers` threads, each with its own idempotent acks=all confluent-kafka Producer,
    sending "<name>-<seq>" values round-robin over `partitions` (default: all of the topic's)
    until `stop()` or `messages` each. `interval_s` paces each producer (0: as fast as its
    queue allows). `config` adds or overrides producer properties."""

    def __init__(self, bootstrap: str, topic: str, *, producers: int = 3, messages: int | None = None,
                 interval_s: float = 0.0, partitions: list[int] | None = None, config: dict[str, Any] | None = None,
                 name: str = "p") -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.messages = messages
        self.interval_s = interval_s
        self.partitions = partitions
        self.config = {"enable.idempotence": True, "acks": "all", "linger.ms": 5, "message.timeout.ms": 30000,
                       "request.timeout.ms": 5000, "retry.backoff.ms": 100, **(config or {})}
        self.names = [f"{name}{i}" for i in range(producers)]
        self.sent: dict[str, list[Sent]] = {n: [] for n in self.names}
        #: Client-level errors (error_cb) per producer: transient ones (a broker down) and fatal ones.
        self.errors: dict[str, list[str]] = {n: [] for n in self.names}
        #: Producers stopped by a fatal error (e.g. an idempotence sequence the broker refused).
        self.fatal: dict[str, str] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._flush_s = 60.0

    def start(self) -> ProducerWorkload:
        if self.partitions is None:
            self.partitions = topic_partitions(self.bootstrap, self.topic)
        for n in self.names:
            t = threading.Thread(target=self._run, args=(n,), name=f"workload-{n}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def acked(self) -> int:
        """Values acknowledged so far (for transactional producers: values of committed transactions)."""
        return sum(1 for records in self.sent.values() for s in list(records) if s.status == "acked")

    def wait_acked(self, count: int, timeout: float) -> None:
        """Until at least `count` values are acknowledged (AssertionError after `timeout`)."""
        wait_for_count(self.acked, count, timeout, lambda: f"values acknowledged within {timeout:g}s; "
                       f"{self.progress_report()}")

    def progress_report(self) -> str:
        """Per producer and partition: values sent, acknowledged, and the last delivery error
        (which partition a stalled producer waits on, and why)."""
        rows = []
        for n in self.names:
            by_partition: dict[int | None, list[Sent]] = defaultdict(list)
            for s in list(self.sent[n]):
                by_partition[s.partition].append(s)
            for p, values in sorted(by_partition.items(), key=lambda kv: -1 if kv[0] is None else kv[0]):
                acked = sum(1 for s in values if s.status == "acked")
                last_error = next((s.error for s in reversed(values) if s.error), None)
                rows.append(f"{n} p{p}: sent {len(values)}, acked {acked}, last error {last_error}")
        return "; ".join(rows) + f"; client errors: {self.errors}"

    def stop(self, flush_timeout: float = 60.0) -> list[Sent]:
        """Stop sending, wait for outstanding delivery reports (bounded), return the history."""
        self._flush_s = flush_timeout
        self._stop.set()
        for t in self._threads:
            t.join(flush_timeout + 10)
        stuck = [t.name for t in self._threads if t.is_alive()]
        if stuck:
            raise RuntimeError(f"producer threads did not finish: {stuck}")
        return self.history()

    def history(self) -> list[Sent]:
        return [s for n in self.names for s in list(self.sent[n])]

    def run(self, during: Callable[[ProducerWorkload], None] | None = None, timeout: float = 120.0) -> list[Sent]:
        """start(), call `during(self)` (inject faults), let each producer send its `messages`
        (if bounded; at most `timeout` seconds in all), stop()."""
        deadline = time.monotonic() + timeout
        self.start()
        try:
            if during is not None:
                during(self)
            if self.messages is not None:
                for t in self._threads:
                    t.join(max(0.0, deadline - time.monotonic()))
        finally:
            history = self.stop()
        return history

    def _producer(self, name: str, fatal: threading.Event, **extra: Any) -> Any:
        """Producer `name`'s confluent-kafka Producer: its client errors go to `errors[name]`; a
        fatal one also to `fatal[name]` and sets `fatal`."""
        import confluent_kafka

        errors = self.errors[name]

        def on_error(err: Any) -> None:
            errors.append(str(err))
            if err.fatal():
                self.fatal[name] = str(err)
                fatal.set()

        return confluent_kafka.Producer({"bootstrap.servers": self.bootstrap, "error_cb": on_error, **self.config, **extra})

    def _record(self, name: str, seq: int, partitions: list[int]) -> Sent:
        """Producer `name`'s `seq`-th value and the partition it goes to (round-robin)."""
        return Sent(name, seq, f"{name}-{seq}", partitions[seq % len(partitions)])

    def _payload(self, rec: Sent) -> dict[str, Any]:
        """What `Producer.produce` sends for `rec` besides its topic and partition."""
        return {"value": rec.value.encode()}

    def _run(self, name: str) -> None:
        import confluent_kafka

        fatal = threading.Event()
        producer = self._producer(name, fatal)
        records = self.sent[name]
        partitions = self.partitions or [0]
        seq = 0
        while not self._stop.is_set() and not fatal.is_set() and (self.messages is None or seq < self.messages):
            rec = self._record(name, seq, partitions)
            try:
                producer.produce(self.topic, **self._payload(rec), partition=rec.partition, on_delivery=_on_delivery(rec))
            except BufferError:  # local queue full: serve callbacks, send the same value again
                producer.poll(0.1)
                continue
            except confluent_kafka.KafkaException as exc:  # e.g. the producer hit a fatal error
                rec.status, rec.error = "failed", str(exc)
                records.append(rec)
                break
            records.append(rec)
            seq += 1
            producer.poll(0)
            if self.interval_s:
                self._stop.wait(self.interval_s)
        deadline = time.monotonic() + self._flush_s
        while len(producer) > 0 and time.monotonic() < deadline:
            producer.flush(min(1.0, max(0.0, deadline - time.monotonic())))
        # whatever is still queued stays "unknown"


def _on_delivery(rec: Sent) -> Callable[[Any, Any], None]:
    def on_delivery(err: Any, msg: Any) -> None:
        if err is None:
            rec.status, rec.partition, rec.offset = "acked", msg.partition(), msg.offset()
        else:
            rec.status, rec.error = classify_error(err), err.name()
    return on_delivery


def _received(msg: Any) -> Received:
    value = msg.value()
    return Received(msg.partition(), msg.offset(), value.decode(errors="replace") if value is not None else "")


def consume_all(bootstrap: str, topic: str, *, timeout: float = 30.0, config: dict[str, Any] | None = None,
                record: Callable[[Any], Any] = _received) -> list[Any]:
    """Every record of every partition, from the beginning to the end offsets seen when this
    starts, read_committed, each made by `record(message)` (default: a `Received`).
    TimeoutError if that takes longer than `timeout`."""
    import confluent_kafka

    consumer = confluent_kafka.Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"checker-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False,
        "auto.offset.reset": "earliest", "isolation.level": "read_committed", "enable.partition.eof": True,
        **(config or {})})
    deadline = time.monotonic() + timeout
    try:
        partitions = topic_partitions(bootstrap, topic, timeout=max(1.0, deadline - time.monotonic()))
        ends: dict[int, int] = {}
        pending: set[int] = set()
        for p in partitions:
            low, high = consumer.get_watermark_offsets(confluent_kafka.TopicPartition(topic, p),
                                                       timeout=max(1.0, deadline - time.monotonic()))
            ends[p] = high
            if high > low:
                pending.add(p)
        consumer.assign([confluent_kafka.TopicPartition(topic, p, confluent_kafka.OFFSET_BEGINNING) for p in pending])
        out: list[Any] = []
        while pending:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"read {len(out)} records of {topic} in {timeout:g}s; partitions {sorted(pending)} "
                                   f"not read up to their end offsets {({p: ends[p] for p in pending})}")
            msg: Any = consumer.poll(0.2)
            if msg is None:
                continue
            p = msg.partition()
            if msg.error() is not None:
                if msg.error().code() == confluent_kafka.KafkaError._PARTITION_EOF and msg.offset() >= ends.get(p, 0):
                    pending.discard(p)
                continue
            out.append(record(msg))
            if msg.offset() + 1 >= ends[p]:
                pending.discard(p)
        return out
    finally:
        consumer.close()


def run_check(bootstrap: str, topic: str, *, producers: int = 3, messages: int | None = 100,
              during: Callable[[ProducerWorkload], None] | None = None, consume_timeout: float = 30.0,
              read_bootstrap: str | None = None, **workload: Any) -> tuple[CheckReport, list[Sent], list[Received]]:
    """Produce (with `during` injecting faults), read everything back, check."""
    w = ProducerWorkload(bootstrap, topic, producers=producers, messages=messages, **workload)
    sent = w.run(during)
    received = consume_all(read_bootstrap or bootstrap, topic, timeout=consume_timeout)
    return check(sent, received), sent, received
