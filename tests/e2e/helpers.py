"""Client helpers for the end-to-end tests: every call talks to a real broker over TCP.

Consumers use explicit partition assignment (assign), because the broker has no group
coordinator yet; otherwise clients keep their default configuration.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from dataclasses import dataclass

import confluent_kafka
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer, TopicPartition

from tests.client_cleanup import close_client

KCAT = shutil.which("kcat") or shutil.which("kafkacat") or "/usr/bin/kcat"


@dataclass(frozen=True)
class Rec:
    """A consumed record, normalised across clients."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp: int


def create_topic(bootstrap: str, name: str, partitions: int = 1, config: dict[str, str] | None = None) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    fut = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1,
                                        config=config or {})], operation_timeout=10)[name]
    fut.result(timeout=15)


def _headers(h: object) -> tuple[tuple[str, bytes], ...]:
    if not h:
        return ()
    return tuple((k, v) for k, v in h)  # type: ignore[attr-defined]


# ---------------------------------------------------------------- confluent-kafka

def ck_produce(bootstrap: str, topic: str, records: list[dict], conf: dict | None = None) -> list[tuple[int, int]]:
    """Produce with confluent-kafka; returns the delivered (partition, offset) per record, in order."""
    p = confluent_kafka.Producer({"bootstrap.servers": bootstrap, **(conf or {})})
    results: list[object] = [None] * len(records)

    def cb(i: int):
        def on_delivery(err, msg):  # noqa: ANN001
            results[i] = err if err is not None else (msg.partition(), msg.offset())
        return on_delivery

    try:
        for i, r in enumerate(records):
            kw = {k: v for k, v in r.items() if v is not None}
            p.produce(topic, on_delivery=cb(i), **kw)
            p.poll(0)
        remaining = p.flush(20)
    finally:
        close_client(p)  # purged first: close() would otherwise wait for what was not delivered
    assert remaining == 0, f"{remaining} messages not delivered"
    errors = [r for r in results if not isinstance(r, tuple)]
    assert not errors, f"delivery errors: {errors[:3]}"
    return results  # type: ignore[return-value]


def ck_consume(bootstrap: str, topic: str, partitions: list[int], count: int,
               timeout: float = 15.0, conf: dict | None = None) -> list[Rec]:
    c = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": f"e2e-{topic}",
                                  # no group coordinator in the broker yet: nothing to commit to
                                  "enable.auto.commit": False, **(conf or {})})
    try:
        c.assign([confluent_kafka.TopicPartition(topic, p, confluent_kafka.OFFSET_BEGINNING)
                  for p in partitions])
        out: list[Rec] = []
        deadline = time.monotonic() + timeout
        while len(out) < count and time.monotonic() < deadline:
            for m in c.consume(num_messages=max(1, count - len(out)), timeout=0.5):
                if m.error():
                    if m.error().code() == confluent_kafka.KafkaError._PARTITION_EOF:
                        continue
                    raise AssertionError(f"consume error: {m.error()}")
                out.append(Rec(m.partition(), m.offset(), m.key(), m.value(), _headers(m.headers()),
                               m.timestamp()[1]))
        return out
    finally:
        c.close()


# ---------------------------------------------------------------- kafka-python

def kp_consume(bootstrap: str, topic: str, partitions: list[int], count: int,
               timeout: float = 15.0, **conf: object) -> list[Rec]:
    c = KafkaConsumer(bootstrap_servers=bootstrap, **conf)
    try:
        tps = [TopicPartition(topic, p) for p in partitions]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        out: list[Rec] = []
        deadline = time.monotonic() + timeout
        while len(out) < count and time.monotonic() < deadline:
            for _tp, msgs in c.poll(timeout_ms=500).items():
                for m in msgs:
                    out.append(Rec(m.partition, m.offset, m.key, m.value, _headers(m.headers), m.timestamp))
        return out
    finally:
        c.close()


# ---------------------------------------------------------------- aiokafka

def aio_consume(bootstrap: str, topic: str, partitions: list[int], count: int,
                timeout: float = 15.0, **conf: object) -> list[Rec]:
    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition as ATP

    async def run() -> list[Rec]:
        c = AIOKafkaConsumer(bootstrap_servers=bootstrap, **conf)
        await c.start()
        try:
            tps = [ATP(topic, p) for p in partitions]
            c.assign(tps)
            await c.seek_to_beginning(*tps)
            out: list[Rec] = []
            deadline = time.monotonic() + timeout
            while len(out) < count and time.monotonic() < deadline:
                batches = await c.getmany(*tps, timeout_ms=500)
                for msgs in batches.values():
                    for m in msgs:
                        out.append(Rec(m.partition, m.offset, m.key, m.value, _headers(m.headers), m.timestamp))
            return out
        finally:
            await c.stop()

    return asyncio.run(run())


def aio_produce(bootstrap: str, topic: str, records: list[dict], **conf: object) -> list[tuple[int, int]]:
    """records: dicts with value/key/headers/timestamp_ms/partition for AIOKafkaProducer.send."""
    from aiokafka import AIOKafkaProducer

    async def run() -> list[tuple[int, int]]:
        p = AIOKafkaProducer(bootstrap_servers=bootstrap, **conf)
        await p.start()
        try:
            futs = [await p.send(topic, **r) for r in records]
            metas = [await f for f in futs]
            return [(m.partition, m.offset) for m in metas]
        finally:
            await p.stop()

    return asyncio.run(run())


# ---------------------------------------------------------------- kcat

def kcat(*args: str, stdin: bytes | None = None, timeout: float = 20.0) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run([KCAT, *args], input=stdin, capture_output=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"kcat {args} exited {proc.returncode}: {proc.stderr.decode(errors='replace')}"
    return proc


def kcat_consume(bootstrap: str, topic: str, partition: int, count: int) -> list[dict]:
    """kcat -C -J: one JSON object per message (key/payload as text)."""
    proc = kcat("-C", "-b", bootstrap, "-t", topic, "-p", str(partition), "-o", "beginning",
                "-c", str(count), "-e", "-J", "-q")
    return [json.loads(line) for line in proc.stdout.decode().splitlines() if line.strip()]
