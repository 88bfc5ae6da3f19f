"""How long a /metrics scrape holds the node's event loop (issue 19: long synchronous steps).

A Prometheus scrape of a node with many partitions collects and encodes thousands of samples;
whatever of that runs on the event loop is a pause every client sees, once per scrape interval.
Per `--src` tree: a KRaft node with `--partitions` partitions (admin endpoint on), an ApiVersions
round trip every `--probe-ms` on its own connection (bench_latency's probe), and a scrape every
`--every` seconds for `--seconds`; trees alternate for `--rounds`. Printed: the scrape's wall time,
and the probe's p50/p99/max while scrapes run (the loop's pause shows as the probe's max).

    git archive HEAD src | tar -x -C /tmp/before
    python benchmarks/bench_scrape_stall.py --src before=/tmp/before/src --src after=src
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench_latency import ApiVersionsProbe
from common import REPO_ROOT, admin_metrics, create_topic, log, percentile, start_suoi_kraft


def one_round(node, seconds: float, every: float, probe_ms: float) -> dict[str, float]:
    probe = ApiVersionsProbe(node.bootstrap, probe_ms / 1000)
    scrapes: list[float] = []
    try:
        time.sleep(0.5)
        probe.recording = True
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t0 = time.perf_counter()
            if not admin_metrics(node.admin_port):
                raise RuntimeError("the admin endpoint did not answer")
            scrapes.append(time.perf_counter() - t0)
            time.sleep(max(0.0, every - (time.perf_counter() - t0)))
    finally:
        rtts = probe.close()
    return {"scrape ms": statistics.median(scrapes) * 1e3, "probe p50 ms": percentile(rtts, 50),
            "probe p99 ms": percentile(rtts, 99), "probe max ms": rtts[-1] if rtts else float("nan")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", action="append", default=[], metavar="LABEL=PATH", help="src trees (default: this one)")
    ap.add_argument("--partitions", type=int, default=1000, help="partitions on the node (default 1000)")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--every", type=float, default=0.5, help="seconds between scrapes (default 0.5)")
    ap.add_argument("--probe-ms", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    trees = [s.split("=", 1) for s in args.src] or [["this", str(REPO_ROOT / "src")]]
    nodes = []
    results: dict[str, dict[str, list[float]]] = {label: {} for label, _ in trees}
    try:
        for label, path in trees:
            node = start_suoi_kraft(label, path, 60)
            nodes.append(node)
            create_topic(node.bootstrap, "scraped", args.partitions, timeout=120)
            admin_metrics(node.admin_port)  # the endpoint loads once the node serves
        for rnd in range(args.rounds):
            for node in (nodes if rnd % 2 == 0 else nodes[::-1]):
                r = one_round(node, args.seconds, args.every, args.probe_ms)
                log(f"round {rnd + 1} {node.label}: " + ", ".join(f"{k} {v:.2f}" for k, v in r.items()))
                for k, v in r.items():
                    results[node.label].setdefault(k, []).append(v)
    finally:
        for node in nodes:
            node.stop()
    print(f"{args.partitions} partitions, a scrape every {args.every} s, ApiVersions every {args.probe_ms} ms; "
          f"median (min-max) of {args.rounds} rounds")
    for label, figures in results.items():
        print(f"{label:>8}: " + "; ".join(f"{k} {statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f})"
                                          for k, v in figures.items()))


if __name__ == "__main__":
    main()
