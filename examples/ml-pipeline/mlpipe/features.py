"""3. FEATURE ENGINEERING: consumer group `feature-generators`, processed-events -> features.

Per user, over a window of their last 20 events: category affinity (weighted by event type: a
purchase says more than a view), recency and counts. The state lives in memory AND in the compacted
changelog topic feature-generators-state (the latest state per user, on the partition of the input
it came from), written in the same transaction as the features and the input offsets. So a restarted
generator reloads exactly the state that matches the offsets it resumes from: no event is counted
twice or lost, and the features are the same as in a run that never crashed."""

from __future__ import annotations

import json
import math
import threading

from confluent_kafka import Message, Producer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from .config import CATEGORIES, Pipeline, log, read_to_end
from .txloop import TransactionalStage

GROUP = "feature-generators"
WINDOW = 20
WEIGHTS = {"view": 1.0, "click": 2.0, "add_to_cart": 3.0, "purchase": 5.0}
FEATURE_NAMES = [f"affinity_{c}" for c in CATEGORIES] + ["recency_h", "log_events", "window_fill"]


def empty_state() -> dict:
    return {"recent": [], "last_ts": None, "events": 0}


def feature_vector(state: dict, now_ms: int) -> dict[str, float]:
    """The model's inputs for a user as of `now_ms`, from the state (a pure function: replays agree)."""
    weight = {c: 0.0 for c in CATEGORIES}
    for cat, kind in state["recent"]:
        weight[cat] += WEIGHTS[kind]
    total = sum(weight.values()) or 1.0
    recency = (now_ms - state["last_ts"]) / 1000 if state["last_ts"] is not None else 86400.0
    out = {f"affinity_{c}": round(weight[c] / total, 6) for c in CATEGORIES}
    # all in [0, ~1]: SGD learns best on inputs of one scale
    out["recency_h"] = round(min(max(recency, 0.0) / 3600, 24.0) / 24, 6)
    out["log_events"] = round(math.log1p(state["events"]) / 10, 6)
    out["window_fill"] = len(state["recent"]) / WINDOW
    return out


def update(state: dict, ev: dict) -> dict:
    recent = (state["recent"] + [[ev["category"], ev["event_type"]]])[-WINDOW:]
    return {"recent": recent, "last_ts": ev["ts_ms"], "events": state["events"] + 1}


class FeatureGenerator:
    def __init__(self, p: Pipeline) -> None:
        self.p = p
        self.deserialize = AvroDeserializer(SchemaRegistryClient({"url": p.registry}))
        self.state: dict[int, dict[str, dict]] = {}  # partition -> user -> state

    def restore(self, partitions: list[int]) -> None:
        """Reload the state of these partitions from the changelog (the latest record per user wins)."""
        for part in partitions:
            self.state[part] = {}
        if not partitions:
            return
        records = read_to_end(self.p, self.p.feature_state, partitions=partitions)
        for msg in records:
            self.state[msg.partition()][msg.key().decode()] = json.loads(msg.value())
        log.info("feature-generators: restored %d user states of partitions %s", len(records), partitions)

    def assigned(self, partitions: list[TopicPartition]) -> None:
        self.restore([tp.partition for tp in partitions])

    def revoked(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self.state.pop(tp.partition, None)

    def handle(self, msg: Message, producer: Producer) -> None:
        ev = self.deserialize(msg.value(), SerializationContext(msg.topic(), MessageField.VALUE))
        users = self.state.setdefault(msg.partition(), {})
        before = users.get(ev["user_id"], empty_state())
        after = update(before, ev)
        users[ev["user_id"]] = after
        record = {"event_id": ev["event_id"], "user_id": ev["user_id"], "ts_ms": ev["ts_ms"],
                  "label": ev["category"],  # what the user turned to: the training target
                  "features_before": feature_vector(before, ev["ts_ms"]),  # what was known then
                  "features": feature_vector(after, ev["ts_ms"])}  # for the next recommendation
        producer.produce(self.p.features, key=msg.key(), value=json.dumps(record), timestamp=ev["ts_ms"])
        producer.produce(self.p.feature_state, key=msg.key(), value=json.dumps(after), partition=msg.partition())


def feature_stage(p: Pipeline, instance: int = 0, crash_after: int | None = None,
                  max_batch: int = 200) -> TransactionalStage:
    gen = FeatureGenerator(p)
    return TransactionalStage(p, group=p.name(GROUP), instance=instance, source=p.processed, handle=gen.handle,
                              on_assign=gen.assigned, on_revoke=gen.revoked, on_abort=gen.restore,
                              crash_after=crash_after, max_batch=max_batch)


def run_feature_generator(p: Pipeline, stop: threading.Event, instance: int = 0,
                          crash_after: int | None = None, max_batch: int = 200) -> None:
    feature_stage(p, instance, crash_after, max_batch).run(stop)
