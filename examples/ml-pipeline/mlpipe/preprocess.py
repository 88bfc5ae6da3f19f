"""2. PREPROCESSING: consumer group `preprocessors`, raw-user-events -> processed-events.

Validation (a bad event goes to the dead-letter topic, untouched, with the reason in the
`error.reason` header), cleaning (trimmed, lower-case names) and sessionisation (a new session after
30 minutes without events). Run more instances (`--instances N`, or a second process with another
`--first-instance`) and the group spreads the 10 partitions over them."""

from __future__ import annotations

import threading
import time

from confluent_kafka import Message, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from .config import CATEGORIES, DAY_MS, EVENT_TYPES, Pipeline
from .schemas import PROCESSED_EVENT
from .txloop import TransactionalStage

GROUP = "preprocessors"
SESSION_GAP_MS = 30 * 60 * 1000


def problem(ev: dict, now_ms: int) -> str | None:
    """Why a (cleaned) event is unusable, or None."""
    if not ev["user_id"]:
        return "missing user_id"
    if ev["event_type"] not in EVENT_TYPES:
        return f"unknown event_type {ev['event_type']!r}"
    if ev["category"] not in CATEGORIES:
        return f"unknown category {ev['category']!r}"
    if ev["price"] < 0:
        return f"negative price {ev['price']}"
    if ev["ts_ms"] > now_ms + DAY_MS:
        return "event time more than a day in the future"
    return None


def clean(ev: dict) -> dict:
    return {**ev, "user_id": ev["user_id"].strip(), "event_type": ev["event_type"].strip().lower(),
            "category": ev["category"].strip().lower(), "item_id": ev["item_id"].strip()}


class Preprocessor:
    def __init__(self, p: Pipeline) -> None:
        self.p = p
        registry = SchemaRegistryClient({"url": p.registry})
        self.deserialize = AvroDeserializer(registry)
        self.serialize = AvroSerializer(registry, PROCESSED_EVENT)
        # user -> (session_id, last event time). In memory: after a rebalance a user's session may
        # restart (the feature-generators show how to keep such state in a changelog topic).
        self.sessions: dict[str, tuple[str, int]] = {}

    def handle(self, msg: Message, producer: Producer) -> None:
        try:
            ev = clean(self.deserialize(msg.value(), SerializationContext(msg.topic(), MessageField.VALUE)))
            reason = problem(ev, int(time.time() * 1000))
        except Exception as exc:  # not our Avro at all: that is a reason too
            ev, reason = {}, f"undecodable value: {exc}"
        if reason:
            headers = [("error.reason", reason.encode()), ("error.stage", GROUP.encode()),
                       ("source.topic", msg.topic().encode()),
                       ("source.partition", str(msg.partition()).encode()),
                       ("source.offset", str(msg.offset()).encode())]
            producer.produce(self.p.dead_letter, key=msg.key(), value=msg.value(), headers=headers)
            return
        session, last = self.sessions.get(ev["user_id"], ("", -SESSION_GAP_MS))
        if ev["ts_ms"] - last > SESSION_GAP_MS:
            session = f"{ev['user_id']}:{ev['ts_ms']}"
        self.sessions[ev["user_id"]] = (session, ev["ts_ms"])
        ev["session_id"] = session
        producer.produce(self.p.processed, key=msg.key(), timestamp=ev["ts_ms"],
                         value=self.serialize(ev, SerializationContext(self.p.processed, MessageField.VALUE)))


def preprocessor_stage(p: Pipeline, instance: int = 0) -> TransactionalStage:
    return TransactionalStage(p, group=p.name(GROUP), instance=instance, source=p.raw,
                              handle=Preprocessor(p).handle)


def run_preprocessors(p: Pipeline, stop: threading.Event, instances: int = 1, first_instance: int = 0) -> None:
    """Run `instances` members of the group, one thread each, until `stop`."""
    threads = [threading.Thread(target=preprocessor_stage(p, first_instance + i).run, args=(stop,),
                                name=f"preprocessor-{first_instance + i}") for i in range(instances)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
