"""Topic and group names, the seed's topic settings, and the few client helpers every stage shares.

A `Pipeline` carries the addresses and an optional name prefix, so several pipelines (the tests')
can share one node without seeing each other's data."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

log = logging.getLogger("mlpipe")

DAY_MS = 24 * 3600 * 1000
CATEGORIES = ("books", "electronics", "fashion", "home", "sports")
EVENT_TYPES = ("view", "click", "add_to_cart", "purchase")


@dataclass(frozen=True)
class Pipeline:
    bootstrap: str = "127.0.0.1:9092"
    registry: str = "http://127.0.0.1:8081"
    prefix: str = ""
    partitions: int = 10  # the seed's "Partitions: 10"

    def name(self, base: str) -> str:
        return self.prefix + base

    # topics, in the order data flows through them (the seed's names)
    @property
    def raw(self) -> str:
        return self.name("raw-user-events")

    @property
    def dead_letter(self) -> str:
        return self.name("raw-user-events.dlq")

    @property
    def processed(self) -> str:
        return self.name("processed-events")

    @property
    def features(self) -> str:
        return self.name("features")

    @property
    def feature_state(self) -> str:
        """The feature-generators' changelog: their per-user state, compacted to the latest per user."""
        return self.name("feature-generators-state")

    @property
    def models(self) -> str:
        return self.name("models")

    @property
    def predictions(self) -> str:
        return self.name("predictions")

    def topic_configs(self) -> dict[str, dict[str, str]]:
        """The seed's best practices: 7 days for raw data, 30 days for features; compacted state."""
        week, month = str(7 * DAY_MS), str(30 * DAY_MS)
        return {
            self.raw: {"retention.ms": week},
            self.dead_letter: {"retention.ms": week},
            self.processed: {"retention.ms": week},
            self.features: {"retention.ms": month},
            self.feature_state: {"cleanup.policy": "compact"},
            self.models: {"cleanup.policy": "compact"},
            self.predictions: {"retention.ms": week},
        }

    def client(self, **extra: object) -> dict[str, object]:
        return {"bootstrap.servers": self.bootstrap, **extra}


def create_topics(p: Pipeline) -> list[str]:
    """Create the pipeline's topics (10 partitions; RF 3 once the cluster has 3 brokers). Returns
    the names created now; existing topics are left as they are."""
    admin = AdminClient(p.client())
    brokers = len(admin.list_topics(timeout=15).brokers)
    rf = min(3, brokers)
    new = [NewTopic(name, p.partitions, rf, config=cfg) for name, cfg in p.topic_configs().items()]
    created = []
    for name, fut in admin.create_topics(new, request_timeout=30).items():
        try:
            fut.result(30)
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                raise
    log.info("topics ready (replication factor %d): %s", rf, ", ".join(sorted(p.topic_configs())))
    return created


def read_to_end(p: Pipeline, topic: str, *, partitions: list[int] | None = None,
                from_ts: int | None = None, timeout: float = 30.0) -> list:
    """Every committed record of `topic` (or of some partitions), from the beginning or from the first
    record at/after `from_ts` (offsets_for_times), up to the end as it is now. No consumer group: this
    is the seed's `seek_to_beginning()` replay, used to train, to restore state and to debug.

    offsets_for_times only gives a place to start: it is the first record, data or transaction marker,
    stamped at/after `from_ts`, and markers carry the time they were written, not event time. So the
    records before `from_ts` that follow are dropped here."""
    consumer = Consumer(p.client(**{"group.id": "mlpipe-replay", "enable.auto.commit": False,
                                    "enable.partition.eof": True, "isolation.level": "read_committed"}))
    try:
        if partitions is None:
            partitions = sorted(consumer.list_topics(topic, timeout=15).topics[topic].partitions)
        tps = [TopicPartition(topic, i, -2) for i in partitions]  # -2: OFFSET_BEGINNING
        if from_ts is not None:
            tps = [TopicPartition(topic, i, from_ts) for i in partitions]
            tps = consumer.offsets_for_times(tps, timeout=15)  # -1 (end) where nothing is that late
        # a partition with nothing to read reports no EOF when assigned at its end: skip it
        todo = {tp.partition for tp in tps if consumer.get_watermark_offsets(tp, timeout=15)[1] > 0}
        consumer.assign([tp for tp in tps if tp.partition in todo])
        out = []
        deadline = time.monotonic() + timeout
        while todo:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic}: partitions {sorted(todo)} not at their end")
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == -191:  # _PARTITION_EOF
                    todo.discard(msg.partition())
                    continue
                raise KafkaException(msg.error())
            if from_ts is None or msg.timestamp()[1] >= from_ts:
                out.append(msg)
        return out
    finally:
        consumer.close()
