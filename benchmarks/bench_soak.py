"""Broker memory over a produce/consume soak: is RSS flat after warm-up?

Starts suoi (this checkout, or ``--src`` another tree) on a free 127.0.0.1 port, or measures
a running broker (``--bootstrap`` + ``--pid``). A paced librdkafka producer writes ``--rate``
MB/s of ``--size``-byte values round robin to a 6-partition topic while a consumer reads
them back, for ``--minutes``. The topic rolls 128 MB segments and keeps 1 GiB per partition
(retention checked every 10 s: a consumer may lag ~2 minutes at 50 MB/s), so the disk stays
bounded whatever the length. The broker's VmRSS is sampled every ``--interval`` seconds;
printed: RSS after warm-up (``--warmup`` seconds) and at the end, the peak, and the
least-squares slope of RSS over the post-warm-up samples in MB per minute - a leak shows as
a steady positive slope, page-cache churn does not (RSS counts the process's own memory only).
Each sample splits RSS into RssAnon (heap, arenas: what a leak grows) and RssFile (mapped
files: the interpreter's and extensions' code, shared with the page cache).
Also printed: the rates achieved and the broker's CPU. A script, not a test.

``--probe`` starts the broker inside ``soak_probe.py`` (the suoi CLI unchanged, plus a thread
that probes it on its event loop every ``--probe-every`` s): the sizes of the broker's own maps
(segments, index entries kept in memory, read hints, fetch sessions, producer entries,
connections, ...), live objects by type, glibc's heap and pymalloc's arenas, and with
``--tracemalloc N`` the allocations that grew since the end of warm-up, by traceback
(tracemalloc costs the broker CPU and memory of its own: read the slope from a run without it).

    python benchmarks/bench_soak.py                  # 10 minutes at 50 MB/s
    python benchmarks/bench_soak.py --minutes 3 --json
    python benchmarks/bench_soak.py --minutes 10 --probe --tracemalloc 8   # what grows
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import MB, REPO_ROOT, SUOI_CMD, Target, _spawn, free_port, log, payload, read_cpu_s, wait_ready  # noqa: E402
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

PARTITIONS = 6
TOPIC_CONFIG = {"segment.bytes": str(128 << 20), "retention.bytes": str(1 << 30)}


PROBE = Path(__file__).with_name("soak_probe.py")


def start(src: Path, ready_timeout: float, probe: list[str] | None = None) -> Target:
    """suoi from ``src``; with ``probe`` (soak_probe.py's options), inside the probe wrapper."""
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="bench-soak-")
    logdir = os.path.join(workdir, "data")
    os.makedirs(logdir)
    cmd = SUOI_CMD + " -o log.retention.check.interval.ms=10000"
    argv = [a.format(python=sys.executable, port=port, logdir=logdir) for a in cmd.split()]
    if probe is not None:
        argv[1:3] = [str(PROBE), *probe, "--"]  # "-m suoi" -> the wrapper, then the same arguments
    return _spawn("suoi", argv, port, env=dict(os.environ, PYTHONPATH=str(src)), workdir=workdir,
                  ready_timeout=ready_timeout, is_peer=False)


def create(bootstrap: str, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1, config=TOPIC_CONFIG)])[topic].result(30)
    deadline = time.monotonic() + 30
    while True:
        t = admin.list_topics(topic, timeout=5).topics.get(topic)
        if t is not None and t.error is None and len(t.partitions) == PARTITIONS and all(
                p.leader >= 0 for p in t.partitions.values()):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{topic} has no leaders after 30 s")
        time.sleep(0.1)


class Load:
    """Paced producer and a consumer, each in a thread, until `stop`."""

    def __init__(self, bootstrap: str, topic: str, rate_mb: float, size: int) -> None:
        self.bootstrap, self.topic, self.rate_mb, self.size = bootstrap, topic, rate_mb, size
        self.produced = self.consumed = self.errors = 0
        self.done = threading.Event()
        self.threads = [threading.Thread(target=self._produce, daemon=True),
                        threading.Thread(target=self._consume, daemon=True)]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def stop(self) -> None:
        self.done.set()
        for t in self.threads:
            t.join(timeout=30)

    def _produce(self) -> None:
        def on_delivery(err, _msg):
            if err is not None:
                self.errors += 1

        p = Producer({"bootstrap.servers": self.bootstrap, "acks": "1", "linger.ms": 5, "compression.type": "none",
                      "enable.idempotence": False, "queue.buffering.max.kbytes": 256 * 1024,
                      "delivery.report.only.error": True, "on_delivery": on_delivery, "log_level": 3})
        value = payload(self.size)
        per_tick = max(1, int(self.rate_mb * MB / self.size / 100))  # 100 ticks a second
        t0 = time.monotonic()
        tick = 0
        while not self.done.is_set():
            for _ in range(per_tick):
                try:
                    p.produce(self.topic, value, partition=self.produced % PARTITIONS)
                    self.produced += 1
                except BufferError:
                    p.poll(0.01)
                    break
            p.poll(0)
            tick += 1
            ahead = t0 + tick / 100 - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)  # pacing, not synchronisation
        p.flush(30)

    def _consume(self) -> None:
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "soak", "enable.auto.commit": False,
                      "auto.offset.reset": "earliest", "enable.partition.eof": False, "log_level": 3})
        c.assign([TopicPartition(self.topic, i, 0) for i in range(PARTITIONS)])
        try:
            while not self.done.is_set():
                for m in c.consume(num_messages=10_000, timeout=0.2):
                    if m.error() is None:
                        self.consumed += 1
        finally:
            c.close()


def slope_mb_per_min(samples: list[tuple[float, float]]) -> float:
    n = len(samples)
    if n < 2:
        return 0.0
    mt = sum(t for t, _ in samples) / n
    mr = sum(r for _, r in samples) / n
    var = sum((t - mt) ** 2 for t, _ in samples)
    return 0.0 if var == 0 else sum((t - mt) * (r - mr) for t, r in samples) / var * 60


def read_rss_split_mb(pid: int) -> dict[str, float]:
    """VmRSS, RssAnon and RssFile in MB (10^6 bytes), from /proc/PID/status ({} once gone)."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "RssAnon", "RssFile"):
                    out[key] = int(rest.split()[0]) * 1024 / MB
    except OSError:
        pass
    return out


def soak(bootstrap: str, pid: int, minutes: float, warmup: float, interval: float, rate: float,
         size: int) -> dict[str, float | int]:
    """The soak against a serving broker (process ``pid``): load for ``minutes``, RSS sampled every
    ``interval`` s; the figures (RSS after ``warmup`` s, at the end, peak, slope after warm-up)."""
    topic = f"soak-{int(time.time())}"
    create(bootstrap, topic)
    load = Load(bootstrap, topic, rate, size)
    t0 = time.monotonic()
    cpu0 = read_cpu_s(pid)
    load.start()
    try:
        samples: list[tuple[float, float]] = []
        anon: list[tuple[float, float]] = []
        end = t0 + minutes * 60
        next_at = t0
        while (now := time.monotonic()) < end:
            split = read_rss_split_mb(pid)
            if "VmRSS" not in split:
                raise RuntimeError("the broker is gone")
            samples.append((now - t0, split["VmRSS"]))
            anon.append((now - t0, split.get("RssAnon", 0.0)))
            log(f"t={now - t0:6.0f}s rss={split['VmRSS']:7.1f} MB (anon {split.get('RssAnon', 0):6.1f}, file "
                f"{split.get('RssFile', 0):6.1f}) produced={load.produced:,} consumed={load.consumed:,}")
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))  # sampling period
        elapsed = time.monotonic() - t0
        cpu1 = read_cpu_s(pid)
    finally:
        load.stop()
    after = [s for s in samples if s[0] >= warmup] or samples[-2:]
    anon_after = [s for s in anon if s[0] >= warmup] or anon[-2:]
    return {
        "minutes": round(elapsed / 60, 2),
        "produced_mb_s": round(load.produced * size / MB / elapsed, 1),
        "consumed_mb_s": round(load.consumed * size / MB / elapsed, 1),
        "produce_errors": load.errors,
        "broker_cpu_pct": round(100 * (cpu1 - cpu0) / elapsed, 1) if cpu0 is not None and cpu1 is not None else None,
        "rss_after_warmup_mb": round(after[0][1], 1), "rss_end_mb": round(samples[-1][1], 1),
        "rss_peak_mb": round(max(r for _, r in samples), 1),
        "rss_slope_mb_per_min": round(slope_mb_per_min(after), 2),
        "rss_anon_after_warmup_mb": round(anon_after[0][1], 1), "rss_anon_end_mb": round(anon[-1][1], 1),
        "rss_anon_slope_mb_per_min": round(slope_mb_per_min(anon_after), 2),
    }


def report_probe(path: Path) -> None:
    """Print what the probes saw: the maps and memory figures over time, then the last probe's
    growth by type and by traceback (since the baseline at the end of warm-up)."""
    probes = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    if not probes:
        print(f"no probe output in {path}")
        return
    print(f"\nprobes ({path}):")
    for p in probes:
        figures = {**p["rss"], **p.get("maps", {}), "objects": p["objects"]}
        if "traced_kb" in p:
            figures["traced_kb"] = p["traced_kb"]
        print(f"t={p['t']:6.0f}s " + " ".join(f"{k}={v}" for k, v in figures.items()))
    last = probes[-1]
    print("\nlive objects by type, change since the baseline:")
    for name, n in last.get("types", []):
        print(f"  {n:+8d} {name}")
    if "traces" in last:
        print("\nallocations grown since the baseline (tracemalloc, by traceback, newest frame first):")
        for tr in last["traces"]:
            print(f"  {tr['kb']:+9.1f} KiB {tr['count']:+7d} blocks  " + " <- ".join(tr["at"][:4]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=60.0, help="seconds before the reference RSS")
    ap.add_argument("--interval", type=float, default=5.0, help="seconds between RSS samples")
    ap.add_argument("--rate", type=float, default=50.0, help="MB/s of values produced")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--src", type=Path, default=REPO_ROOT / "src", help="suoi source tree to run")
    ap.add_argument("--bootstrap", help="measure a running broker instead (needs --pid)")
    ap.add_argument("--pid", type=int)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--probe", action="store_true", help="run the broker inside soak_probe.py (see above)")
    ap.add_argument("--probe-every", type=float, default=60.0, help="seconds between probes")
    ap.add_argument("--tracemalloc", type=int, default=0, metavar="FRAMES",
                    help="with --probe: trace the broker's allocations, FRAMES deep")
    ap.add_argument("--malloc-trim", action="store_true",
                    help="with --probe: glibc malloc_trim(0) at each probe (free heap given back)")
    args = ap.parse_args()

    target = None
    probe: list[str] | None = None
    if args.bootstrap:
        if args.pid is None:
            raise SystemExit("--bootstrap needs --pid")
        bootstrap, pid = args.bootstrap, args.pid
        wait_ready(bootstrap, 30)
    else:
        if args.probe or args.tracemalloc or args.malloc_trim:
            probe_out = Path(tempfile.mkdtemp(prefix="bench-soak-probe-")) / "probe.jsonl"
            probe = ["--out", str(probe_out), "--every", str(args.probe_every),
                     "--baseline-after", str(args.warmup), "--tracemalloc", str(args.tracemalloc),
                     *(["--malloc-trim"] if args.malloc_trim else [])]
        target = start(args.src, 60, probe)
        bootstrap, pid = target.bootstrap, target.pid
    assert pid is not None
    try:
        result = soak(bootstrap, pid, args.minutes, args.warmup, args.interval, args.rate, args.size)
        result["src"] = str(args.src) if target else bootstrap
        print("\nsoak: " + ", ".join(f"{k} {v}" for k, v in result.items()))
        if args.json:
            print(json.dumps(result))
        if probe is not None:
            report_probe(probe_out)
    finally:
        if target is not None:
            target.stop()


if __name__ == "__main__":
    main()
