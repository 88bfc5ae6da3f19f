"""Helpers for the consumer-group end-to-end tests.

`GroupMember` runs one confluent-kafka Consumer in a thread (subscribe + consume loop)
and records what the client saw: rebalance callbacks, its current assignment and every
record it consumed. Anything else the test wants done with the consumer (commit, close)
runs on that same thread through `call`, so the Consumer is only touched by its owner.
`SubprocessMember` is a consumer in a child process, for SIGKILL.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

import confluent_kafka
import pytest
from confluent_kafka import Consumer, KafkaError
from confluent_kafka import TopicPartition as TP

from suoi.testing import EmbeddedBroker
from tests.conftest import wait_until

# Fast rebalances: no initial delay, short sessions allowed.
FAST_GROUPS = {"group.initial.rebalance.delay.ms": "0", "group.min.session.timeout.ms": "1000"}

# Client settings that make rebalances and expiry complete in a few seconds.
FAST_CLIENT = {"session.timeout.ms": 3000, "heartbeat.interval.ms": 300,
               "auto.offset.reset": "earliest", "enable.auto.commit": False,
               "topic.metadata.refresh.interval.ms": 1000}


def gid(prefix: str = "g") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def group_broker(tmp_path_factory: pytest.TempPathFactory,
                 overrides: dict[str, str] | None = None) -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(tmp_path_factory.mktemp("groups"), overrides={**FAST_GROUPS, **(overrides or {})})
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def produce_n(bootstrap: str, topic: str, per_partition: int, partitions: int, tag: str = "v") -> None:
    """`per_partition` records to each partition; value b"{tag}-{partition}-{i}"."""
    p = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    errors: list[Any] = []
    for part in range(partitions):
        for i in range(per_partition):
            p.produce(topic, value=f"{tag}-{part}-{i}".encode(), partition=part,
                      on_delivery=lambda err, _m: errors.append(err) if err else None)
    assert p.flush(20) == 0
    assert not errors, errors[:3]


class GroupMember:
    """A confluent-kafka group consumer polled by its own thread."""

    def __init__(self, bootstrap: str, group: str, topics: list[str], conf: dict[str, Any] | None = None,
                 name: str = "m", commit_each: bool = False) -> None:
        self.name = name
        self.conf = {"bootstrap.servers": bootstrap, "group.id": group, "client.id": name,
                     **FAST_CLIENT, **(conf or {})}
        self.topics = topics
        self.commit_each = commit_each
        self.lock = threading.Lock()
        self.events: list[tuple[str, tuple[int, ...]]] = []  # ("assign"|"revoke"|"lost", partitions)
        self.assignment: frozenset[int] = frozenset()
        self.records: list[tuple[int, int, bytes]] = []  # (partition, offset, value)
        self.errors: list[str] = []
        self._cmds: queue.Queue[tuple[Callable[[Consumer], Any], Future[Any]]] = queue.Queue()
        self._stop = threading.Event()
        self._closed = False
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"member-{name}", daemon=True)
        self.thread.start()
        assert self._ready.wait(10), f"{name}: consumer did not start"

    # -- the consumer thread -------------------------------------------------------------
    def _event(self, kind: str, parts: list[TP]) -> None:
        with self.lock:
            self.events.append((kind, tuple(sorted(tp.partition for tp in parts))))

    def _run(self) -> None:
        c = Consumer(self.conf)
        try:
            c.subscribe(self.topics,
                        on_assign=lambda _c, ps: self._event("assign", ps),
                        on_revoke=lambda _c, ps: self._event("revoke", ps),
                        on_lost=lambda _c, ps: self._event("lost", ps))
            self._ready.set()
            while not self._stop.is_set():
                while True:
                    try:
                        fn, fut = self._cmds.get_nowait()
                    except queue.Empty:
                        break
                    try:
                        fut.set_result(fn(c))
                    except BaseException as exc:  # noqa: BLE001 - handed to the caller
                        fut.set_exception(exc)
                msgs = c.consume(num_messages=500, timeout=0.05)
                got = []
                for m in msgs:
                    if m.error():
                        if m.error().code() != KafkaError._PARTITION_EOF:
                            with self.lock:
                                self.errors.append(str(m.error()))
                        continue
                    got.append((m.partition(), m.offset(), m.value()))
                if got and self.commit_each:
                    c.commit(asynchronous=False)
                current = frozenset(tp.partition for tp in c.assignment())
                with self.lock:
                    self.records.extend(got)
                    self.assignment = current
        finally:
            if not self._closed:
                self._closed = True
                c.close()

    # -- the test thread -----------------------------------------------------------------
    def call(self, fn: Callable[[Consumer], Any], timeout: float = 15.0) -> Any:
        fut: Future[Any] = Future()
        self._cmds.put((fn, fut))
        return fut.result(timeout)

    def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        tps = [TP(t, p, o) for (t, p), o in offsets.items()]
        res = self.call(lambda c: c.commit(offsets=tps, asynchronous=False))
        assert all(tp.error is None for tp in res), res

    def close(self, timeout: float = 15.0) -> None:
        """Stop polling and close the consumer (a clean LeaveGroup for dynamic members)."""
        self._stop.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"{self.name}: consumer did not close"

    def snapshot(self) -> tuple[frozenset[int], list[tuple[str, tuple[int, ...]]], list[tuple[int, int, bytes]]]:
        with self.lock:
            return self.assignment, list(self.events), list(self.records)

    def offsets_of(self, partition: int) -> list[int]:
        with self.lock:
            return [o for p, o, _ in self.records if p == partition]


def balanced(members: list[GroupMember], partitions: int, sizes: list[int]) -> bool:
    """Every partition owned by exactly one member and the sorted per-member counts are `sizes`."""
    owned = [m.snapshot()[0] for m in members]
    union: set[int] = set()
    for a in owned:
        if union & a:
            return False
        union |= a
    return union == set(range(partitions)) and sorted(len(a) for a in owned) == sorted(sizes)


def wait_balanced(members: list[GroupMember], partitions: int, sizes: list[int], timeout: float = 20.0) -> None:
    wait_until(lambda: balanced(members, partitions, sizes), timeout,
               message=f"assignment sizes {sorted(sizes)} over {partitions} partitions; now "
                       f"{[(m.name, sorted(m.snapshot()[0])) for m in members]}")


def stop_all(members: list[GroupMember]) -> None:
    for m in members:
        if m.thread.is_alive():
            m._stop.set()
    for m in members:
        m.thread.join(15)


# ------------------------------------------------------------------ a consumer to SIGKILL

_CHILD = textwrap.dedent("""
    import json, sys
    from confluent_kafka import Consumer, KafkaError, TopicPartition as TP
    conf = json.loads(sys.argv[1]); topic = sys.argv[2]; commit_at = int(sys.argv[3])
    def say(**kw):
        print(json.dumps(kw), flush=True)
    c = Consumer(conf)
    c.subscribe([topic], on_assign=lambda _c, ps: say(ev="assign", parts=sorted(p.partition for p in ps)))
    seen = {}
    committed = set()
    while True:  # runs until the test kills it
        for m in c.consume(num_messages=100, timeout=0.05):
            if m.error():
                continue
            seen[m.partition()] = m.offset()
            say(ev="record", p=m.partition(), o=m.offset())
        # once every owned partition has been read past commit_at, commit exactly commit_at
        owned = [tp.partition for tp in c.assignment()]
        todo = [p for p in owned if p not in committed and seen.get(p, -1) >= commit_at]
        if todo:
            res = c.commit(offsets=[TP(topic, p, commit_at) for p in todo], asynchronous=False)
            committed.update(tp.partition for tp in res if tp.error is None)
            say(ev="committed", parts=sorted(committed), offset=commit_at)
""")


class SubprocessMember:
    """A group consumer in a child process: reports JSON events on stdout, dies by SIGKILL."""

    def __init__(self, bootstrap: str, group: str, topic: str, commit_at: int, conf: dict[str, Any]) -> None:
        full = {"bootstrap.servers": bootstrap, "group.id": group, **FAST_CLIENT, **conf}
        self.err = tempfile.TemporaryFile()  # noqa: SIM115 - closed in kill()
        self.proc = subprocess.Popen([sys.executable, "-c", _CHILD, json.dumps(full), topic, str(commit_at)],
                                     stdout=subprocess.PIPE, stderr=self.err)
        self.lock = threading.Lock()
        self.events: list[dict[str, Any]] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self.lock:
                self.events.append(json.loads(line))

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.events)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.reader.join(10)

    def close(self) -> None:
        self.kill()
        self.err.close()

    def stderr(self) -> str:
        self.err.seek(0)
        return self.err.read().decode(errors="replace")


def deadline_loop(timeout: float) -> Iterator[float]:
    """Yield remaining seconds until `timeout` passes (for bounded polling loops)."""
    end = time.monotonic() + timeout
    while (left := end - time.monotonic()) > 0:
        yield left
