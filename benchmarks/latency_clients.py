"""bench_latency.py's two client processes, a librdkafka producer and consumer (multiprocessing,
spawn: no librdkafka state crosses a fork; everything they need comes in `cfg`, and they are
importable by the spawned interpreter from this module, not from the script's `__main__`).

Every message value carries the `time.perf_counter_ns()` of its `produce()` call and of its slot
in the schedule (`HEADER`); the consumer stamps arrival with the same clock right after `poll()`.
"""

from __future__ import annotations

import gc
import os
import time
import uuid
from array import array
from typing import Any

#: value layout: kind (0 warm-up, 1 measured), produce() call ns, slot ns, sequence number
HEADER = 25
LATE_NS = 1_000_000


def producer_main(cfg: dict[str, Any], t0_ns: Any, out: Any) -> None:
    """Produce `rate` msg/s from slot t0_ns on: warm-up slots first, then the measured ones."""
    from confluent_kafka import Producer

    gc.disable()  # a short-lived client makes no cycles worth a collector pause in the figures

    errors = [0]
    acks = array("q")  # produce() call -> delivery report, measured messages

    def on_delivery(err: Any, msg: Any) -> None:
        if err is not None:
            errors[0] += 1
        elif msg.value()[0] == 1:
            acks.append(time.perf_counter_ns() - int.from_bytes(msg.value()[1:9], "big"))

    conf = {"bootstrap.servers": cfg["bootstrap"], "client.id": "bench-latency-producer", "log_level": 4,
            "on_delivery": on_delivery, **cfg["client_props"]}
    if cfg["linger_ms"] is not None:
        conf["linger.ms"] = cfg["linger_ms"]
    p = Producer(conf)
    topic, partitions, rate = cfg["topic"], cfg["partitions"], cfg["rate"]
    p.list_topics(topic, timeout=10)
    pad = os.urandom(max(0, cfg["size"] - HEADER))
    warm, measured = int(rate * cfg["warmup"]), int(rate * cfg["seconds"])
    interval_ns = 1e9 / rate
    deadline = time.monotonic() + 30
    while t0_ns.value == 0 and time.monotonic() < deadline:  # the parent sets t0 once the consumer is up
        time.sleep(0.005)
    t0 = t0_ns.value
    if not t0:
        out.put({"error": "no start time from the parent"})
        return
    now_ns = time.perf_counter_ns
    late = cpu0 = sent_start = 0
    for i in range(warm + measured):
        slot = t0 + int(i * interval_ns)
        now = now_ns()
        if now < slot:
            if slot - now > 2_000_000:
                p.poll((slot - now - 1_000_000) / 1e9)  # serve delivery reports while waiting
                now = now_ns()
            if now < slot:
                time.sleep((slot - now) / 1e9)
        if i == warm:
            cpu0, sent_start, late = time.process_time(), now_ns(), 0
        elif now - slot > LATE_NS:
            late += 1
        value = ((i >= warm).to_bytes(1, "big") + now_ns().to_bytes(8, "big") + slot.to_bytes(8, "big")
                 + i.to_bytes(8, "big") + pad)
        while True:
            try:
                p.produce(topic, value, partition=i % partitions)
                break
            except BufferError:
                p.poll(0.001)
        p.poll(0)  # delivery reports as they come (the ack latency is then the client's, not the pacing's)
    sent_end = now_ns()
    cpu = time.process_time() - cpu0
    left = p.flush(cfg["drain"])
    out.put({"role": "producer", "sent": measured, "warm": warm, "late": late, "unflushed": left,
             "errors": errors[0], "send_s": (sent_end - sent_start) / 1e9, "cpu_s": cpu, "acks": acks.tobytes()})


def consumer_main(cfg: dict[str, Any], ready: Any, expected: Any, stop: Any, out: Any) -> None:
    """Read every partition from offset 0; latencies of measured messages until all arrived or stop."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    gc.disable()

    c = Consumer({"bootstrap.servers": cfg["bootstrap"], "group.id": f"bench-latency-{uuid.uuid4().hex}",
                  "client.id": "bench-latency-consumer", "enable.auto.commit": False, "log_level": 4,
                  "enable.auto.offset.store": False, **cfg["client_props"]})
    topic = cfg["topic"]
    c.assign([TopicPartition(topic, i, OFFSET_BEGINNING) for i in range(cfg["partitions"])])
    lat, sched = array("q"), array("q")
    stamps = array("q")  # partition, offset, produce() ns, arrival ns of each measured message (--probe)
    seen = bytearray(int(cfg["rate"] * (cfg["warmup"] + cfg["seconds"])) + 1)
    dup = warm = errors = 0
    first_error = ""
    cpu0: float | None = None
    ready.set()
    now_ns = time.perf_counter_ns
    deadline = time.monotonic() + cfg["warmup"] + cfg["seconds"] + cfg["drain"] + 60
    try:
        while not stop.is_set() and time.monotonic() < deadline:
            m = c.poll(0.05)
            if m is None:
                if 0 <= expected.value <= len(lat):
                    break
                continue
            now = now_ns()
            if m.error() is not None:
                errors += 1
                first_error = first_error or str(m.error())
                continue
            v = m.value()
            seq = int.from_bytes(v[17:25], "big")
            if seq < len(seen):
                if seen[seq]:
                    dup += 1
                    continue
                seen[seq] = 1
            if v[0] == 0:
                warm += 1
                continue
            if cpu0 is None:
                cpu0 = time.process_time()
            produced = int.from_bytes(v[1:9], "big")
            lat.append(now - produced)
            stamps.extend((m.partition(), m.offset(), produced, now))
            sched.append(now - int.from_bytes(v[9:17], "big"))
            if 0 <= expected.value <= len(lat):
                break
    finally:
        cpu = time.process_time() - (cpu0 or time.process_time())
        c.close()
    out.put({"role": "consumer", "lat": lat.tobytes(), "sched": sched.tobytes(), "stamps": stamps.tobytes(),
             "warm": warm, "dup": dup,
             "errors": errors, "first_error": first_error, "cpu_s": cpu})
