"""The ``_schemas`` topic through Kafka's protocol: create it, replay it, append to it.

The registry is a client of the cluster like Confluent's and Karapace's (so it runs inside a node
or standalone against any Kafka cluster). librdkafka (confluent-kafka) does the Kafka side; its
calls block, so each runs on a thread of its own and hands results to the event loop with
``call_soon_threadsafe``: the node's loop never waits on them.

``SchemaTopic`` lifecycle: ``start()`` (create the topic if missing: one partition, compacted,
replication factor min(3, brokers); start the replay thread) -> ``append()`` any number of
times -> ``close()``. Replayed records go to ``on_records(batch)`` on the loop, in offset order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import uuid
from collections.abc import Callable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

__all__ = ["SchemaTopic"]

log = logging.getLogger("suoi.http.registry")

Batch = list[tuple[int, bytes | None, bytes | None]]  # (offset, key, value)


def client_config(bootstrap: str) -> dict[str, object]:
    return {"bootstrap.servers": bootstrap, "socket.connection.setup.timeout.ms": 10_000,
            "reconnect.backoff.max.ms": 1000, "log_level": 3, "logger": log}


class SchemaTopic:
    def __init__(self, bootstrap: str, topic: str, on_records: Callable[[Batch], None]) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self._on_records = on_records
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._reader: threading.Thread | None = None
        self._consumer: Consumer | None = None
        self._probe: Consumer | None = None
        self._producer: Producer | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop.clear()
        await asyncio.to_thread(self._create_topic)
        self._consumer = Consumer({**client_config(self.bootstrap), "group.id": f"suoi-schema-reader-{uuid.uuid4()}",
                                   "enable.auto.commit": False, "enable.partition.eof": False,
                                   "fetch.wait.max.ms": 100, "isolation.level": "read_committed"})
        self._consumer.assign([TopicPartition(self.topic, 0, OFFSET_BEGINNING)])
        # Watermark queries on a consumer of their own: one the reader thread polls answers them late.
        self._probe = Consumer({**client_config(self.bootstrap), "group.id": f"suoi-schema-probe-{uuid.uuid4()}",
                                "enable.auto.commit": False})
        self._producer = Producer({**client_config(self.bootstrap), "acks": "all", "linger.ms": 0,
                                   "enable.idempotence": True})
        self._reader = threading.Thread(target=self._read_loop, name="schema-registry-reader", daemon=True)
        self._reader.start()

    def _create_topic(self) -> None:
        admin = AdminClient(client_config(self.bootstrap))
        brokers = len(admin.list_topics(timeout=30).brokers)
        topic = NewTopic(self.topic, num_partitions=1, replication_factor=max(1, min(3, brokers)),
                         config={"cleanup.policy": "compact"})
        try:
            admin.create_topics([topic], request_timeout=30)[self.topic].result(30)
            log.info("created topic %s (compacted, replication factor %d)", self.topic, topic.replication_factor)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise

    async def end_offset(self) -> int:
        """The partition's high watermark: replaying up to it means having read every committed write."""
        assert self._probe is not None
        consumer = self._probe
        _, high = await asyncio.to_thread(consumer.get_watermark_offsets, TopicPartition(self.topic, 0), 10.0)
        return int(high)

    def _read_loop(self) -> None:
        assert self._consumer is not None and self._loop is not None
        while not self._stop.is_set():
            try:
                messages = self._consumer.consume(500, 0.2)
            except (KafkaException, RuntimeError) as exc:
                log.warning("_schemas replay: %s", exc)
                continue
            batch: Batch = []
            for m in messages:
                if m.error() is not None:
                    if not m.error().retriable() and m.error().code() != KafkaError._PARTITION_EOF:
                        log.warning("_schemas replay: %s", m.error())
                    continue
                batch.append((m.offset(), m.key(), m.value()))
            if batch:
                with contextlib.suppress(RuntimeError):  # loop closed while stopping
                    self._loop.call_soon_threadsafe(self._on_records, batch)

    async def append(self, records: list[tuple[bytes, bytes | None]], timeout: float = 30.0) -> int:
        """Append records (acks=all, in order); returns the offset of the last one."""
        assert self._producer is not None and self._loop is not None
        loop = self._loop
        done: asyncio.Future[int] = loop.create_future()
        remaining = [len(records)]
        last = [-1]

        def delivered(err: KafkaError | None, msg: object) -> None:  # on the producer's polling thread
            def settle() -> None:
                if done.done():
                    return
                if err is not None:
                    done.set_exception(KafkaException(err))
                    return
                last[0] = max(last[0], msg.offset())  # type: ignore[attr-defined]
                remaining[0] -= 1
                if remaining[0] == 0:
                    done.set_result(last[0])
            loop.call_soon_threadsafe(settle)

        producer = self._producer
        for key, value in records:
            producer.produce(self.topic, key=key, value=value, partition=0, on_delivery=delivered)
        await asyncio.to_thread(producer.flush, timeout)
        return await asyncio.wait_for(done, timeout)

    async def close(self) -> None:
        self._stop.set()
        if self._reader is not None:
            await asyncio.to_thread(self._reader.join, 5)
        if self._consumer is not None:
            await asyncio.to_thread(self._consumer.close)
        if self._probe is not None:
            await asyncio.to_thread(self._probe.close)
        if self._producer is not None:
            await asyncio.to_thread(self._producer.flush, 5)
        self._reader = self._consumer = self._probe = self._producer = None
