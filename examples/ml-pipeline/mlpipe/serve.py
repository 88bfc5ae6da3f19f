"""4b. MODEL INFERENCE (stream): consumer group `ml-models`, features -> predictions.

Loads the latest model version, picks up newer ones from the `models` topic while it runs, and for
every feature record writes one prediction (the user's top categories, with the event id and the model
version that made it) in the same transaction as its input offsets: one prediction per event.

`replay` is the seed's "debug models by replaying specific time ranges": the same scoring over the
features of [from_ts, until_ts), found with offsets_for_times, with a chosen model version."""

from __future__ import annotations

import json
import threading

from confluent_kafka import Consumer, Message, Producer, TopicPartition

from .config import Pipeline, log, read_to_end
from .model import LoadedModel, get_version, latest_version
from .txloop import TransactionalStage

GROUP = "ml-models"


def predict(model: LoadedModel, record: dict) -> dict:
    return {"event_id": record["event_id"], "user_id": record["user_id"], "ts_ms": record["ts_ms"],
            "model_version": model.version, "recommendations": model.recommend(record["features"])}


class Server:
    def __init__(self, p: Pipeline, version: int | None = None) -> None:
        self.p = p
        doc = get_version(p, version) if version else latest_version(p)
        if doc is None:
            raise LookupError(f"no model in {p.models} yet: run `train` first")
        self.model = LoadedModel(doc)
        self.pinned = version is not None
        self.watch = Consumer(p.client(**{"group.id": "mlpipe-model-watch", "enable.auto.commit": False,
                                           "fetch.wait.max.ms": 50}))  # a new version shows at once
        parts = self.watch.list_topics(p.models, timeout=15).topics[p.models].partitions
        self.watch.assign([TopicPartition(p.models, i, -1) for i in parts])  # -1: only new versions
        log.info("ml-models: serving version %d", self.model.version)

    def refresh(self) -> None:
        msg = self.watch.poll(0)
        if self.pinned or msg is None or msg.error():
            return
        doc = json.loads(msg.value())
        if doc["version"] > self.model.version:
            self.model = LoadedModel(doc)
            log.info("ml-models: now serving version %d", self.model.version)

    def handle(self, msg: Message, producer: Producer) -> None:
        out = predict(self.model, json.loads(msg.value()))
        producer.produce(self.p.predictions, key=msg.key(), value=json.dumps(out), timestamp=out["ts_ms"])


def run_serve(p: Pipeline, stop: threading.Event, instance: int = 0, version: int | None = None) -> None:
    server = Server(p, version)
    try:
        TransactionalStage(p, group=p.name(GROUP), instance=instance, source=p.features,
                           handle=server.handle).run(stop, before_batch=server.refresh)
    finally:
        server.watch.close()


def replay(p: Pipeline, version: int, from_ts: int, until_ts: int) -> dict[str, dict]:
    """event_id -> prediction of model `version` for the features of [from_ts, until_ts)."""
    model = LoadedModel(get_version(p, version))
    out = {}
    for msg in read_to_end(p, p.features, from_ts=from_ts):
        record = json.loads(msg.value())
        if record["ts_ms"] < until_ts:
            out[record["event_id"]] = predict(model, record)
    return out
