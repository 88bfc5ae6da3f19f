"""What a /metrics scrape costs the node's event loop (issue 19: long synchronous steps).

A Prometheus scrape reads the node, makes its families and writes their text, per partition and
per topic; whatever of that holds the event loop (or its GIL) is a pause every client sees, once
per scrape interval. Per `--src` tree and per `--partitions` count: a KRaft node (admin endpoint
on, `admin.metrics.log.partitions.max=-1` so that every partition has its series) run inside
`scrape_probe.py`, an ApiVersions round trip every `--probe-ms` on its own connection
(bench_latency's probe), and a scrape every `--every` seconds for `--seconds`, with Prometheus's
own `Accept` (it gets OpenMetrics; `--accept text` for the Prometheus text format) and, with
`--gzip`, its `Accept-Encoding: gzip`; trees alternate for `--rounds`. Printed, medians over the
scrapes of all rounds (and the max): samples and bytes sent per scrape, the node's CPU per scrape
(every thread, during the handler: the ticker's and the probe's callbacks included, ~0.1-0.3 ms,
the same in every tree), the loop's longest gap during a scrape (a 1 ms ticker on the loop: 1 ms
is the floor), the scrape's wall time, and the probe's p99/max while scrapes run; then the same
for each node's first scrape (not in the rounds: the text of every series is made then).

    git archive HEAD src | tar -x -C /tmp/before
    python benchmarks/bench_scrape_stall.py --src before=/tmp/before/src --src after=src
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
import time
import urllib.request
from pathlib import Path

from common import REPO_ROOT, create_topic, log, percentile, start_suoi_kraft
from latency_watch import ApiVersionsProbe

PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;"
                     "q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2")
PROBE = str(Path(__file__).resolve().parent / "scrape_probe.py")


def get_metrics(admin_port: int, accept: str, encoding: str = "") -> str:
    headers = {"Accept": accept, **({"Accept-Encoding": encoding} if encoding else {})}
    request = urllib.request.Request(f"http://127.0.0.1:{admin_port}/metrics", headers=headers)
    with urllib.request.urlopen(request, timeout=10) as r:
        body = r.read()
        return (gzip.decompress(body) if r.headers.get("Content-Encoding") == "gzip" else body).decode()


def wait_hosted(admin_port: int, partitions: int, timeout: float = 120.0) -> None:
    """Until the node hosts the topic's partitions (it creates the replicas after CreateTopics
    answers); asked of /v1/partitions, so that the first /metrics scrape is the first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/v1/partitions", timeout=10) as r:
            if sum(p["topic"] == "scraped" for p in json.load(r)["partitions"]) >= partitions:
                return
        time.sleep(0.2)
    raise TimeoutError(f"the node did not host {partitions} partitions within {timeout}s")


def one_round(node, out: str, seconds: float, every: float, probe_ms: float, accept: str,
              encoding: str) -> dict[str, list[float]]:
    done = os.path.getsize(out) if os.path.exists(out) else 0
    probe = ApiVersionsProbe(node.bootstrap, probe_ms / 1000)
    try:
        time.sleep(0.5)
        probe.recording = True
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t0 = time.perf_counter()
            get_metrics(node.admin_port, accept, encoding)
            time.sleep(max(0.0, every - (time.perf_counter() - t0)))
    finally:
        rtts = probe.close()
    with open(out) as f:
        f.seek(done)
        scrapes = [json.loads(line) for line in f if line.strip()]
    return {"samples": [s["samples"] for s in scrapes], "bytes": [s["bytes"] for s in scrapes],
            "cpu ms": [s["cpu_ms"] for s in scrapes],
            "longest gap ms": [s["longest_gap_ms"] for s in scrapes], "wall ms": [s["wall_ms"] for s in scrapes],
            "probe p99 ms": [percentile(rtts, 99)], "probe max ms": [rtts[-1] if rtts else float("nan")]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", action="append", default=[], metavar="LABEL=PATH", help="src trees (default: this one)")
    ap.add_argument("--partitions", type=int, nargs="+", default=[6, 100, 1000],
                    help="partitions on the node, one node per count and tree (default 6 100 1000)")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--every", type=float, default=0.5, help="seconds between scrapes (default 0.5)")
    ap.add_argument("--probe-ms", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--accept", choices=["prometheus", "text"], default="prometheus",
                    help="Prometheus's Accept (OpenMetrics; default) or none (the Prometheus text format)")
    ap.add_argument("--gzip", action="store_true", help="Accept-Encoding: gzip, as Prometheus sends it")
    args = ap.parse_args()
    accept = PROMETHEUS_ACCEPT if args.accept == "prometheus" else ""
    encoding = "gzip" if args.gzip else ""
    trees = [s.split("=", 1) for s in args.src] or [["this", str(REPO_ROOT / "src")]]
    table: list[str] = []
    firsts: list[str] = []
    for count in args.partitions:
        nodes = []
        results: dict[str, dict[str, list[float]]] = {label: {} for label, _ in trees}
        try:
            for label, path in trees:
                out = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"scrapes-{os.getpid()}-{label}-{count}.jsonl")
                node = start_suoi_kraft(label, path, 60, "admin.metrics.log.partitions.max=-1\n",
                                        launcher=[PROBE, "--out", out])
                node.scrapes_out = out
                nodes.append(node)
                create_topic(node.bootstrap, "scraped", count, timeout=120)
                wait_hosted(node.admin_port, count)
                get_metrics(node.admin_port, accept, encoding)  # the first scrape (the text of every series made): apart
                with open(out) as f:
                    first = json.loads(f.readlines()[-1])
                firsts.append(f"{count:>5} partitions {label:>8}: first scrape cpu ms {first['cpu_ms']:.2f}, "
                              f"longest gap ms {first['longest_gap_ms']:.2f}, wall ms {first['wall_ms']:.2f}")
            for rnd in range(args.rounds):
                for node in (nodes if rnd % 2 == 0 else nodes[::-1]):
                    r = one_round(node, node.scrapes_out, args.seconds, args.every, args.probe_ms, accept, encoding)
                    log(f"{count} partitions, round {rnd + 1} {node.label}: " +
                        ", ".join(f"{k} {statistics.median(v):.2f}" for k, v in r.items()))
                    for k, v in r.items():
                        results[node.label].setdefault(k, []).extend(v)
        finally:
            for node in nodes:
                node.stop()
                if os.path.exists(node.scrapes_out):
                    os.unlink(node.scrapes_out)
        for label, figures in results.items():
            table.append(f"{count:>5} partitions {label:>8}: " + "; ".join(
                f"{k} {statistics.median(v):.2f} (max {max(v):.2f})" for k, v in figures.items()))
    print(f"a scrape every {args.every} s ({args.accept}{', gzip' if args.gzip else ''}), ApiVersions every {args.probe_ms} ms, "
          f"{args.rounds} rounds of {args.seconds} s; medians over the scrapes (max)")
    print("\n".join(table + firsts))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
