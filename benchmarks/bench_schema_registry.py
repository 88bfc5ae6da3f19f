#!/usr/bin/env python3
"""Schema registry latency: how long a registration (one write to `_schemas`, answered once it is
read back) and a schema-by-id read take, as a client sees them over HTTP.

Prints figures; it is not a test. Without --registry it starts `make run`'s node (KRaft, config/
server.properties on free ports, a temp log dir) with its own registry (`schema.registry.listeners`).
Compatibility NONE, --count (50) new Avro schemas registered one after another under one subject,
then --reads (500) GET /schemas/ids/N. Median and p99 of each.

  python benchmarks/bench_schema_registry.py
  python benchmarks/bench_schema_registry.py --registry http://127.0.0.1:8081
  python benchmarks/bench_schema_registry.py --count 6 --pause 7   (each write to an idle registry)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CT = "application/vnd.schemaregistry.v1+json"


def call(url: str, method: str, path: str, body: object = None) -> object:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method=method, headers={"Content-Type": CT})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def measure(url: str, count: int, reads: int, pause: float = 0.0) -> None:
    subject = f"bench-{uuid.uuid4().hex[:8]}-value"
    call(url, "PUT", f"/config/{subject}", {"compatibility": "NONE"})
    writes, ids = [], []
    for i in range(count):
        schema = {"type": "record", "name": f"R{i}", "fields": [{"name": "a", "type": "int"}]}
        time.sleep(pause)  # --pause: each write after the registry went idle (not a synchronisation)
        t = time.perf_counter()
        ids.append(call(url, "POST", f"/subjects/{subject}/versions", {"schema": json.dumps(schema)})["id"])  # type: ignore[index]
        writes.append(time.perf_counter() - t)
    gets = []
    for i in range(reads):
        t = time.perf_counter()
        call(url, "GET", f"/schemas/ids/{ids[i % len(ids)]}")
        gets.append(time.perf_counter() - t)
    for name, xs in (("register (one write)", writes), ("GET /schemas/ids/N", gets)):
        xs.sort()
        print(f"{name:22s} n={len(xs):4d}  median {statistics.median(xs) * 1000:7.2f} ms  "
              f"p99 {xs[int(len(xs) * 0.99) - 1] * 1000:7.2f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--registry", help="an existing registry's URL (default: start make run's node with one)")
    ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--reads", type=int, default=500)
    ap.add_argument("--pause", type=float, default=0.0,
                    help="seconds of quiet before each registration (a write to an idle registry)")
    args = ap.parse_args()
    if args.registry:
        measure(args.registry.rstrip("/"), args.count, args.reads, args.pause)
        return
    from suoi.testing import EmbeddedBroker
    from suoi.testing.embedded import free_port
    from tests.e2e.test_single_node_kraft import make_run_properties

    port, cport, rport = free_port(), free_port(), free_port()
    props = make_run_properties(port, cport)
    props["schema.registry.listeners"] = f"http://127.0.0.1:{rport}"
    with EmbeddedBroker(Path(tempfile.mkdtemp(prefix="bench-registry-")), port=port, overrides=props):
        url = f"http://127.0.0.1:{rport}"
        deadline = time.monotonic() + 60
        while True:
            try:
                call(url, "GET", "/subjects")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        measure(url, args.count, args.reads, args.pause)


if __name__ == "__main__":
    main()
