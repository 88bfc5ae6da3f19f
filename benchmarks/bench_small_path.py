"""The small-request path in one process: event-loop CPU per produce -> fetch round, and where it goes.

`bench_produce_wire.py`'s ``small`` phase measures the broker process's CPU per round from
/proc, which includes whatever else the process does (the KRaft quorum's timers, metrics)
and cannot say where the time goes. Here a single-node KRaft broker runs on this process's
main thread (on uvloop, with the collector settings of `suoi broker`) and a client process
drives it over real loopback sockets: a consumer's Fetch (v12, max wait 500 ms) parked at
the log end of one partition, then a Produce (v9, acks=1) of one 100 B record that wakes it;
round after round, or paced with ``--rate``. With ``--partitions 6`` the Fetch names 6
partitions, as librdkafka's names every assigned one, and the Produces go round robin over them;
``--session`` makes it a KIP-227 session's incremental Fetch (naming only the partition whose
fetch offset moved), as the Java client sends. The figure is the CPU time of the broker's
thread alone (`time.pthread_getcpuclockid`), per round; the client is another process, so
neither its CPU nor a shared GIL is in the figure. With ``--profile`` the loop thread runs under
cProfile for one more batch of rounds and the functions with the most own time per round are
printed (cProfile's own overhead inflates the total; the shares are what count). Before the
rounds, each step of a round is timed in-process (``--breakdown``): decode, handler, encode and
the whole dispatch of the Produce, and a Fetch parked then woken by it; what a round costs
beyond those is the event loop, the sockets and `net.server`'s framing and answer ordering.

    python benchmarks/bench_small_path.py [--rounds 3000] [--repeat 5] [--profile] [--rate 1000]
    python benchmarks/bench_small_path.py --kind metadata --in-flight 16   # a cheap request, per request
    PYTHONPATH=/path/to/other/src python benchmarks/bench_small_path.py   # another tree

A script, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime
import gc
import io
import json
import os
import pstats
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_partition_path import TOPIC, single_node  # noqa: E402
from bench_produce_wire import Conn, Rounds, produce_frame  # noqa: E402

import suoi  # noqa: E402
import suoi.cli.broker as cli_broker  # noqa: E402
from suoi.protocol.codec import encode_request  # noqa: E402
from suoi.protocol.records import build_batch  # noqa: E402


def _loop_cpu(thread_id: int) -> Callable[[], float]:
    clock = time.pthread_getcpuclockid(thread_id)
    return lambda: time.clock_gettime(clock)


def _user_system(native_id: int) -> tuple[float, float]:
    """User and kernel CPU seconds of one thread of this process (clock ticks: 10 ms steps)."""
    with open(f"/proc/self/task/{native_id}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


class CheapRequests:
    """``--kind apiversions|metadata``: a round is ``--in-flight`` cheap requests (ApiVersions v3,
    or Metadata v12 of the bench topic) written at once on one connection, then their answers
    read: the per-request cost of net framing, answer ordering, writes and dispatch, with a
    handler that does almost nothing."""

    def __init__(self, port: int, kind: str, in_flight: int) -> None:
        from bench_produce_wire import Conn
        from kio.schema.api_versions.v3.request import ApiVersionsRequest
        from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic

        from suoi.protocol.codec import encode_request

        if kind == "apiversions":
            request: Any = ApiVersionsRequest(client_software_name="bench", client_software_version="1")
        else:
            request = MetadataRequest(topics=(MetadataRequestTopic(topic_id=None, name=TOPIC),),
                                      allow_auto_topic_creation=False, include_topic_authorized_operations=False)
        self.conn = Conn(port)
        self.n = in_flight
        self.frames = b"".join(encode_request(cid, "bench", request) for cid in range(in_flight))

    def one(self) -> float:
        t0 = time.perf_counter()
        self.conn.send(self.frames)
        for _ in range(self.n):
            self.conn.recv()
        return time.perf_counter() - t0

    def close(self) -> None:
        self.conn.close()


def _client(port: int, args: argparse.Namespace) -> None:
    """The client process: rounds, with a marker line (answered "ok" on stdin) around each batch."""
    if args.kind != "round":
        rounds: Any = CheapRequests(port, args.kind, args.in_flight)
    elif args.partitions > 1 or args.session:
        rounds = ConsumerRounds(port, args.partitions, args.session)
    else:
        rounds = Rounds(port, TOPIC)

    def mark(what: str) -> None:
        print(what, flush=True)
        if sys.stdin.readline().strip() != "ok":
            raise SystemExit("the broker side went away")

    try:
        for _ in range(200):  # warm: code paths, caches, the segment's batch memory
            rounds.one()
        for _ in range(args.repeat):
            mark("start")
            latencies = _run(rounds, args.rounds, args.rate)
            mark("stop " + json.dumps(latencies))
        if args.profile:
            mark("profile")
            _run(rounds, args.rounds, args.rate)
            mark("stop []")
    finally:
        rounds.close()


def _drive(port: int, args: argparse.Namespace, cpu: Callable[[], float], native_id: int,
           loop: asyncio.AbstractEventLoop, results: dict[str, Any]) -> None:
    """In a thread of the broker's process: run the client process, take the broker thread's CPU
    time (and start/stop the profiler) at its markers."""
    argv = [sys.executable, os.path.abspath(__file__), "--client-port", str(port), "--rounds", str(args.rounds),
            "--repeat", str(args.repeat), "--rate", str(args.rate), "--kind", args.kind,
            "--in-flight", str(args.in_flight), "--partitions", str(args.partitions)] + (
                ["--profile"] if args.profile else []) + (["--session"] if args.session else [])
    profiler = None
    try:
        with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as client:
            assert client.stdin is not None and client.stdout is not None
            user0, system0 = _user_system(native_id)
            for line in client.stdout:
                if line.startswith("start"):
                    cpu0, t0 = cpu(), time.perf_counter()
                elif line.startswith("profile"):
                    profiler = cProfile.Profile(time.thread_time) if args.profile == "cpu" else cProfile.Profile()
                    _on_loop(loop, profiler.enable)
                elif line.startswith("stop"):
                    if profiler is not None:
                        _on_loop(loop, profiler.disable)
                        results["profile"] = profiler
                    else:
                        results.setdefault("cpu", []).append((cpu() - cpu0) / args.rounds * 1e6)
                        results.setdefault("wall", []).append((time.perf_counter() - t0) / args.rounds * 1e6)
                        results.setdefault("latency", []).extend(json.loads(line[5:]))
                        if len(results["cpu"]) == args.repeat:
                            user1, system1 = _user_system(native_id)
                            n = args.repeat * args.rounds
                            results["user"] = (user1 - user0) / n * 1e6
                            results["system"] = (system1 - system0) / n * 1e6
                client.stdin.write("ok\n")
                client.stdin.flush()
    finally:
        loop.call_soon_threadsafe(results["done"].set)


class ConsumerRounds(Rounds):
    """`Rounds` with a consumer's Fetch of `partitions` partitions (offsets at their log ends),
    sessionless or in a KIP-227 session; each round's Produce goes to the next partition."""

    def __init__(self, port: int, partitions: int, session: bool) -> None:  # Rounds' own __init__ is not called: other frames
        from kio.schema.produce.v9.response import ProduceResponse

        from suoi.protocol.codec import decode_response
        self.produce, self.fetch = Conn(port), Conn(port)
        self.batch = build_batch([(None, b"y" * 100)], timestamp_ms=int(time.time() * 1000))
        self.partitions, self.cid, self.turn = partitions, 0, 0
        self.produce.send(produce_frame(TOPIC, list(range(partitions)), self.batch, cid=0))
        answer = decode_response(self.produce.recv(), ProduceResponse)
        self.offsets = {int(p.index): int(p.base_offset) + 1 for p in answer.responses[0].partition_responses}
        self.session_id, self.epoch, self.changed = 0, -1, list(self.offsets)
        if session:  # a full fetch that opens the session (max wait 0: it answers at once)
            self.fetch.send(self._fetch_frame(0, 0, wait_ms=0))
            frame = self.fetch.recv()
            (self.session_id,) = struct.unpack_from(">i", frame, 11)  # after cid, tags, throttle, error
            assert self.session_id, "the broker opened no fetch session"
            self.epoch, self.changed = 1, []

    def _fetch_frame(self, cid: int, epoch: int, wait_ms: int = 500) -> bytes:
        from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic
        from kio.static.primitive import i32

        named = sorted(self.offsets) if epoch <= 0 else self.changed
        topics = (FetchTopic(topic=TOPIC, partitions=tuple(FetchPartition(
            partition=i32(p), current_leader_epoch=i32(-1), fetch_offset=self.offsets[p], last_fetched_epoch=i32(-1),
            log_start_offset=-1, partition_max_bytes=i32(1 << 20)) for p in named)),) if named else ()
        return encode_request(cid, "bench", FetchRequest(
            cluster_id=None, replica_id=i32(-1), max_wait=datetime.timedelta(milliseconds=wait_ms), min_bytes=i32(1),
            max_bytes=i32(1 << 20), isolation_level=0, session_id=i32(self.session_id), session_epoch=i32(epoch),
            topics=topics, forgotten_topics_data=(), rack_id=""))

    def one(self) -> float:
        """One round; its latency (produce written -> fetch answer read) in seconds."""
        self.cid += 2
        target = self.turn % self.partitions
        self.turn += 1
        self.fetch.send(self._fetch_frame(self.cid, self.epoch))
        t0 = time.perf_counter()
        self.produce.send(produce_frame(TOPIC, [target], self.batch, cid=self.cid + 1))
        self.produce.recv()
        answer = self.fetch.recv()
        if answer[9:11] != b"\0\0":
            raise SystemExit(f"Fetch error {struct.unpack_from('>h', answer, 9)[0]}")
        self.offsets[target] += 1
        if self.epoch > 0:
            self.epoch, self.changed = self.epoch + 1, [target]
        return time.perf_counter() - t0


def _run(rounds: Rounds, n: int, rate: int) -> list[float]:
    latencies = []
    t0 = time.perf_counter()
    for i in range(n):
        if rate:
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        latencies.append(rounds.one())
    return latencies


def _on_loop(loop: asyncio.AbstractEventLoop, fn: Callable[[], None]) -> None:
    done = threading.Event()

    def call() -> None:
        fn()
        done.set()

    loop.call_soon_threadsafe(call)
    done.wait(10)


def _cpu_us(fn: Callable[[], Any], n: int) -> float:
    """Median over 5 batches of `n` calls of `fn`: CPU µs of this thread per call."""
    batches = []
    for _ in range(5):
        t0 = time.thread_time()
        for _ in range(n):
            fn()
        batches.append((time.thread_time() - t0) / n * 1e6)
    return statistics.median(batches)


async def _breakdown(broker: Any, n: int, partitions: int = 1) -> dict[str, float]:
    """The round's request work without the sockets and the loop: CPU µs of each step, in-process
    (each step by difference: decode, decode + handle, decode + handle + encode, whole dispatch)."""
    from bench_produce_wire import fetch_frame, produce_frame

    from suoi.api.dispatch import _encode, dispatch
    from suoi.api.registry import REGISTRY, RequestContext
    from suoi.protocol.codec import decode_request, read_prefix
    from suoi.protocol.records import build_batch

    batch = build_batch([(None, b"y" * 100)], timestamp_ms=int(time.time() * 1000))
    produce = produce_frame(TOPIC, [0], batch, cid=1)[4:]
    answer = dispatch(broker, produce, "bench")
    assert isinstance(answer, list)
    leaders = broker.kraft.replicas.leaders
    plog = leaders[next(tp for tp in leaders if tp.topic == TOPIC and tp.partition == 0)].plog
    handler = REGISTRY[0].handler

    def handled() -> Any:  # a fresh request body each time, as on the wire (no cache hit on the same bytes)
        request = decode_request(produce, read_prefix(produce))
        return request, handler(RequestContext(broker, 0, request.api_version, 1, "bench", "bench"), request.body)

    decode = _cpu_us(lambda: decode_request(produce, read_prefix(produce)), n)
    decode_handle = _cpu_us(handled, n)
    decode_handle_encode = _cpu_us(lambda: _encode(*handled()), n)
    whole = _cpu_us(lambda: dispatch(broker, produce, "bench"), n)
    out = {
        "Produce: decode (header, bounds check, kio)": decode,
        "Produce: handler (partition append incl.)": decode_handle - decode,
        "Produce: encode the answer": decode_handle_encode - decode_handle,
        "Produce: dispatch's own part (context, quotas, metrics)": whole - decode_handle_encode,
        "Produce: whole dispatch": whole,
    }
    leo = plog.log_end_offset
    fetch = fetch_frame(TOPIC, 0, leo, 2)[4:]
    out["Fetch: decode"] = _cpu_us(lambda: decode_request(fetch, read_prefix(fetch)), n)
    batches = []
    loop = asyncio.get_running_loop()
    for _ in range(5):
        fetches = [fetch_frame(TOPIC, 0, offset, 2)[4:] for offset in range(leo, leo + n)]
        t0 = time.thread_time()
        for frame in fetches:  # park at the log end, wake it with a Produce, answer
            await _answered(loop, dispatch(broker, frame, "bench"), lambda: dispatch(broker, produce, "bench"))
        batches.append((time.thread_time() - t0) / n * 1e6)
        leo += n
    out["Fetch parked + Produce that wakes it (dispatch, task)"] = statistics.median(batches)
    out["Fetch: park, wake, re-read, answer (by difference)"] = (
        out["Fetch parked + Produce that wakes it (dispatch, task)"] - out["Produce: whole dispatch"])
    if partitions > 1:
        out.update(await _breakdown_many(broker, loop, batch, n, partitions))
    out.update(await _acks_all_wait(broker, loop, batch, n))
    return out


async def _breakdown_many(broker: Any, loop: asyncio.AbstractEventLoop, batch: bytes, n: int,
                          partitions: int) -> dict[str, float]:
    """A sessionless Fetch naming `partitions` partitions at their log ends (librdkafka's full
    fetch): answered at once (max wait 0: every partition's empty answer), and parked then woken
    by a Produce to one of them (round robin), less that Produce's dispatch."""
    from suoi.api.dispatch import dispatch

    leaders = broker.kraft.replicas.leaders
    logs = {tp.partition: p.plog for tp, p in leaders.items() if tp.topic == TOPIC and tp.partition < partitions}
    rounds = ConsumerRounds.__new__(ConsumerRounds)
    rounds.session_id = 0
    produces = [produce_frame(TOPIC, [p], batch, cid=5)[4:] for p in range(partitions)]
    out: dict[str, float] = {}
    rounds.offsets = {p: plog.log_end_offset for p, plog in logs.items()}
    at_end = rounds._fetch_frame(6, -1, wait_ms=0)[4:]
    out[f"Fetch of {partitions} at their log ends, max wait 0 (whole dispatch)"] = _cpu_us(
        lambda: dispatch(broker, at_end, "bench"), n)
    offsets, rounds.offsets = rounds.offsets, {0: rounds.offsets[0]}
    one_at_end = rounds._fetch_frame(6, -1, wait_ms=0)[4:]
    rounds.offsets = offsets
    out["Fetch of 1 at its log end, max wait 0 (whole dispatch)"] = _cpu_us(
        lambda: dispatch(broker, one_at_end, "bench"), n)
    batches, woken = [], []
    for _ in range(5):
        frames, targets = [], []
        for i in range(n):
            target = i % partitions
            frames.append(rounds._fetch_frame(6, -1)[4:])
            targets.append(produces[target])
            rounds.offsets[target] += 1
        t0 = time.thread_time()
        for frame, produce in zip(frames, targets, strict=True):
            await _answered(loop, dispatch(broker, frame, "bench"), partial(dispatch, broker, produce, "bench"))
        batches.append((time.thread_time() - t0) / n * 1e6)
        t0 = time.thread_time()
        for produce in targets:
            dispatch(broker, produce, "bench")
        woken.append((time.thread_time() - t0) / n * 1e6)
        rounds.offsets = {p: plog.log_end_offset for p, plog in logs.items()}
    out[f"Fetch of {partitions}: park, wake, re-read, answer (less the Produce)"] = (
        statistics.median(batches) - statistics.median(woken))
    return out


async def _acks_all_wait(broker: Any, loop: asyncio.AbstractEventLoop, batch: bytes, n: int) -> dict[str, float]:
    """An acks=all Produce that waits (as with RF=3) and a follower's fetch completes: the
    partition's wait is swapped for a future the bench completes, so what is timed is dispatch
    plus the wait's own machinery (task or callbacks) plus the answer, without the followers."""
    from bench_produce_wire import produce_frame

    from suoi.api.dispatch import dispatch

    leaders = broker.kraft.replicas.leaders
    partition = leaders[next(tp for tp in leaders if tp.topic == TOPIC and tp.partition == 0)]
    produce = produce_frame(TOPIC, [0], batch, acks=-1, cid=3)[4:]
    waits: list[Any] = []

    def wait_for_replication(_required_offset: int) -> asyncio.Future[int]:  # older trees: a future per wait
        waits.append(loop.create_future())
        return waits[-1]

    def await_isr(_required_offset: int, done: Callable[[int], object]) -> int:  # newer: a callback per wait
        waits.append(done)
        return 0

    def complete() -> None:
        wait = waits.pop()
        wait.set_result(0) if isinstance(wait, asyncio.Future) else wait(0)

    state = partition.state
    partition.wait_for_replication, partition.await_isr = wait_for_replication, await_isr
    state.acks_all_satisfied = lambda _required_offset: False  # as with followers: the append must wait
    try:
        batches = []
        for _ in range(5):
            t0 = time.thread_time()
            for _ in range(n):
                await _answered(loop, dispatch(broker, produce, "bench"), complete)
            batches.append((time.thread_time() - t0) / n * 1e6)
    finally:
        del partition.wait_for_replication, partition.await_isr, state.acks_all_satisfied
    return {"acks=all Produce, its wait completed (dispatch, wait, answer)": statistics.median(batches)}


async def _answered(loop: asyncio.AbstractEventLoop, outcome: Any, wake: Callable[[], object]) -> object:
    """Wait for a parked Fetch's answer as `net.server` does: a task for a coroutine (older
    trees), the answer's own callback for a `suoi.pending.Pending` (a future here, to await)."""
    if hasattr(outcome, "sink"):
        answer = loop.create_future()
        outcome.sink(lambda parts, exc: answer.set_result(parts))
    else:
        answer = asyncio.ensure_future(outcome)
    wake()
    return await answer


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="suoi-bench-small-") as data:
        broker = await single_node(data)
        gc.collect()
        gc.freeze()  # as `suoi broker` does once started, with its collector settings
        gc.set_threshold(getattr(cli_broker, "GC_GEN0_THRESHOLD", 700), *gc.get_threshold()[1:])
        try:
            steps = await _breakdown(broker, args.breakdown, args.partitions) if args.breakdown and args.kind == "round" else {}
            loop = asyncio.get_running_loop()
            results: dict[str, Any] = {"done": asyncio.Event()}
            port = _client_port(broker)
            cpu = _loop_cpu(threading.get_ident())
            client = threading.Thread(target=_drive, args=(port, args, cpu, threading.get_native_id(), loop, results),
                                      daemon=True)
            client.start()
            await asyncio.wait_for(results["done"].wait(), 600)
            client.join(10)
        finally:
            await broker.stop()
    cpu_us = results.get("cpu")
    if not cpu_us:
        raise SystemExit("no rounds were measured (see the log above)")
    lat = sorted(results["latency"])
    print(f"suoi from {suoi.__file__}, loop {type(loop).__module__}; {args.repeat} x {args.rounds} rounds"
          + (f", Fetch of {args.partitions} partition(s){' in a session' if args.session else ''}"
             if args.kind == "round" else f"; a round is {args.in_flight} {args.kind} request(s) in flight")
          + (f" paced at {args.rate}/s" if args.rate else " back to back"))
    if args.kind != "round":
        per = [us / args.in_flight for us in cpu_us]
        print(f"  broker thread CPU per request: median {statistics.median(per):.2f} µs "
              f"(min {min(per):.2f}, max {max(per):.2f})")
    print(f"  broker thread CPU per round: median {statistics.median(cpu_us):.1f} µs "
          f"(min {min(cpu_us):.1f}, max {max(cpu_us):.1f}); at 1,000 rounds/s that is "
          f"{statistics.median(cpu_us) / 10:.1f} % of a core; user {results['user']:.0f} µs + kernel "
          f"{results['system']:.0f} µs (all repetitions, /proc: 10 ms ticks)")
    print(f"  round latency (produce written -> fetch answer read): p50 {lat[len(lat) // 2] * 1e3:.3f} ms, "
          f"p99 {lat[int(len(lat) * 0.99)] * 1e3:.3f} ms")
    if steps:
        print(f"  in-process, without sockets or the loop (CPU µs, median of 5 x {args.breakdown}):")
        for name, us in steps.items():
            print(f"    {us:7.1f}  {name}")
        rest = statistics.median(cpu_us) - steps["Fetch parked + Produce that wakes it (dispatch, task)"]
        print(f"    {rest:7.1f}  the rest of a round: event loop, socket reads and writes, framing, "
              "ordering of answers (by difference)")
    profiler = results.get("profile")
    if profiler is not None:
        unit, n = ("round", args.rounds) if args.kind == "round" else ("request", args.rounds * args.in_flight)
        print_profile(profiler, n, unit, args.top)


def print_profile(profiler: cProfile.Profile, n: int, unit: str, top: int) -> None:
    """The functions with the most own time, per `unit` (`n` of them in the profiled window)."""
    stats = pstats.Stats(profiler, stream=io.StringIO())
    total = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]
    calls = sum(v[1] for v in stats.stats.values())  # type: ignore[attr-defined]
    print(f"  cProfile: {total / n * 1e6:.1f} µs and {calls / n:.0f} function calls per {unit} "
          f"under the profiler; own time per {unit}:")
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)  # type: ignore[attr-defined]
    for (file, line, name), (_cc, ncalls, tottime, cumtime, _) in rows[:top]:
        where = f"{os.path.basename(file)}:{line}({name})" if line else name
        print(f"    {tottime / n * 1e6:7.2f} µs  {ncalls / n:5.1f} calls  "
              f"cum {cumtime / n * 1e6:7.1f}  {where}")


def _client_port(broker: Any) -> int:
    """The port of the broker's PLAINTEXT listener."""
    for listener in broker.config.listeners:
        if listener.name == "PLAINTEXT":
            return int(listener.port)
    raise SystemExit("no PLAINTEXT listener")


def _run_loop(coro: Any) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
        return
    uvloop.run(coro)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3000, help="rounds per repetition")
    ap.add_argument("--repeat", type=int, default=5, help="repetitions measured (the median is printed)")
    ap.add_argument("--rate", type=int, default=0, help="rounds per second (0: back to back)")
    ap.add_argument("--profile", nargs="?", const="wall", choices=("wall", "cpu"),
                    help="one more repetition under cProfile, timed by perf_counter (wall, the default) or "
                         "by the thread's CPU time (cpu: slower, but another process's turn is not counted)")
    ap.add_argument("--top", type=int, default=40, help="profile rows to print")
    ap.add_argument("--breakdown", type=int, default=2000,
                    help="first time each step of a round in-process, this many calls a batch (0: skip)")
    ap.add_argument("--kind", choices=("round", "apiversions", "metadata"), default="round",
                    help="round: Fetch parked + Produce that wakes it; or --in-flight cheap requests a round")
    ap.add_argument("--in-flight", type=int, default=1, help="cheap requests written at once per round")
    ap.add_argument("--partitions", type=int, default=1, help="partitions the consumer's Fetch names (<= 6)")
    ap.add_argument("--session", action="store_true", help="the Fetch is a KIP-227 session's incremental one")
    ap.add_argument("--client-port", type=int, default=0, help=argparse.SUPPRESS)  # the client process
    parsed = ap.parse_args()
    if parsed.client_port:
        _client(parsed.client_port, parsed)
    else:
        _run_loop(main(parsed))
