"""Where a message's end-to-end latency goes, from inside the broker (`bench_latency.py --probe`).

Runs `suoi broker ...` in this process with diagnostic hooks that are not in the product:

* per-message stamps (CLOCK_MONOTONIC ns, the clock the harness's messages carry): when the
  bytes of a Produce were read (`KafkaConnection.buffer_updated`, `data_received` in older trees), when its batches were appended
  (`Partition.append_records`: partition, base offset, record count), and when a consumer's read
  first returned them (`Partition.read`, replica id < 0: partition, fetch offset, high watermark;
  the answer is written in the same callback). The harness joins them with the consumer's
  (partition, offset, produce() time, arrival) to split each message's latency into the
  producer's side, the broker's queueing before the append, the wait for a consumer Fetch, and
  the consumer's side;
* every event-loop callback timed (a `uvloop.Loop` subclass wraps what `call_soon`, `call_at`
  and `call_later` schedule - timers, task steps, future callbacks -, and the read (`buffer_updated`) is
  wrapped on the class): wall and thread CPU time (`time.thread_time`: holds on a loaded
  machine, where wall time includes waiting for a CPU). Callbacks over `SLOW_CPU_S` of CPU or
  `SLOW_WALL_S` of wall time are kept with their name and start;
* the collector's pauses by generation (`gc.callbacks`), wall and CPU.

SIGUSR1 writes what was gathered since the last dump to ``<out>.<n>.json`` and starts over.
Only topics whose name starts with `TOPIC_PREFIX` are stamped.

    python benchmarks/latency_probe.py --out /tmp/probe broker --config server.properties
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import signal
import sys
import time
from array import array
from typing import Any

TOPIC_PREFIX = "latency-"
SLOW_CPU_S = 0.001
SLOW_WALL_S = 0.005
#: a gap this long between two callbacks: the loop was waiting for events (idle) in between
IDLE_GAP_NS = 50_000
#: CPU-time histogram bounds of every callback (seconds)
CPU_BUCKETS_S = (0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05)

_now = time.perf_counter_ns
_cpu = time.thread_time_ns
_rusage = resource.getrusage
_THREAD = resource.RUSAGE_THREAD


class Probe:
    def __init__(self, out: str) -> None:
        self.out = out
        self.dumps = 0
        self.reset()

    def reset(self) -> None:
        self.read_ns = 0  # start of the data_received being handled
        self.busy_since = 0  # start of the loop's current busy period (no gap of IDLE_GAP_NS between callbacks)
        self.last_end = 0  # end of the last callback
        self.read_busy_since = 0  # busy_since when the data_received being handled started
        self.in_retry = False  # a parked Fetch's re-read is running (else a Fetch request's first read)
        #: partition, base offset, count, read ns, append ns, loop busy since (ns) at that read
        self.appends = array("q")
        #: partition, fetch offset, high watermark, ns, 1 if a parked Fetch's re-read (else 0), its request's
        #: read ns and the loop's busy-since then
        self.reads = array("q")
        #: name, start ns, wall ns, cpu ns, voluntary and involuntary context switches (, bytes read)
        self.slow: list[tuple[Any, ...]] = []
        self.by_name: dict[str, list[int]] = {}  # name -> [callbacks, cpu ns]
        self.blocked = [0, 0]  # callbacks that slept in the kernel (voluntary context switch), their wall - cpu ns
        self.cpu_hist = [0] * (len(CPU_BUCKETS_S) + 1)
        self.busy_cpu_ns = 0
        self.callbacks = 0
        self.gcs: list[tuple[int, int, int, int, int]] = []  # generation, start ns, wall ns, cpu ns, collected
        self._gc_start = (0, 0)
        self.scrapes: list[tuple[int, int]] = []  # /metrics: start, end ns
        #: its thread's encoding: start, wall, cpu ns, loop callbacks meanwhile, their cpu ns, the longest
        #: gap between two of them ns
        self.encodes: list[tuple[int, ...]] = []
        self.during_encode: list[int] | None = None
        self.started_ns = _now()
        self.thread_cpu = _thread_cpu()  # "name tid" -> CPU s, at the start (the dump gives the difference)

    def dump(self) -> None:
        path = f"{self.out}.{self.dumps}.json"
        self.dumps += 1
        threads = _thread_cpu()
        data = {"started_ns": self.started_ns, "ended_ns": _now(), "appends": list(self.appends),
                "reads": list(self.reads), "slow": self.slow, "cpu_buckets_s": CPU_BUCKETS_S,
                "cpu_hist": self.cpu_hist, "busy_cpu_ns": self.busy_cpu_ns, "callbacks": self.callbacks,
                "gcs": self.gcs, "by_name": self.by_name, "scrapes": self.scrapes, "encodes": self.encodes,
                "blocked": self.blocked,
                "thread_cpu_s": {k: v - self.thread_cpu.get(k, 0.0) for k, v in threads.items()}}
        with open(path + ".tmp", "w") as f:
            json.dump(data, f)
        os.replace(path + ".tmp", path)
        self.reset()

    def timed(self, name: Any, fn: Any, *args: Any) -> Any:
        w0, c0, r0 = _now(), _cpu(), _rusage(_THREAD)
        if w0 - self.last_end > IDLE_GAP_NS:  # the loop waited for events before this one: idle
            self.busy_since = w0
        if self.during_encode is not None:  # the longest wait between two callbacks meanwhile (GIL, epoll)
            self.during_encode[2] = max(self.during_encode[2], w0 - max(self.last_end, self.during_encode[3]))
        try:
            return fn(*args)
        finally:
            cpu = _cpu() - c0
            if self.during_encode is not None:  # a /metrics encoding thread runs meanwhile
                self.during_encode[0] += 1
                self.during_encode[1] += cpu
            r1 = _rusage(_THREAD)
            self.last_end = end = _now()
            wall = end - w0
            blocked = r1.ru_nvcsw - r0.ru_nvcsw  # slept in the kernel: disk, a lock, the GIL
            if blocked:
                self.blocked[0] += 1
                self.blocked[1] += wall - cpu
            self.callbacks += 1
            self.busy_cpu_ns += cpu
            s = cpu / 1e9
            i = 0
            while i < len(CPU_BUCKETS_S) and s > CPU_BUCKETS_S[i]:
                i += 1
            self.cpu_hist[i] += 1
            label = _name(name)
            total = self.by_name.get(label)
            if total is None:
                self.by_name[label] = [1, cpu]
            else:
                total[0] += 1
                total[1] += cpu
            if cpu >= SLOW_CPU_S * 1e9 or wall >= SLOW_WALL_S * 1e9:
                self.slow.append((label, w0, wall, cpu, blocked, r1.ru_nivcsw - r0.ru_nivcsw))

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_start = (_now(), _cpu())
        else:
            w0, c0 = self._gc_start
            self.gcs.append((info.get("generation", -1), w0, _now() - w0, _cpu() - c0, info.get("collected", 0)))


def _thread_cpu() -> dict[str, float]:
    """CPU seconds (user + system) of each of this process's threads, by "name tid"."""
    out = {}
    tick = os.sysconf("SC_CLK_TCK")
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        out[f"{name} {tid}"] = (int(fields[11]) + int(fields[12])) / tick
    return out


def _name(cb: Any) -> str:
    if isinstance(cb, str):
        return cb
    func = getattr(cb, "func", None)  # functools.partial
    if func is not None:
        return _name(func)
    owner = getattr(cb, "__self__", None)
    if owner is not None and hasattr(owner, "get_coro"):  # a Task's step: its coroutine
        coro = owner.get_coro()
        return "task " + getattr(coro, "__qualname__", repr(coro))
    return getattr(cb, "__qualname__", None) or repr(cb)[:80]


def install(probe: Probe) -> None:
    import uvloop

    from suoi.net.server import KafkaConnection
    from suoi.partition.partition import Partition

    timed = probe.timed

    class ProbeLoop(uvloop.Loop):  # type: ignore[misc]
        def call_soon(self, callback: Any, *args: Any, context: Any = None) -> Any:
            return super().call_soon(timed, callback, callback, *args, context=context)

        def call_later(self, delay: float, callback: Any, *args: Any, context: Any = None) -> Any:
            return super().call_later(delay, timed, callback, callback, *args, context=context)

        def call_at(self, when: float, callback: Any, *args: Any, context: Any = None) -> Any:
            return super().call_at(when, timed, callback, callback, *args, context=context)

    run = uvloop.run

    def probe_run(main: Any, **kwargs: Any) -> Any:
        kwargs["loop_factory"] = ProbeLoop
        return run(main, **kwargs)

    uvloop.run = probe_run

    # since the sixth session the connection is a BufferedProtocol (`buffer_updated(nbytes)`);
    # trees before it get their bytes in `data_received(data)`: either is what a read hands over
    hook = "buffer_updated" if hasattr(KafkaConnection, "buffer_updated") else "data_received"
    received = getattr(KafkaConnection, hook)

    def on_read(self: Any, data: Any) -> None:
        probe.read_ns = now = _now()
        probe.read_busy_since = probe.busy_since if now - probe.last_end <= IDLE_GAP_NS else now
        n = len(probe.slow)
        timed("KafkaConnection." + hook, received, self, data)
        if len(probe.slow) > n:  # a slow one: how much it was given
            probe.slow[-1] = (*probe.slow[-1], data if isinstance(data, int) else len(data))

    setattr(KafkaConnection, hook, on_read)

    append = Partition.append_records

    def append_records(self: Any, records: bytes, acks: int, origin: str = "") -> Any:
        result = append(self, records, acks, origin)
        if result.error == 0 and self.tp.topic.startswith(TOPIC_PREFIX):
            probe.appends.extend((self.tp.partition, result.base_offset, result.record_count, probe.read_ns, _now(),
                                  probe.read_busy_since))
        return result

    Partition.append_records = append_records  # type: ignore[method-assign]

    read = Partition.read

    def read_records(self: Any, fetch_offset: int, max_bytes: int, *args: Any, **kw: Any) -> Any:
        # trees since the sixth session pass every argument by position (read_committed, replica_id, ...)
        result = read(self, fetch_offset, max_bytes, *args, **kw)
        replica_id = args[1] if len(args) > 1 else kw.get("replica_id", -1)
        if replica_id < 0 and len(result.records) and self.tp.topic.startswith(TOPIC_PREFIX):
            probe.reads.extend((self.tp.partition, fetch_offset, result.high_watermark, _now(), probe.in_retry,
                                probe.read_ns, probe.read_busy_since))
        return result

    Partition.read = read_records  # type: ignore[method-assign]

    from suoi.partition.fetch import ParkedFetch

    retry = ParkedFetch._retry

    def retry_marked(self: Any) -> None:
        probe.in_retry = True
        try:
            retry(self)
        finally:
            probe.in_retry = False

    retry_marked.__qualname__ = "ParkedFetch._retry"
    ParkedFetch._retry = retry_marked  # type: ignore[method-assign]

    from suoi.http.admin.server import AdminServer

    scrape = AdminServer._metrics

    async def metrics(self: Any, request: Any) -> Any:  # a /metrics scrape: when, and its thread's CPU
        t0 = _now()
        try:
            return await scrape(self, request)
        finally:
            probe.scrapes.append((t0, _now()))

    AdminServer._metrics = metrics  # type: ignore[method-assign]
    encode = getattr(AdminServer, "_encode", None)  # the encoding's thread (trees before the sliced scrape)

    def encode_timed(self: Any, *args: Any) -> Any:
        w0, c0 = _now(), _cpu()
        probe.during_encode = [0, 0, 0, w0]  # callbacks, their CPU, longest gap between two, start
        try:
            return encode(self, *args)  # type: ignore[misc]
        finally:
            # start, wall, its CPU; the loop's callbacks meanwhile and their CPU (how much the loop got done)
            probe.encodes.append((w0, _now() - w0, _cpu() - c0, *(probe.during_encode or (0, 0, 0))[:3]))
            probe.during_encode = None

    if encode is not None:
        AdminServer._encode = encode_timed
    gc.callbacks.append(probe.on_gc)
    signal.signal(signal.SIGUSR1, lambda *_: probe.dump())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="dump path prefix (<out>.<n>.json at each SIGUSR1)")
    ap.add_argument("suoi_args", nargs=argparse.REMAINDER, help="the suoi command line (e.g. broker --config F)")
    args = ap.parse_args()
    install(Probe(args.out))
    from suoi.cli.main import main as suoi_main

    return suoi_main(args.suoi_args)


if __name__ == "__main__":
    sys.exit(main())
