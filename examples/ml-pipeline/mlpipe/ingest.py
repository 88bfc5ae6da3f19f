"""1. DATA INGESTION: a simulator of user sessions producing to raw-user-events.

Every user has a hidden ground truth, a preferred category (and a second one), so there is something
real for the model to learn. Records are keyed by user_id (the seed's partition strategy: one user's
events stay in order on one partition) and their values are Avro through the schema registry. A small
share of events is broken on purpose, for the preprocessors' dead-letter topic."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field

from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from .config import CATEGORIES, DAY_MS, EVENT_TYPES, Pipeline, log
from .schemas import RAW_EVENT

# ways an event can be broken, each caught by one rule of the preprocessors
BREAKAGES = ("no_user", "bad_type", "bad_category", "negative_price", "future_ts")


@dataclass
class Simulation:
    """What was sent: the ground truth the tests check the pipeline against."""
    valid: list[str] = field(default_factory=list)
    invalid: dict[str, str] = field(default_factory=dict)  # event_id -> breakage
    preference: dict[str, str] = field(default_factory=dict)  # user_id -> preferred category


class UserSimulator:
    def __init__(self, users: int = 50, seed: int = 7, invalid_fraction: float = 0.05) -> None:
        self.rng = random.Random(seed)
        self.invalid_fraction = invalid_fraction
        self.users = [f"user-{i:04d}" for i in range(users)]
        self.taste = {}
        for u in self.users:
            first, second = self.rng.sample(CATEGORIES, 2)
            self.taste[u] = (first, second)
        self.seq = 0

    def category(self, user: str) -> str:
        first, second = self.taste[user]
        r = self.rng.random()
        return first if r < 0.6 else second if r < 0.8 else self.rng.choice(CATEGORIES)

    def event(self, ts_ms: int) -> tuple[dict, str | None]:
        """The next event and how it is broken (None: valid)."""
        user = self.rng.choice(self.users)
        self.seq += 1
        cat = self.category(user)
        ev = {"event_id": f"ev-{self.seq:08d}", "user_id": user,
              "event_type": self.rng.choices(EVENT_TYPES, (60, 25, 10, 5))[0],
              "item_id": f"{cat}-{self.rng.randrange(100):03d}", "category": cat,
              "price": round(self.rng.uniform(2, 300), 2), "ts_ms": ts_ms}
        broken = None
        if self.rng.random() < self.invalid_fraction:
            broken = self.rng.choice(BREAKAGES)
            if broken == "no_user":
                ev["user_id"] = ""
            elif broken == "bad_type":
                ev["event_type"] = "hover"
            elif broken == "bad_category":
                ev["category"] = "weapons"
            elif broken == "negative_price":
                ev["price"] = -ev["price"]
            else:
                ev["ts_ms"] = ts_ms + 30 * DAY_MS
        elif self.rng.random() < 0.1:  # messy but valid: the preprocessors clean it
            ev["event_type"] = " " + ev["event_type"].upper()
        return ev, broken


def run_ingest(p: Pipeline, *, events: int | None = None, rate: float | None = None, users: int = 50,
               seed: int = 7, invalid_fraction: float = 0.05, start_ts: int | None = None,
               step_ms: int = 100, first_event: int = 0, stop: threading.Event | None = None) -> Simulation:
    """Produce `events` events (None: until `stop`), at `rate` per second (None: as fast as possible).
    With a rate, events carry the wall clock; without one, a simulated clock from `start_ts` in steps
    of `step_ms`, so runs are reproducible."""
    stop = stop or threading.Event()
    sim = UserSimulator(users, seed, invalid_fraction)
    sim.seq = first_event  # event ids go on from there
    serialize = AvroSerializer(SchemaRegistryClient({"url": p.registry}), RAW_EVENT)
    producer = Producer(p.client(**{"linger.ms": 5, "enable.idempotence": True}))
    out = Simulation(preference={u: t[0] for u, t in sim.taste.items()})
    clock = start_ts if start_ts is not None else int(time.time() * 1000)
    n = 0
    while (events is None or n < events) and not stop.is_set():
        ts = int(time.time() * 1000) if rate else clock + n * step_ms
        ev, broken = sim.event(ts)
        value = serialize(ev, SerializationContext(p.raw, MessageField.VALUE))
        producer.produce(p.raw, key=ev["user_id"].encode() or None, value=value, timestamp=ts)
        if broken:
            out.invalid[ev["event_id"]] = broken
        else:
            out.valid.append(ev["event_id"])
        n += 1
        producer.poll(0)
        if rate:
            time.sleep(1 / rate)  # pacing the simulator, not synchronisation
    if producer.flush(30):
        raise RuntimeError("ingest: events not delivered in 30 s")
    log.info("ingest: %d events (%d broken on purpose)", n, len(out.invalid))
    return out
