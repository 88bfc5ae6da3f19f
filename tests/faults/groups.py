"""A consumer-group workload and its checker: what a group's committed offsets promise.

`GroupWorkload` runs `consumers` confluent-kafka consumers (threads) in one group, subscribed to a
topic producers write to. Each consumer commits synchronously what it has processed (the offset
after its last consumed record) every `commit_every_s`, and on revocation. When it is assigned
partitions it asks for the group's committed offsets itself (OffsetFetch, `consumer.committed`)
and starts exactly there, so every start position is recorded. `rotate()` closes one consumer and
starts a new one (a rebalance). Before any consumer starts, offset 0 is committed for every
partition: a partition without a committed offset afterwards means an acknowledged commit was
lost (recorded as `missing`; consumption then starts at the end, so it also shows as lost records).

`check_group(...)` (pure) reports:

* lost: records acknowledged to a producer that no consumer of the group ever consumed, although
  the group committed past them (at-least-once: resuming from committed offsets leaves no gap);
* stale: an OffsetFetch answered an offset that an acknowledged commit had already overwritten
  before the fetch was sent (committed offsets went backwards: an acknowledged commit was lost,
  or an older value came back). Each partition's committed offset is a register: a fetch may
  return the value of a commit that was not overwritten by another acknowledged commit entirely
  between it and the fetch. Commits that failed with a retriable error or timed out may or may
  not have been written (both allowed); commits refused by fencing (ILLEGAL_GENERATION,
  UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS, ...) must never be seen;
* unexpected: an OffsetFetch answered an offset no commit wrote;
* missing: an OffsetFetch found no committed offset (offset 0 was committed first);
* phantom: a consumer was served a record the final log does not hold at that offset.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from tests.faults.checker import Received, Sent, _phantoms, topic_partitions

CommitStatus = Literal["acked", "failed", "unknown"]
#: Commit errors after which the offset is known not to be written (fenced or refused outright).
_FENCED = {"ILLEGAL_GENERATION", "UNKNOWN_MEMBER_ID", "REBALANCE_IN_PROGRESS", "FENCED_INSTANCE_ID",
           "STALE_MEMBER_EPOCH", "GROUP_AUTHORIZATION_FAILED", "TOPIC_AUTHORIZATION_FAILED", "OFFSET_METADATA_TOO_LARGE",
           "INVALID_COMMIT_OFFSET_SIZE", "_INVALID_ARG"}
#: How long a consumer waits for one OffsetCommit / OffsetFetch (librdkafka retries within it).
CALL_TIMEOUT_S = 10.0


@dataclass
class Commit:
    """One partition of one OffsetCommit: when it was sent (`start`), when its answer came (`end`,
    time.monotonic()) and what it said."""

    consumer: str
    partition: int
    offset: int
    start: float
    end: float = float("inf")  # never answered: it may take effect at any time
    status: CommitStatus = "unknown"
    error: str | None = None


@dataclass
class Fetch:
    """One partition of one OffsetFetch: the committed offset it answered (None: none)."""

    consumer: str
    partition: int
    offset: int | None
    start: float
    end: float


@dataclass
class GroupReport:
    commits: int = 0
    commits_acked: int = 0
    fetches: int = 0
    consumed: int = 0
    rebalances: int = 0
    lost: list[str] = field(default_factory=list)
    #: (partition, offset fetched, the newer acknowledged commit it ignored, by whom)
    stale: list[tuple[int, int | None, int, str]] = field(default_factory=list)
    unexpected: list[tuple[int, int]] = field(default_factory=list)  # (partition, offset fetched)
    missing: list[tuple[str, int]] = field(default_factory=list)  # (consumer, partition)
    phantom: list[tuple[int, int, str, str | None]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.stale or self.unexpected or self.missing or self.phantom)

    def summary(self) -> str:
        parts = [f"commits {self.commits} (acked {self.commits_acked}), fetches {self.fetches}, consumed "
                 f"{self.consumed}, assignments {self.rebalances}"]
        for name, items in (("lost", self.lost), ("stale", self.stale), ("unexpected", self.unexpected),
                            ("missing", self.missing), ("phantom", self.phantom)):
            if items:
                parts.append(f"{name}: {len(items)} e.g. {items[:5]}")
        parts.append("OK" if self.ok else "ANOMALIES")
        return "; ".join(parts)


def _overwritten(c: Commit, f: Fetch, acked: list[Commit]) -> Commit | None:
    """None if commit `c` (sent before fetch `f` was answered) may be what `f` read; else an
    acknowledged commit that overwrote `c` before `f` was sent (sent after `c` was answered,
    answered before `f` was sent)."""
    for c2 in acked:
        if c2 is not c and c2.start > c.end and c2.end < f.start:
            return c2
    return None


def check_group(sent: Iterable[Sent], final: Iterable[Received], consumed: Iterable[Received],
                commits: Iterable[Commit], fetches: Iterable[Fetch], committed_end: dict[int, int],
                rebalances: int = 0) -> GroupReport:
    """See the module. `final` is the final read of the topic, `consumed` what the group's
    consumers were served, `committed_end` the group's final committed offset per partition (the
    records below it must all have been consumed)."""
    final, consumed, commits, fetches = list(final), list(consumed), list(commits), list(fetches)
    report = GroupReport(commits=len(commits), commits_acked=sum(1 for c in commits if c.status == "acked"),
                         fetches=len(fetches), consumed=len(consumed), rebalances=rebalances)
    report.phantom = _phantoms(final, consumed)
    seen = {r.value for r in consumed}
    for s in sent:
        if s.status == "acked" and s.value not in seen and s.partition is not None and s.offset is not None \
                and s.offset < committed_end.get(s.partition, 0):
            report.lost.append(s.value)
    by_partition: dict[int, list[Commit]] = defaultdict(list)
    for c in commits:
        by_partition[c.partition].append(c)
    for f in fetches:
        if f.offset is None:
            report.missing.append((f.consumer, f.partition))
            continue
        candidates = [c for c in by_partition[f.partition]
                      if c.offset == f.offset and c.status != "failed" and c.start < f.end]
        if not candidates:
            report.unexpected.append((f.partition, f.offset))
            continue
        acked = [c for c in by_partition[f.partition] if c.status == "acked"]
        overwrites = [_overwritten(c, f, acked) for c in candidates]
        if all(o is not None for o in overwrites):
            newer = next(o for o in overwrites if o is not None)
            report.stale.append((f.partition, f.offset, newer.offset, newer.consumer))
    return report


class GroupWorkload:
    """See the module."""

    def __init__(self, bootstrap: str, topic: str, *, consumers: int = 3, group: str | None = None,
                 commit_every_s: float = 0.3, config: dict[str, Any] | None = None) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.group = group or f"jepsen-{uuid.uuid4().hex[:8]}"
        self.commit_every_s = commit_every_s
        self.config = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000, "max.poll.interval.ms": 30000,
                       "fetch.wait.max.ms": 100, "isolation.level": "read_committed", **(config or {})}
        self.commits: list[Commit] = []
        self.fetches: list[Fetch] = []
        self.consumed: list[Received] = []
        self.errors: list[str] = []
        self.assignments = 0
        self._initial = consumers
        self._members: list[tuple[threading.Thread, threading.Event]] = []
        self._serial = 0
        self._lock = threading.Lock()

    # -- driving -------------------------------------------------------------------------
    def start(self) -> GroupWorkload:
        self.partitions = topic_partitions(self.bootstrap, self.topic)
        c = self._consumer("init")
        try:  # offset 0 everywhere: afterwards a partition with no committed offset lost a commit
            self._commit(c, "init", {p: 0 for p in self.partitions})
            assert all(x.status == "acked" for x in self.commits), f"initial commit failed: {self.commits}"
        finally:
            c.close()
        for _ in range(self._initial):
            self.add()
        return self

    def add(self) -> None:
        """Start one more consumer (the group rebalances)."""
        with self._lock:
            name = f"c{self._serial}"
            self._serial += 1
        stop = threading.Event()
        t = threading.Thread(target=self._run, args=(name, stop), name=f"group-{name}", daemon=True)
        t.start()
        self._members.append((t, stop))

    def rotate(self, timeout: float = 30.0) -> None:
        """Close the oldest consumer (it commits on revocation, leaves) and start a new one."""
        t, stop = self._members.pop(0)
        stop.set()
        t.join(timeout)
        if t.is_alive():
            raise RuntimeError(f"consumer {t.name} did not close within {timeout:g}s")
        self.add()

    def committed_offsets(self) -> dict[int, int]:
        """The highest acknowledged commit per partition so far."""
        out: dict[int, int] = {}
        for c in list(self.commits):
            if c.status == "acked":
                out[c.partition] = max(out.get(c.partition, 0), c.offset)
        return out

    def stop(self, timeout: float = 30.0) -> dict[int, int]:
        """Close every consumer, then read the group's committed offsets once more (recorded as a
        fetch) and return them."""
        for _, stop in self._members:
            stop.set()
        for t, _ in self._members:
            t.join(timeout)
        stuck = [t.name for t, _ in self._members if t.is_alive()]
        if stuck:
            raise RuntimeError(f"consumers did not close: {stuck}")
        c = self._consumer("final")
        try:
            got = self._fetch(c, "final", self.partitions)
        finally:
            c.close()
        if got is None:
            raise RuntimeError(f"no final OffsetFetch answer for group {self.group}: {self.errors[-5:]}")
        return {p: o for p, o in got.items() if o is not None}

    def check(self, sent: Iterable[Sent], final: Iterable[Received], committed_end: dict[int, int]) -> GroupReport:
        return check_group(sent, final, self.consumed, self.commits, self.fetches, committed_end, self.assignments)

    # -- one consumer --------------------------------------------------------------------
    def _consumer(self, name: str) -> Any:
        import confluent_kafka

        return confluent_kafka.Consumer({
            "bootstrap.servers": self.bootstrap, "group.id": self.group, "client.id": f"{self.group}-{name}",
            "enable.auto.commit": False, "enable.auto.offset.store": False, "auto.offset.reset": "latest",
            "error_cb": lambda err: self.errors.append(f"{name}: {err}"), **self.config})

    def _commit(self, consumer: Any, name: str, offsets: dict[int, int]) -> list[Commit]:
        """One synchronous OffsetCommit of `offsets`, each partition recorded (and returned) with
        its outcome."""
        import confluent_kafka

        if not offsets:
            return []
        start = time.monotonic()
        rows = [Commit(name, p, o, start) for p, o in sorted(offsets.items())]
        self.commits.extend(rows)
        try:
            answer = consumer.commit(offsets=[confluent_kafka.TopicPartition(self.topic, p, o)
                                              for p, o in sorted(offsets.items())], asynchronous=False)
        except confluent_kafka.KafkaException as exc:
            err = exc.args[0] if exc.args else None
            name_ = err.name() if isinstance(err, confluent_kafka.KafkaError) else str(exc)
            end = time.monotonic()
            for r in rows:
                r.error = name_
                if name_ in _FENCED:
                    r.status, r.end = "failed", end
                # else: unknown, r.end stays infinite (it may have been written, or be written later)
            self.errors.append(f"{name}: commit {offsets}: {name_}")
            return rows
        end = time.monotonic()
        errors = {tp.partition: tp.error for tp in (answer or []) if tp.error is not None}
        for r in rows:
            err = errors.get(r.partition)
            if err is None:
                r.status, r.end = "acked", end
            else:
                r.error = err.name()
                if r.error in _FENCED:
                    r.status, r.end = "failed", end
        return rows

    def _fetch(self, consumer: Any, name: str, partitions: list[int]) -> dict[int, int | None] | None:
        """The group's committed offsets of `partitions` (OffsetFetch, retried until CALL_TIMEOUT_S);
        None if no answer came."""
        import confluent_kafka

        deadline = time.monotonic() + CALL_TIMEOUT_S
        while time.monotonic() < deadline:
            start = time.monotonic()
            try:
                got = consumer.committed([confluent_kafka.TopicPartition(self.topic, p) for p in partitions],
                                         timeout=max(1.0, deadline - start))
            except confluent_kafka.KafkaException as exc:
                self.errors.append(f"{name}: fetch: {exc}")
                continue
            end = time.monotonic()
            if any(tp.error is not None for tp in got):
                self.errors.append(f"{name}: fetch: {[str(tp.error) for tp in got if tp.error]}")
                continue
            out = {tp.partition: (tp.offset if tp.offset >= 0 else None) for tp in got}
            self.fetches.extend(Fetch(name, p, o, start, end) for p, o in out.items())
            return out
        return None

    def _run(self, name: str, stop: threading.Event) -> None:
        import confluent_kafka

        assigned: set[int] = set()
        position: dict[int, int] = {}  # next offset to process, per assigned partition
        done: dict[int, int] = {}  # last committed (acked) position per assigned partition

        def commit_positions(consumer: Any) -> None:
            for c in self._commit(consumer, name, {p: o for p, o in position.items() if done.get(p) != o}):
                if c.status == "acked":
                    done[c.partition] = c.offset

        def on_assign(consumer: Any, partitions: list[Any]) -> None:
            self.assignments += 1
            ps = [tp.partition for tp in partitions]
            assigned.update(ps)
            got = self._fetch(consumer, name, ps) if ps else {}
            assign = []
            for p in ps:
                offset = None if got is None else got.get(p)
                if offset is not None:
                    position[p] = done[p] = offset
                assign.append(confluent_kafka.TopicPartition(self.topic, p, offset if offset is not None
                                                             else confluent_kafka.OFFSET_STORED))
            consumer.assign(assign)

        def on_revoke(consumer: Any, partitions: list[Any]) -> None:
            commit_positions(consumer)
            assigned.clear()
            position.clear()
            done.clear()
            consumer.unassign()

        consumer = self._consumer(name)
        try:
            consumer.subscribe([self.topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_revoke)
            last_commit = time.monotonic()
            while not stop.is_set():
                msg: Any = consumer.poll(0.1)
                if msg is not None and msg.error() is None:
                    p, value = msg.partition(), msg.value()
                    self.consumed.append(Received(p, msg.offset(), value.decode(errors="replace") if value else ""))
                    if p in assigned:
                        position[p] = msg.offset() + 1
                elif msg is not None:
                    self.errors.append(f"{name}: {msg.error()}")
                if time.monotonic() - last_commit >= self.commit_every_s:
                    commit_positions(consumer)
                    last_commit = time.monotonic()
        finally:
            consumer.close()  # revokes (on_revoke commits) and leaves the group
