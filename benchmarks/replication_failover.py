"""bench_replication.py's failover phase (see its docstring): a paced idempotent acks=all producer
in its own thread, the partition leader signalled, the new leader and the first acknowledgement
timed from the signal, the partition read back (lost acknowledged messages, duplicates) and the
signalled broker timed back into the ISR; the medians over trials."""

from __future__ import annotations

import argparse
import signal
import statistics
import threading
import time
import uuid
from typing import Any

from common import fmt_num, log
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from replication_cluster import BROKERS, LocalCluster, create_topic, delete_topic, partition_state, wait_for

# Clients that live through a broker being stopped: librdkafka would print every refused
# reconnect; failed deliveries are counted from the delivery reports instead.
QUIET = {"log_level": 2, "log.connection.close": False}


class PacedProducer:
    """An idempotent acks=all producer in its own thread, one message every 1/rate s;
    values are sequence numbers; send and delivery times are kept per sequence number."""

    def __init__(self, bootstrap: str, topic: str, rate: float, size: int) -> None:
        self.topic = topic
        self.interval = 1.0 / rate
        self.pad = b"x" * max(0, size - 8)
        self.p: Producer | None = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                                            "linger.ms": 0, "compression.type": "none", **QUIET})
        self.lock = threading.Lock()
        self.sent_at: list[float] = []
        self.acked: dict[int, float] = {}  # seq -> delivery report time
        self.failed: dict[int, str] = {}
        self.stopping = threading.Event()
        self.remaining = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _on_delivery(self, err: Any, msg: Any) -> None:
        t = time.perf_counter()
        seq = int(msg.value()[:8])
        with self.lock:
            if err is None:
                self.acked[seq] = t
            else:
                self.failed[seq] = str(err)

    def _run(self) -> None:
        p = self.p
        assert p is not None
        t_next = time.perf_counter()
        seq = 0
        while not self.stopping.is_set():
            now = time.perf_counter()
            if now >= t_next:
                try:
                    p.produce(self.topic, b"%08d" % seq + self.pad, on_delivery=self._on_delivery)
                    with self.lock:
                        self.sent_at.append(now)
                    seq += 1
                except BufferError:
                    pass
                t_next += self.interval
            p.poll(max(0.0, min(0.05, t_next - time.perf_counter())))
        self.remaining = p.flush(60)
        self.p = None  # let the handle go now, not when the cluster is stopped

    def first_ack_sent_after(self, t: float) -> float | None:
        """Delivery time of the first message produced at or after t that was acknowledged."""
        with self.lock:
            times = [self.acked[s] for s in range(len(self.sent_at)) if self.sent_at[s] >= t and s in self.acked]
        return min(times) if times else None


def read_back(bootstrap: str, topic: str, timeout: float) -> list[int]:
    """Every sequence number in partition 0, in offset order."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex}", **QUIET,
                  "enable.auto.commit": False, "auto.offset.reset": "earliest", "enable.partition.eof": False})
    try:
        _, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        c.assign([TopicPartition(topic, 0, 0)])
        seqs: list[int] = []
        last = -1
        deadline = time.monotonic() + timeout
        while last < high - 1 and time.monotonic() < deadline:
            for m in c.consume(num_messages=10_000, timeout=0.5):
                value, offset = m.value(), m.offset()
                if m.error() is None and value is not None and offset is not None:
                    seqs.append(int(value[:8]))
                    last = offset
        if last < high - 1:
            log(f"read-back of {topic} stopped at offset {last} of {high}")
        return seqs
    finally:
        c.close()


def failover_trial(c: LocalCluster, args: argparse.Namespace, sig: int) -> dict[str, Any]:
    topic = f"bench-failover-{uuid.uuid4().hex[:8]}"
    create_topic(c.bootstrap, topic, 1, 3, {"min.insync.replicas": "2"})
    admin = AdminClient({"bootstrap.servers": c.bootstrap, **QUIET})
    leader, isr = wait_for("failover topic metadata", lambda: partition_state(admin, topic), 30)
    pp = PacedProducer(c.bootstrap, topic, args.failover_rate, args.size)
    pp.thread.start()
    res: dict[str, Any] = {"topic": topic, "old_leader": leader}
    t_kill = time.perf_counter()
    try:
        wait_for("steady acknowledgements before the kill",
                  lambda: len(pp.acked) >= max(50, args.failover_rate * args.failover_warmup), 60)
        t_kill = c.kill(leader, sig)
        log(f"{c.label}: {signal.Signals(sig).name} node {leader} (leader of {topic}, ISR {isr}), "
            f"exited after {time.perf_counter() - t_kill:.2f}s")
        survivors = AdminClient({"bootstrap.servers": ",".join(c.node(n)["address"] for n in BROKERS if n != leader),
                                 **QUIET})
        t_new_leader = None
        t_first = None
        deadline = t_kill + args.failover_timeout
        while time.perf_counter() < deadline and (t_first is None or t_new_leader is None):
            if t_new_leader is None:
                st = partition_state(survivors, topic)
                if st is not None and st[0] not in (-1, leader):
                    t_new_leader = time.perf_counter()
                    res["new_leader"], res["isr_after"] = st
            if t_first is None:
                t_first = pp.first_ack_sent_after(t_kill)
            time.sleep(0.02)
        res["new_leader_s"] = None if t_new_leader is None else t_new_leader - t_kill
        res["first_ack_s"] = None if t_first is None else t_first - t_kill
        time.sleep(1.0)  # keep producing a little after the failover
    finally:
        pp.stopping.set()
        pp.thread.join(90)
    with pp.lock:
        sent, acked, failed = len(pp.sent_at), set(pp.acked), dict(pp.failed)
        after = sorted(t for t in pp.acked.values() if t >= t_kill)
    # The longest time without any delivery report from the signal on (what the application sees).
    res["longest_pause_s"] = max((b - a for a, b in zip([t_kill, *after], after, strict=False)), default=None)
    seqs = read_back(c.bootstrap, topic, 60)
    res.update({"sent": sent, "acked": len(acked), "failed": len(failed), "undelivered": pp.remaining,
                "lost_acked": len(acked - set(seqs)), "duplicates": len(seqs) - len(set(seqs)),
                "read_back": len(seqs)})
    if failed:
        res["first_failure"] = next(iter(failed.values()))
    # Bring the killed broker back and time it into the ISR.
    t0 = time.perf_counter()
    c.start_node(leader)
    try:
        wait_for("the restarted broker back in the ISR",
                  lambda: (st := partition_state(admin, topic)) is not None and leader in st[1], 60, 0.1)
        res["rejoin_isr_s"] = time.perf_counter() - t0
    except TimeoutError as e:
        log(f"{c.label}: {e}")
        res["rejoin_isr_s"] = None
    delete_topic(c.bootstrap, topic)
    return res


def run_failover(c: LocalCluster, args: argparse.Namespace, sig: int = signal.SIGKILL) -> dict[str, Any]:
    trials = []
    for i in range(args.failover_trials):
        res = failover_trial(c, args, sig)
        log(f"{c.label}: failover ({signal.Signals(sig).name}) {i + 1}: "
            f"new leader in metadata after {fmt_num(res['new_leader_s'])}s, "
            f"first ack after {fmt_num(res['first_ack_s'])}s, longest pause {fmt_num(res['longest_pause_s'])}s, "
            f"failed {res['failed']}, lost {res['lost_acked']}, duplicates {res['duplicates']}")
        trials.append(res)
    firsts = [t["first_ack_s"] for t in trials if t["first_ack_s"] is not None]
    leaders = [t["new_leader_s"] for t in trials if t["new_leader_s"] is not None]
    pauses = [t["longest_pause_s"] for t in trials if t["longest_pause_s"] is not None]
    return {"trials": trials,
            "first_ack_s": statistics.median(firsts) if len(firsts) == len(trials) else None,
            "new_leader_s": statistics.median(leaders) if len(leaders) == len(trials) else None,
            "longest_pause_s": statistics.median(pauses) if len(pauses) == len(trials) else None,
            "failed": sum(t["failed"] + t["undelivered"] for t in trials),
            "lost_acked": sum(t["lost_acked"] for t in trials), "duplicates": sum(t["duplicates"] for t in trials)}
