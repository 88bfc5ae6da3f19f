"""The ``_schemas`` topic through Kafka's protocol: create it, replay it, append to it.

The registry is a client of the cluster like Confluent's and Karapace's (so it runs inside a node
or standalone against any Kafka cluster). librdkafka (confluent-kafka) does the Kafka side; its
calls block, so each runs on a thread of its own and hands results to the event loop with
``call_soon_threadsafe``: the node's loop never waits on them. Those threads are daemon threads
of their own (`off_loop`), not the loop's default executor: a call a stop abandons (the node stopped
while librdkafka waits out a timeout for a broker that is gone) never holds up the process's exit,
which waits for the executor's threads (30 s, librdkafka's timeout, before). Waits are cut into short
slices that check ``close()``, so even an abandoned thread ends within a slice.

Writes are transactional with one ``transactional.id`` shared by every registry of the cluster:
a primary starting its term calls ``init_writer()``, whose InitProducerId bumps the producer epoch
and so fences the previous primary's producer (its open transaction is aborted, its later commits
fail). Kafka itself then guarantees one writer, whatever the timing of the election. The reader
is ``read_committed`` and reports its position, which moves past transaction markers too.

``SchemaTopic`` lifecycle: ``start()`` (create the topic if missing: one partition, compacted,
replication factor min(3, brokers); start the replay thread) -> ``init_writer()`` / ``append()``
on the primary -> ``close()``. Replayed records go to ``on_records(batch, position)`` on the loop,
in offset order; ``position`` is the next offset the reader will read.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

__all__ = ["SchemaTopic"]

log = logging.getLogger("suoi.http.registry")

Batch = list[tuple[int, bytes | None, bytes | None]]  # (offset, key, value)

T = TypeVar("T")

#: Longest single librdkafka wait of the topic creation: between two, ``close()`` is noticed.
WAIT_SLICE_S = 0.5
#: The topic creation's whole budget (librdkafka's request timeout).
CREATE_TIMEOUT_S = 30.0
#: What a Metadata slice without a broker's answer raises: wait on (within the budget).
_NO_ANSWER_YET = (KafkaError._TIMED_OUT, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN)
#: The replay's Fetch waits this long on the broker for a record (librdkafka's fetch.wait.max.ms,
#: 500 by default): an append answers it at once, so it only sets how often an idle reader's
#: Fetch comes back empty (and is sent again: a request for the node and librdkafka each time).
READER_FETCH_WAIT_MS = 10_000
#: The replay polls librdkafka (in its 200 ms slices: confluent-kafka's poll wakes every 200 ms
#: to check for signals, whatever the timeout) while it read something, or was asked to
#: (`wake_reader`: a write or a read waiting for the replay), this recently ...
READER_ACTIVE_S = 5.0
#: ... and else looks once this often: a record written by another registry reaches this one's
#: store within it (a read waiting for it wakes the reader at once).
READER_IDLE_POLL_S = 1.0


async def off_loop(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` on a daemon thread of its own; the result comes back through the loop.

    Like ``asyncio.to_thread``, but cancelling the await abandons the thread instead of leaving it
    in the default executor, which ``asyncio.run`` joins at exit: a blocking librdkafka call in
    flight when the node stops cannot hold the process up for its whole timeout."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if not future.done():
            future.set_result(value) if ok else future.set_exception(value)

    def run() -> None:
        try:
            outcome: tuple[bool, Any] = (True, fn(*args))
        except Exception as exc:  # handed to the awaiting coroutine
            outcome = (False, exc)
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=run, name=f"schema-registry-{getattr(fn, '__name__', 'call')}", daemon=True).start()
    return await future


def client_config(bootstrap: str) -> dict[str, Any]:
    return {"bootstrap.servers": bootstrap, "socket.connection.setup.timeout.ms": 10_000,
            "reconnect.backoff.max.ms": 1000, "log_level": 3, "logger": log}


class SchemaTopic:
    def __init__(self, bootstrap: str, topic: str, on_records: Callable[[Batch, int], None], *,
                 transactional_id: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.transactional_id = transactional_id
        self._on_records = on_records
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()  # set by `wake_reader` (and `close`): the reader polls now
        self._reader: threading.Thread | None = None
        self._consumer: Consumer | None = None
        self._probe: Consumer | None = None
        self._producer: Producer | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop.clear()
        await off_loop(self._create_topic)
        self._consumer = Consumer({**client_config(self.bootstrap), "group.id": f"suoi-schema-reader-{uuid.uuid4()}",
                                   "enable.auto.commit": False, "enable.partition.eof": True,
                                   "fetch.wait.max.ms": READER_FETCH_WAIT_MS, "isolation.level": "read_committed"})
        self._consumer.assign([TopicPartition(self.topic, 0, OFFSET_BEGINNING)])
        # Watermark queries on a consumer of their own: one the reader thread polls answers them late.
        self._probe = Consumer({**client_config(self.bootstrap), "group.id": f"suoi-schema-probe-{uuid.uuid4()}",
                                "enable.auto.commit": False})
        self._reader = threading.Thread(target=self._read_loop, name="schema-registry-reader", daemon=True)
        self._reader.start()

    def _create_topic(self) -> None:
        """Create the topic unless it exists, within CREATE_TIMEOUT_S; gives up (KafkaError._DESTROY)
        once ``close()`` was called."""
        deadline = time.monotonic() + CREATE_TIMEOUT_S
        admin = AdminClient(client_config(self.bootstrap))
        while True:  # Metadata, in slices: a broker that never answers is waited for, not forever
            self._check_open(deadline)
            try:
                brokers = len(admin.list_topics(timeout=WAIT_SLICE_S).brokers)
                break
            except KafkaException as exc:
                if exc.args[0].code() not in _NO_ANSWER_YET:
                    raise
        topic = NewTopic(self.topic, num_partitions=1, replication_factor=max(1, min(3, brokers)),
                         config={"cleanup.policy": "compact"})
        try:
            created = admin.create_topics([topic], request_timeout=CREATE_TIMEOUT_S)[self.topic]
            while not created.done():
                self._check_open(deadline)
                with contextlib.suppress(concurrent.futures.TimeoutError):
                    created.result(WAIT_SLICE_S)
            created.result(0)
            log.info("created topic %s (compacted, replication factor %d)", self.topic, topic.replication_factor)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise

    def _check_open(self, deadline: float) -> None:
        if self._stop.is_set():
            raise KafkaException(KafkaError(KafkaError._DESTROY, f"creating {self.topic}: closed"))
        if time.monotonic() > deadline:
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, f"creating {self.topic}: no answer in time"))

    async def end_offset(self) -> int:
        """The partition's high watermark: reading up to it means having read every committed write."""
        assert self._probe is not None
        consumer = self._probe
        _, high = await off_loop(consumer.get_watermark_offsets, TopicPartition(self.topic, 0), 10.0)
        return int(high)

    def wake_reader(self) -> None:
        """Someone waits for the replay (a write's read-back, a read to the end): poll at once and
        keep polling for `READER_ACTIVE_S` (thread-safe)."""
        self._wake.set()

    def _read_loop(self) -> None:
        """Replay `_schemas` into `on_records`. Idle (nothing read, nobody waiting for
        `READER_ACTIVE_S`), the thread looks every `READER_IDLE_POLL_S` instead of waking in
        librdkafka's poll five times a second (issue 19, a node at idle); librdkafka's own
        threads keep fetching meanwhile, so a wake-up finds what arrived in its queue."""
        assert self._consumer is not None and self._loop is not None
        active_until = time.monotonic() + READER_ACTIVE_S
        while not self._stop.is_set():
            timeout = 0.2
            if self._wake.is_set() or time.monotonic() >= active_until:
                woken = self._wake.wait(READER_IDLE_POLL_S)
                self._wake.clear()  # (before the poll: a wake-up after it is seen next round)
                if woken:
                    active_until = time.monotonic() + READER_ACTIVE_S
                else:
                    timeout = 0  # parked: take what is there
            try:
                first = self._consumer.poll(timeout)  # returns at the first message (consume() waits out its timeout)
                messages = [] if first is None else [first, *self._consumer.consume(499, 0)]
            except (KafkaException, RuntimeError) as exc:
                log.warning("_schemas replay: %s", exc)
                continue
            if messages:
                active_until = time.monotonic() + READER_ACTIVE_S
            batch: Batch = []
            position = -1
            for m in messages:
                error, offset = m.error(), int(m.offset() or 0)
                if error is None:
                    batch.append((offset, m.key(), m.value()))
                    position = offset + 1
                elif error.code() == KafkaError._PARTITION_EOF:
                    position = max(position, offset)  # the end, past any transaction markers
                elif not error.retriable():
                    log.warning("_schemas replay: %s", error)
            if position >= 0:
                with contextlib.suppress(RuntimeError):  # loop closed while stopping
                    self._loop.call_soon_threadsafe(self._on_records, batch, position)

    async def init_writer(self, timeout: float = 30.0) -> None:
        """Become the one writer: a transactional producer whose InitProducerId fences every earlier one."""
        await self._drop_writer()
        producer = Producer({**client_config(self.bootstrap), "transactional.id": self.transactional_id,
                             "transaction.timeout.ms": 10_000, "linger.ms": 0})
        await off_loop(producer.init_transactions, timeout)
        self._producer = producer

    async def _drop_writer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await asyncio.to_thread(producer.flush, 1)

    async def append(self, records: list[tuple[bytes, bytes | None]], timeout: float = 30.0) -> int:
        """Append records in one transaction; returns the offset of the last one. A fenced or failed
        writer is dropped (``init_writer`` again before the next append)."""
        assert self._loop is not None
        if self._producer is None:
            raise KafkaException(KafkaError(KafkaError._STATE, "no writer: init_writer() first"))
        producer = self._producer
        offsets: list[int] = []

        def delivered(err: KafkaError | None, msg: object) -> None:  # librdkafka's thread
            if err is None:
                offsets.append(msg.offset())  # type: ignore[attr-defined]

        def write() -> None:
            producer.begin_transaction()
            for key, value in records:
                producer.produce(self.topic, key=key, value=value, partition=0, on_delivery=delivered)
            producer.commit_transaction(timeout)  # flushes: every delivery callback has run

        try:
            await asyncio.to_thread(write)
        except KafkaException as exc:
            error = exc.args[0]
            if error.txn_requires_abort():
                with contextlib.suppress(KafkaException):
                    await asyncio.to_thread(producer.abort_transaction, timeout)
            else:
                await self._drop_writer()
            raise
        if len(offsets) != len(records):
            raise KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT, "not every record was delivered"))
        return max(offsets)

    async def close(self) -> None:
        self._stop.set()
        self._wake.set()  # a parked reader ends now
        if self._reader is not None:
            await asyncio.to_thread(self._reader.join, 5)
        if self._consumer is not None:
            await asyncio.to_thread(self._consumer.close)
        if self._probe is not None:
            await asyncio.to_thread(self._probe.close)
        await self._drop_writer()
        self._reader = self._consumer = self._probe = None
