"""Where librdkafka's broker CPU per message goes at a steady rate: per API, per read, per wake-up.

`bench_produce_wire.py --phases librdkafka` gives the issue's figure (broker CPU per message at
1,000 msg/s: a librdkafka producer with linger.ms=0, acks=all, 100 B, round robin over 6
partitions, and a librdkafka consumer of the 6 with its defaults) from /proc, which cannot say
where it goes. Here a single-node KRaft broker runs on this process's main thread (uvloop, the
collector settings of `suoi broker`, as `bench_small_path.py`) and the two librdkafka clients run
in a client process over loopback. Over the measured window the broker thread's CPU (its clock,
and user/kernel from /proc), its voluntary context switches (each one a sleep in epoll: a
wake-up of the loop), involuntary ones and CPU migrations (/proc/<tid>/sched) and the collector's
runs are read, and with ``--account`` (the default) the node's entry points are
wrapped to count and time (`time.thread_time`) what each costs:

* each request's dispatch, by API (decode, handler, encode; for a Fetch that parks, the park);
* the deferred part of a Fetch: the re-read a wake-up schedules (`ParkedFetch._retry`, which
  answers and writes) and the max-wait expiry (`_expire`);
* `data_received` as a whole (framing, dispatch, writes): how many reads, frames per read, and
  the reads that carried several frames (librdkafka pipelines Produce: max.in.flight); the
  answers' writes (`_write`, `_write_batch`: the send syscall) on their own too;
* how often `YIELD_AFTER_S` handed the rest of a read to a later loop iteration;
* timers and callbacks scheduled from Python (`call_at`/`call_later`/`call_soon` on a counting
  subclass of the loop).

What the wrapped parts do not cover is the loop itself (epoll, socket reads by uvloop before
`data_received`), timers, the KRaft quorum and metrics: "the rest" by difference. The wrappers
cost ~1-2 µs per call (a `clock_gettime` syscall each): compare ``--no-account``'s CPU figure.
With ``--profile cpu`` one more window runs under cProfile by thread CPU time. With
``--idle-after`` librdkafka's own Produce frame is then dispatched in-process back to back and
after the thread slept 0.05-5 ms before each (as the loop sleeps between paced requests).
``--split`` also times the parts of a Fetch's passes (resolving its partitions, a read with
records apart from a caught-up partition's, the answer dict, making the `ParkedFetch`).

    python benchmarks/bench_rdk_path.py [--rate 1000] [--seconds 10] [--repeat 3] [--profile cpu] [--split]
    PYTHONPATH=/path/to/other/src python benchmarks/bench_rdk_path.py --no-account   # another tree

A script, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import gc
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_partition_path import PARTITIONS, TOPIC, single_node  # noqa: E402
from bench_small_path import (  # noqa: E402
    _client_port,
    _loop_cpu,
    _on_loop,
    _user_system,
    print_profile,
)

import suoi  # noqa: E402

_KEY = struct.Struct(">h")
API_NAMES = {0: "Produce", 1: "Fetch", 3: "Metadata", 8: "OffsetCommit", 9: "OffsetFetch", 10: "FindCoordinator",
             12: "Heartbeat", 18: "ApiVersions", 71: "GetTelemetrySubscriptions", 72: "PushTelemetry"}


class Account:
    """Counters and thread-CPU sums of the node's entry points (module doc), read at the markers."""

    def __init__(self) -> None:
        self.api: dict[int, list[float]] = collections.defaultdict(lambda: [0, 0.0])  # key -> [count, cpu]
        self.parked = 0  # Fetches answered later (a Pending)
        self.reads = 0
        self.frames = 0
        self.multi_reads = 0  # reads carrying more than one frame
        self.multi_frames = 0
        self.multi_cpu = 0.0
        self.read_cpu = 0.0
        self.retry = [0, 0.0]
        self.writes = [0, 0.0]  # answers written (`_write`: the send syscall, on loopback the peer's receive too)
        self.expire = [0, 0.0]
        self.yields = 0
        self.scheduled: collections.Counter[str] = collections.Counter()
        #: `--split`: the parts of a Fetch's passes, name -> [count, cpu]
        self.pieces: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0])

    def snapshot(self) -> dict[str, Any]:
        return json.loads(json.dumps({
            "api": {API_NAMES.get(k, str(k)): v for k, v in self.api.items()}, "parked": self.parked,
            "reads": self.reads, "frames": self.frames, "multi_reads": self.multi_reads,
            "multi_frames": self.multi_frames, "multi_cpu": self.multi_cpu, "read_cpu": self.read_cpu,
            "retry": self.retry, "writes": self.writes,
            "expire": self.expire, "yields": self.yields, "scheduled": dict(self.scheduled),
            "pieces": dict(self.pieces)}))


def _instrument(acct: Account) -> None:
    """Wrap the entry points named in the module doc (this process only: a benchmark)."""
    import suoi.net.server as server
    from suoi.partition.fetch import ParkedFetch
    from suoi.pending import Pending

    clock = time.thread_time
    dispatch = server.dispatch

    def timed_dispatch(broker: Any, frame: bytes, *args: Any) -> Any:
        t0 = clock()
        out = dispatch(broker, frame, *args)
        row = acct.api[_KEY.unpack_from(frame, 0)[0]]
        row[0] += 1
        row[1] += clock() - t0
        if isinstance(out, Pending):
            acct.parked += 1
        return out

    server.dispatch = timed_dispatch  # type: ignore[assignment]
    # the read's entry point: `buffer_updated` (a BufferedProtocol) or, in older trees, `data_received`
    entry = "buffer_updated" if hasattr(server.KafkaConnection, "buffer_updated") else "data_received"
    received = getattr(server.KafkaConnection, entry)

    def timed_received(self: Any, data: Any) -> None:
        frames0 = sum(v[0] for v in acct.api.values())
        t0 = clock()
        received(self, data)
        spent = clock() - t0
        n = sum(v[0] for v in acct.api.values()) - frames0
        acct.reads += 1
        acct.frames += n
        acct.read_cpu += spent
        if n > 1:
            acct.multi_reads += 1
            acct.multi_frames += n
            acct.multi_cpu += spent

    setattr(server.KafkaConnection, entry, timed_received)
    unhandled = server.KafkaConnection._handle_unhandled

    def counted_unhandled(self: Any) -> None:  # the rest of a read, after the loop was yielded: net's too
        acct.yields += 1
        t0 = clock()
        unhandled(self)
        acct.read_cpu += clock() - t0

    server.KafkaConnection._handle_unhandled = counted_unhandled  # type: ignore[method-assign]
    for name, row in (("_retry", acct.retry), ("_expire", acct.expire)):
        setattr(ParkedFetch, name, _timed(getattr(ParkedFetch, name), row, clock))
    for name in ("_write", "_write_batch"):  # (an answer batched while a read's frames are handled: the latter sends)
        setattr(server.KafkaConnection, name, _timed(getattr(server.KafkaConnection, name), acct.writes, clock))


def _split(acct: Account) -> None:
    """`--split`: time the parts of a Fetch's passes (dispatch's and the parked one's re-read):
    resolving the partitions, reading them (a read that returns records apart from a caught-up
    partition's), the answer dict, making a `ParkedFetch`. More wrappers (~1 µs each, a dozen a
    message): compare the totals with a run without it."""
    import suoi.api.fetch as api_fetch
    import suoi.partition.fetch as fetch
    from suoi.partition.partition import Partition

    clock = time.thread_time
    for module, name in ((fetch, "_read_all"), (fetch, "resolve"), (api_fetch, "_response")):
        setattr(module, name, _timed_fn(getattr(module, name), acct.pieces[f"{module.__name__}.{name}"], clock))
    read = Partition.read
    with_records, empty = acct.pieces["Partition.read (records)"], acct.pieces["Partition.read (nothing to read)"]

    def timed_read(self: Any, *args: Any) -> Any:
        t0 = clock()
        out = read(self, *args)
        row = with_records if out.records else empty
        row[0] += 1
        row[1] += clock() - t0
        return out

    Partition.read = timed_read  # type: ignore[method-assign]
    fetch.ParkedFetch.__init__ = _timed(fetch.ParkedFetch.__init__,  # type: ignore[method-assign]
                                        acct.pieces["ParkedFetch made (timer, park)"], clock)


def _timed_fn(fn: Any, row: list[Any], clock: Any) -> Any:
    def timed(*args: Any, **kwargs: Any) -> Any:
        t0 = clock()
        try:
            return fn(*args, **kwargs)
        finally:
            row[0] += 1
            row[1] += clock() - t0
    return timed


def _timed(fn: Any, row: list[Any], clock: Any) -> Any:
    def timed(self: Any, *args: Any) -> None:
        t0 = clock()
        fn(self, *args)
        row[0] += 1
        row[1] += clock() - t0
    return timed


def _counting_loop(acct: Account) -> Any:
    """A uvloop loop whose Python-level scheduling calls are counted (`--account`)."""
    import uvloop

    class CountingLoop(uvloop.Loop):  # type: ignore[misc, name-defined]
        def call_soon(self, cb: Any, *args: Any, context: Any = None) -> Any:
            acct.scheduled["call_soon"] += 1
            return super().call_soon(cb, *args, context=context)

        def call_later(self, delay: float, cb: Any, *args: Any, context: Any = None) -> Any:
            acct.scheduled[f"call_later {getattr(cb, '__qualname__', type(cb).__name__)}"] += 1
            return super().call_later(delay, cb, *args, context=context)

        def call_at(self, when: float, cb: Any, *args: Any, context: Any = None) -> Any:
            acct.scheduled[f"call_at {getattr(cb, '__qualname__', type(cb).__name__)}"] += 1
            return super().call_at(when, cb, *args, context=context)

    return CountingLoop


def _switches(native_id: int) -> tuple[int, int, int]:
    """Voluntary and involuntary context switches of one thread of this process, and its
    migrations from one CPU to another (each leaves its L1/L2 caches behind)."""
    values = {}
    with open(f"/proc/self/task/{native_id}/sched") as f:
        for line in f:
            key, _, value = line.partition(":")
            values[key.strip()] = value.strip()
    return (int(values["nr_voluntary_switches"]), int(values["nr_involuntary_switches"]),
            int(values["se.nr_migrations"]))


def _collections() -> list[int]:
    """Collections so far of each generation (the collector runs on the loop's thread: it is the broker's)."""
    return [generation["collections"] for generation in gc.get_stats()]


def _client(port: int, args: argparse.Namespace) -> None:
    """The client process: librdkafka producer and consumer, a marker line around each window."""
    from confluent_kafka import Consumer, Producer
    from confluent_kafka import TopicPartition as KafkaTopicPartition

    bootstrap = f"127.0.0.1:{port}"
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": args.linger_ms, "acks": args.acks,
                         "enable.idempotence": False, "compression.type": "none", "log_level": 3})
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{time.time_ns()}",
                         "enable.auto.commit": False, "enable.partition.eof": False, "log_level": 3})
    consumer.assign([KafkaTopicPartition(TOPIC, p, -1) for p in range(PARTITIONS)])  # from the log end
    got = [0]
    stop = threading.Event()

    def consume() -> None:
        while not stop.is_set():
            m = consumer.poll(0.1)
            if m is not None and m.error() is None:
                got[0] += 1

    def mark(what: str) -> None:
        print(what, flush=True)
        if sys.stdin.readline().strip() != "ok":
            raise SystemExit("the broker side went away")

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    try:
        deadline = time.perf_counter() + 30
        while not got[0] and time.perf_counter() < deadline:  # warm: the consumer is fetching
            for p in range(PARTITIONS):
                producer.produce(TOPIC, b"w" * 100, partition=p)
            producer.flush(5)
            time.sleep(0.2)
        windows = args.repeat + (1 if args.profile else 0)
        for w in range(windows):
            _paced(producer, args.rate, 1.0)  # settle
            mark("profile" if w == args.repeat else "start")
            sent = _paced(producer, args.rate, args.seconds)
            mark(f"stop {sent}")
    finally:
        producer.flush(10)
        stop.set()
        reader.join(5)
        consumer.close()


def _paced(producer: Any, rate: int, seconds: float) -> int:
    sent, t0 = 0, time.perf_counter()
    while (now := time.perf_counter()) - t0 < seconds:
        due = int((now - t0) * rate)
        while sent < due:
            producer.produce(TOPIC, b"x" * 100, partition=sent % PARTITIONS)
            sent += 1
        producer.poll(0)
        time.sleep(0.001)
    return sent


def _drive(port: int, args: argparse.Namespace, native_id: int, loop: asyncio.AbstractEventLoop,
           acct: Account | None, results: dict[str, Any]) -> None:
    """In a thread of the broker's process: run the client process and take the broker thread's
    figures at its markers."""
    cpu = _loop_cpu(threading.main_thread().ident or 0)
    argv = [sys.executable, os.path.abspath(__file__), "--client-port", str(port), "--rate", str(args.rate),
            "--seconds", str(args.seconds), "--repeat", str(args.repeat), "--acks", args.acks,
            "--linger-ms", str(args.linger_ms)] + (["--profile", args.profile] if args.profile else [])
    profiler = None
    try:
        with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as client:
            assert client.stdin is not None and client.stdout is not None
            for line in client.stdout:
                if line.startswith(("start", "profile")):
                    if line.startswith("profile"):
                        profiler = cProfile.Profile(time.thread_time)
                        _on_loop(loop, profiler.enable)
                    before = (cpu(), _user_system(native_id), _switches(native_id), _collections(),
                              acct.snapshot() if acct else None, time.perf_counter())
                elif line.startswith("stop"):
                    sent = int(line.split()[1])
                    if profiler is not None:
                        _on_loop(loop, profiler.disable)
                        results["profile"], results["profile_sent"] = profiler, sent
                    else:
                        after = (cpu(), _user_system(native_id), _switches(native_id), _collections(),
                                 acct.snapshot() if acct else None, time.perf_counter())
                        results.setdefault("windows", []).append((sent, before, after))
                client.stdin.write("ok\n")
                client.stdin.flush()
    finally:
        loop.call_soon_threadsafe(results["done"].set)


def _delta(before: Any, after: Any) -> Any:
    if after is None:
        return None
    if isinstance(before, dict):
        return {k: _delta(before.get(k, 0 if not isinstance(v, dict | list) else type(v)()), v)
                for k, v in after.items()}
    if isinstance(before, list | tuple):
        before = list(before) or [0] * len(after)
        return [_delta(b, a) for b, a in zip(before, after, strict=True)]
    return after - before


def _report(args: argparse.Namespace, windows: list[Any]) -> None:
    rows: dict[str, list[float]] = collections.defaultdict(list)
    for sent, before, after in windows:
        cpu, (user, system), (vol, invol, migrations), collections_, acct, wall = _delta(before, after)
        per = 1e6 / sent
        rows["broker thread CPU µs/msg"].append(cpu * per)
        rows["  user µs/msg (/proc, 10 ms ticks)"].append(user * per)
        rows["  kernel µs/msg"].append(system * per)
        rows["CPU % of a core"].append(cpu / wall * 100)
        rows["loop wake-ups (voluntary switches)/msg"].append(vol / sent)
        rows["involuntary switches/msg"].append(invol / sent)
        rows["migrations to the other CPU/msg"].append(migrations / sent)
        for generation, count in enumerate(collections_):
            rows[f"GC collections of generation {generation} per 1,000 msg"].append(count / sent * 1000)
        if acct is None:
            continue
        requests = sum(v[0] for v in acct["api"].values())
        rows["requests/msg (all APIs)"].append(requests / sent)
        for name, (count, spent) in sorted(acct["api"].items(), key=lambda kv: -kv[1][1]):
            rows[f"{name}: requests/msg"].append(count / sent)
            rows[f"{name}: dispatch µs/request"].append(spent / count * 1e6 if count else 0.0)
            rows[f"{name}: dispatch µs/msg"].append(spent * per)
        rows["Fetch: parked/msg"].append(acct["parked"] / sent)
        for name in ("retry", "expire"):
            count, spent = acct[name]
            rows[f"Fetch {name} (re-read, answer, write): /msg"].append(count / sent)
            rows[f"Fetch {name}: µs each"].append(spent / count * 1e6 if count else 0.0)
            rows[f"Fetch {name}: µs/msg"].append(spent * per)
        count, spent = acct["writes"]
        rows["answers written (_write, _write_batch) /msg"].append(count / sent)
        rows["  µs each (the send syscall: on loopback the peer's receive too)"].append(spent / count * 1e6 if count else 0.0)
        dispatched = sum(v[1] for v in acct["api"].values())
        rows["reads (data_received)/msg"].append(acct["reads"] / sent)
        rows["frames per read"].append(acct["frames"] / acct["reads"] if acct["reads"] else 0.0)
        rows["reads with > 1 frame, % of reads"].append(acct["multi_reads"] / max(acct["reads"], 1) * 100)
        rows["  their frames per read"].append(acct["multi_frames"] / max(acct["multi_reads"], 1))
        rows["  their CPU µs per frame (data_received)"].append(acct["multi_cpu"] / max(acct["multi_frames"], 1) * 1e6)
        single = acct["frames"] - acct["multi_frames"]
        rows["  one-frame reads: CPU µs per frame"].append(
            (acct["read_cpu"] - acct["multi_cpu"]) / max(single, 1) * 1e6)
        rows["data_received minus dispatch (net) µs/msg"].append((acct["read_cpu"] - dispatched) * per)
        deferred = acct["retry"][1] + acct["expire"][1]
        rows["the rest (loop, epoll, timers, quorum...) µs/msg"].append((cpu - acct["read_cpu"] - deferred) * per)
        rows["YIELD_AFTER_S fired /msg"].append(acct["yields"] / sent)
        for name, (count, spent) in acct["pieces"].items():
            rows[f"split: {name}: calls/msg"].append(count / sent)
            rows[f"split: {name}: µs each"].append(spent / count * 1e6 if count else 0.0)
        for name, count in sorted(acct["scheduled"].items(), key=lambda kv: -kv[1]):
            rows[f"scheduled from Python: {name} /s"].append(count / wall)
    print(f"suoi from {suoi.__file__}; librdkafka at {args.rate} msg/s, acks={args.acks}, linger.ms={args.linger_ms}, "
          f"{PARTITIONS} partitions, {args.repeat} x {args.seconds} s; median (min-max) of the windows")
    for name, values in rows.items():
        if not any(values) and not name.startswith("GC"):
            continue
        print(f"  {name:55} {statistics.median(values):9.3g} ({min(values):.3g}-{max(values):.3g})")


def _collector_as_broker() -> None:
    """What is alive frozen and the young generation's threshold, as `suoi broker` does once started."""
    import suoi.cli.broker as cli_broker

    gc.collect()
    gc.freeze()
    gc.set_threshold(getattr(cli_broker, "GC_GEN0_THRESHOLD", 700), *gc.get_threshold()[1:])


def _capture(into: list[bytes]) -> None:
    """Keep the last Produce frame librdkafka sent (`--idle-after`)."""
    import suoi.net.server as server
    dispatch = server.dispatch

    def capturing(broker: Any, frame: bytes, *args: Any) -> Any:
        if frame[:2] == b"\0\0":
            into[:] = [bytes(frame)]
        return dispatch(broker, frame, *args)

    server.dispatch = capturing  # type: ignore[assignment]


def _idle_after(broker: Any, frame: bytes) -> list[tuple[float, float]]:
    """CPU µs of dispatching librdkafka's own Produce frame (median), back to back and when the
    thread slept before each one as the loop does between paced requests (other processes run
    meanwhile): what the same Python work costs on caches it finds cold."""
    from suoi.api.dispatch import dispatch

    clock = time.thread_time
    out = []
    for _ in range(300):
        dispatch(broker, frame, "bench")
    for idle in (0.0, 0.00005, 0.0002, 0.001, 0.005, 0.0):
        spent = []
        for _ in range(300 if idle < 0.005 else 150):
            if idle:
                time.sleep(idle)
            t0 = clock()
            dispatch(broker, frame, "bench")
            spent.append(clock() - t0)
        out.append((idle, statistics.median(spent) * 1e6))  # (the last: back to back again)
    return out


async def main(args: argparse.Namespace, acct: Account | None) -> None:
    captured: list[bytes] = []
    if args.idle_after:
        _capture(captured)
    with tempfile.TemporaryDirectory(prefix="suoi-bench-rdk-") as data:
        broker = await single_node(data)
        _collector_as_broker()
        try:
            loop = asyncio.get_running_loop()
            results: dict[str, Any] = {"done": asyncio.Event()}
            client = threading.Thread(target=_drive, args=(_client_port(broker), args, threading.get_native_id(),
                                                           loop, acct, results), daemon=True)
            client.start()
            await asyncio.wait_for(results["done"].wait(), 60 + (args.repeat + 1) * (args.seconds + 2) * 2)
            client.join(10)
            if args.idle_after and captured:
                results["idle_after"] = _idle_after(broker, captured[-1])
        finally:
            await broker.stop()
    if not results.get("windows"):
        raise SystemExit("no window was measured (see the log above)")
    _report(args, results["windows"])
    if results.get("idle_after"):
        print("  librdkafka's Produce frame dispatched in-process after the windows, CPU µs (median):")
        for idle, us in results["idle_after"]:
            print(f"    {us:7.1f}  " + (f"the thread slept {idle * 1e3:g} ms before each" if idle else "back to back"))
    if results.get("profile") is not None:
        print_profile(results["profile"], results["profile_sent"], "message", args.top)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=int, default=1000, help="messages per second")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of a measured window")
    ap.add_argument("--repeat", type=int, default=3, help="measured windows")
    ap.add_argument("--acks", default="all", help="the producer's acks")
    ap.add_argument("--linger-ms", type=float, default=0.0, help="the producer's linger.ms")
    ap.add_argument("--no-account", dest="account", action="store_false",
                    help="no wrappers, no counting loop: the CPU figures only")
    ap.add_argument("--profile", choices=("cpu",), help="one more window under cProfile (thread CPU time)")
    ap.add_argument("--top", type=int, default=40, help="profile rows to print")
    ap.add_argument("--idle-after", action="store_true",
                    help="then dispatch librdkafka's Produce frame back to back and after sleeps of 0.05-5 ms")
    ap.add_argument("--split", action="store_true",
                    help="also time the parts of a Fetch's passes (resolve, reads, answer dict, park)")
    ap.add_argument("--client-port", type=int, default=0, help=argparse.SUPPRESS)  # the client process
    parsed = ap.parse_args()
    if parsed.client_port:
        _client(parsed.client_port, parsed)
    else:
        account = Account() if parsed.account else None
        if account is not None:
            _instrument(account)
            if parsed.split:
                _split(account)
        import uvloop

        factory = _counting_loop(account) if account is not None else uvloop.new_event_loop
        uvloop.run(main(parsed, account), loop_factory=factory)
