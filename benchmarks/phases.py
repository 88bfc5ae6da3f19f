"""The measured phases of bench.py: produce (tight loop), consume (assign() from offset
0) and end-to-end latency (paced producer + consumer thread)."""

from __future__ import annotations

import resource
import threading
import time
import uuid
from typing import Any

from common import MB, payload, percentile, read_cpu_s
from confluent_kafka import Consumer, Producer, TopicPartition


def produce_phase(bootstrap: str, topic: str, size: int, acks: str, max_msgs: int,
                  seconds: float, flush_timeout: float, pid: int | None,
                  partitions: int | None = None) -> dict[str, Any]:
    """Tight produce loop bounded by max_msgs and seconds; flush; count errors."""
    errors = {"n": 0, "first": None}

    def on_delivery(err, msg):  # called only for failed deliveries
        if err is not None:
            errors["n"] += 1
            if errors["first"] is None:
                errors["first"] = str(err)

    p = Producer({
        "bootstrap.servers": bootstrap,
        "acks": acks,
        "linger.ms": 10,
        "batch.size": 1_000_000,
        "batch.num.messages": 100_000,
        "message.max.bytes": 2_000_000,
        "queue.buffering.max.messages": 2_000_000,
        "queue.buffering.max.kbytes": 512 * 1024,
        "compression.type": "none",
        "enable.idempotence": False,
        "delivery.report.only.error": True,
        "on_delivery": on_delivery,
    })
    # Connect and fetch metadata before the clock starts.
    p.list_topics(topic, timeout=10.0)
    value = payload(size)
    produce = p.produce
    poll = p.poll
    sent = 0
    cpu0 = read_cpu_s(pid)
    ccpu0 = time.process_time()
    t0 = time.perf_counter()
    deadline = t0 + seconds
    if partitions:  # explicit round robin (used for the 100-partition RSS phase)
        while sent < max_msgs:
            try:
                produce(topic, value, partition=sent % partitions)
            except BufferError:
                poll(0.1)
                if time.perf_counter() > deadline:
                    break
                continue
            sent += 1
            if not sent & 63:
                poll(0)
                if time.perf_counter() > deadline:
                    break
    else:
        while sent < max_msgs:
            try:
                produce(topic, value)
            except BufferError:
                poll(0.1)
                if time.perf_counter() > deadline:
                    break
                continue
            sent += 1
            if not sent & 63:
                poll(0)
                if time.perf_counter() > deadline:
                    break
    t_loop = time.perf_counter()
    remaining = p.flush(flush_timeout)
    t1 = time.perf_counter()
    cpu1 = read_cpu_s(pid)
    client_cpu = time.process_time() - ccpu0
    delivered = sent - errors["n"] - remaining
    elapsed = t1 - t0
    res = {
        "size": size, "acks": acks, "topic": topic,
        "sent": sent, "delivered": delivered, "errors": errors["n"],
        "undelivered_after_flush": remaining,
        "elapsed_s": round(elapsed, 3), "flush_s": round(t1 - t_loop, 3),
        "mb_s": delivered * size / MB / elapsed,
        "msg_s": delivered / elapsed,
        "client_cpu_s": round(client_cpu, 2),
    }
    if errors["first"]:
        res["first_error"] = errors["first"]
    if cpu0 is not None and cpu1 is not None:
        res["broker_cpu_s"] = round(cpu1 - cpu0, 2)
    return res


def consume_phase(bootstrap: str, topic: str, partitions: int, expect_msgs: int,
                  seconds: float, pid: int | None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read the topic from offset 0 with assign() (no group protocol needed); ``overrides``
    replace consumer settings."""
    c = Consumer({
        "bootstrap.servers": bootstrap,
        # The Python client insists on a group.id; with assign() and no commits
        # it is never used for membership.
        "group.id": f"bench-{uuid.uuid4().hex}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "fetch.max.bytes": 16 * 1024 * 1024,
        "max.partition.fetch.bytes": 4 * 1024 * 1024,
        "queued.max.messages.kbytes": 256 * 1024,
        "enable.partition.eof": False,
        "check.crcs": False,
        # librdkafka pauses fetching for fetch.queue.backoff.ms (1 s) once
        # queued.min.messages (100k) are buffered locally; with 100 B values
        # that is hit at once and would measure the client, not the broker.
        "queued.min.messages": 10_000_000,
        "fetch.queue.backoff.ms": 10,
        **(overrides or {}),
    })
    try:
        c.list_topics(topic, timeout=10.0)
        got = 0
        nbytes = 0
        errs = 0
        first_err = None
        cpu0 = read_cpu_s(pid)
        ccpu0 = time.process_time()
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        deadline = t0 + seconds
        c.assign([TopicPartition(topic, i, 0) for i in range(partitions)])
        t_last = t0
        while got < expect_msgs and time.perf_counter() < deadline:
            msgs = c.consume(num_messages=10_000, timeout=0.5)
            for m in msgs:
                if m.error() is not None:
                    errs += 1
                    first_err = first_err or str(m.error())
                    continue
                got += 1
                nbytes += len(m.value())
            if msgs:
                t_last = time.perf_counter()
        cpu1 = read_cpu_s(pid)
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        elapsed = max(t_last - t0, 1e-9)
        res = {
            "topic": topic, "expected": expect_msgs, "received": got, "errors": errs,
            "complete": got >= expect_msgs,
            "elapsed_s": round(elapsed, 3),
            "mb_s": nbytes / MB / elapsed, "msg_s": got / elapsed,
            "client_cpu_s": round(time.process_time() - ccpu0, 2),
            # the client's kernel time and page faults (all its threads): what a broker's answer
            # sizes and pace cost librdkafka's allocator (benchmarks/README.md, consume, fifth session)
            "client_sys_s": round(ru1.ru_stime - ru0.ru_stime, 3),
            "client_minflt": ru1.ru_minflt - ru0.ru_minflt,
        }
        if first_err:
            res["first_error"] = first_err
        if cpu0 is not None and cpu1 is not None:
            res["broker_cpu_s"] = round(cpu1 - cpu0, 2)
        return res
    finally:
        c.close()


def latency_phase(bootstrap: str, topic: str, partitions: int, rate: int, seconds: float,
                  size: int, drain_s: float) -> dict[str, Any]:
    """Paced producer (main thread) + consumer thread in one process.

    The value starts with the perf_counter_ns at send time; the consumer
    thread stamps arrival with the same clock.  The consumer keeps the
    client's default fetch.wait.max.ms (the broker's long-poll is part of what
    is measured); the producer uses linger.ms=0.
    """
    ack_ns: list[int] = []

    def on_ack(err, m):
        if err is None and m.value()[0] == 1:
            ack_ns.append(time.perf_counter_ns() - int.from_bytes(m.value()[1:9], "big"))

    p = Producer({
        "bootstrap.servers": bootstrap,
        "acks": "1",
        "linger.ms": 0,
        "on_delivery": on_ack,
        "compression.type": "none",
        "enable.idempotence": False,
    })
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"bench-{uuid.uuid4().hex}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": False,
        # fetch.wait.max.ms / fetch.min.bytes intentionally left at defaults.
    })
    pad = payload(max(0, size - 17))
    lat_ns: list[int] = []
    state = {"probe": 0, "stop": False, "err": None, "dup": 0}
    seen: set[int] = set()

    def consumer_loop():
        try:
            while not state["stop"]:
                # poll(), not consume(num_messages=N): a batch consume waits for N
                # messages or the whole timeout, which would add up to 100 ms here.
                polled = c.poll(0.1)
                for m in ([polled] if polled is not None else []):
                    now = time.perf_counter_ns()
                    if m.error() is not None:
                        state["err"] = state["err"] or str(m.error())
                        continue
                    v = m.value()
                    kind = v[0]
                    sent_ns = int.from_bytes(v[1:9], "big")
                    seq = int.from_bytes(v[9:17], "big")
                    if kind == 0:  # probe / warm-up
                        state["probe"] += 1
                    else:
                        if seq in seen:
                            state["dup"] += 1
                            continue
                        seen.add(seq)
                        lat_ns.append(now - sent_ns)
        except Exception as e:  # pragma: no cover
            state["err"] = repr(e)

    def msg(kind: int, seq: int) -> bytes:
        return bytes([kind]) + time.perf_counter_ns().to_bytes(8, "big") + seq.to_bytes(8, "big") + pad

    try:
        p.list_topics(topic, timeout=10.0)
        c.list_topics(topic, timeout=10.0)
        c.assign([TopicPartition(topic, i, 0) for i in range(partitions)])
        th = threading.Thread(target=consumer_loop, name="latency-consumer", daemon=True)
        th.start()
        # Warm-up: until probes sent to every partition have all been
        # consumed, so the consumer is positioned and fetching everywhere.
        warm_deadline = time.monotonic() + max(10.0, seconds)
        nprobe = 0
        while time.monotonic() < warm_deadline:
            for i in range(partitions):
                p.produce(topic, msg(0, nprobe), partition=i)
                nprobe += 1
            p.flush(5.0)
            t_wait = time.monotonic() + 2.0
            while state["probe"] < nprobe and time.monotonic() < min(t_wait, warm_deadline):
                time.sleep(0.005)
            if state["probe"] >= nprobe:
                break
        if state["probe"] < nprobe:
            raise RuntimeError(f"consumer did not catch up during warm-up "
                               f"({state['probe']}/{nprobe} probes)")
        # Paced run.
        interval = 1.0 / rate
        total = int(rate * seconds)
        t0 = time.perf_counter()
        late = 0
        for seq in range(total):
            target = t0 + seq * interval
            now = time.perf_counter()
            if now - target > 0.005:
                late += 1
            while now < target:  # wait, serving delivery reports meanwhile
                if target - now >= 0.002:
                    p.poll(target - now - 0.001)  # ms granularity; no busy spin
                else:
                    time.sleep(target - now)
                now = time.perf_counter()
            while True:
                try:
                    p.produce(topic, msg(1, seq), partition=seq % partitions)
                    break
                except BufferError:
                    p.poll(0.01)
            p.poll(0)
        send_elapsed = time.perf_counter() - t0
        p.flush(10.0)
        drain_deadline = time.monotonic() + drain_s
        while len(lat_ns) < total and time.monotonic() < drain_deadline:
            time.sleep(0.01)
        state["stop"] = True
        th.join(timeout=5.0)
        vals = sorted(x / 1e6 for x in lat_ns)
        acks = sorted(x / 1e6 for x in ack_ns)
        res = {
            "topic": topic, "rate": rate, "sent": total, "received": len(vals),
            "lost": total - len(vals), "duplicates": state["dup"],
            "achieved_rate": round(total / send_elapsed, 1), "late_sends": late,
            "p50_ms": percentile(vals, 50), "p95_ms": percentile(vals, 95),
            "p99_ms": percentile(vals, 99), "p999_ms": percentile(vals, 99.9), "max_ms": vals[-1] if vals else float("nan"),
            "mean_ms": sum(vals) / len(vals) if vals else float("nan"),
            # produce request round trip as seen by the producer (send -> ack)
            "ack_p50_ms": percentile(acks, 50), "ack_p99_ms": percentile(acks, 99),
        }
        if state["err"]:
            res["first_error"] = state["err"]
        return res
    finally:
        state["stop"] = True
        c.close()

