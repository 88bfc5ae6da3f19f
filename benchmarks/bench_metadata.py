#!/usr/bin/env python3
"""Metadata propagation: how long after a CreateTopics answer each broker of a 3-node KRaft
cluster lists the new topic in its Metadata answers.

Prints figures; it is not a test.  It starts three combined (broker,controller) nodes with
`suoi.testing.EmbeddedBroker` on 127.0.0.1 in a temporary directory (stopped by PID at the
end), then --probes (12) times: CreateTopics (1 partition, RF 1) through node 1 (or
--via), and from the moment its answer arrives, Metadata for that topic to every node in
turn on its own connection until each lists it; the lag per node is the time of its first
answer that lists the topic.  A node that lags ~fetch_max_wait (500 ms) learns commits only
when its parked metadata fetch expires (KAFKA-14145; suoi answers such fetches at once,
KIP-1166).  Requests are kio entities sent with suoi's internal client.

  python benchmarks/bench_metadata.py
  python benchmarks/bench_metadata.py --probes 30 --via 2 --json
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
from kio.schema.create_topics.v7.request import CreatableTopic, CreateTopicsRequest  # noqa: E402
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic  # noqa: E402

from suoi.cli.cluster_layout import free_ports  # noqa: E402
from suoi.client import KafkaClientConnection  # noqa: E402
from suoi.testing import EmbeddedBroker  # noqa: E402

CLUSTER_ID = "YmVuY2gtbWV0YWRhdGEtMDA"


def start_cluster(directory: Path, size: int = 3) -> dict[int, EmbeddedBroker]:
    picked = free_ports(2 * size)
    ports = list(zip(picked[::2], picked[1::2], strict=True))
    voters = ",".join(f"{i}@127.0.0.1:{c}" for i, (_, c) in enumerate(ports, 1))
    nodes = {
        i: EmbeddedBroker(directory / f"node-{i}", port=port, overrides={
            "process.roles": "broker,controller", "node.id": str(i),
            "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names": "CONTROLLER", "controller.quorum.voters": voters,
            "cluster.id": CLUSTER_ID,
        })
        for i, (port, cport) in enumerate(ports, 1)
    }
    for node in nodes.values():
        node.launch()
    for node in nodes.values():
        node.wait_ready()
    return nodes


def metadata(topic: str) -> MetadataRequest:
    return MetadataRequest(topics=(MetadataRequestTopic(topic_id=None, name=topic),),
                           allow_auto_topic_creation=False, include_topic_authorized_operations=False)


def listed(response: Any) -> bool:
    return any(int(t.error_code) == 0 and len(t.partitions) > 0 for t in response.topics)


async def probe(conns: dict[int, KafkaClientConnection], via: int, timeout_s: float) -> tuple[float, dict[int, float]]:
    """(CreateTopics round trip, {node: seconds from its answer until the node lists the topic})."""
    topic = f"bench-md-{uuid.uuid4().hex[:8]}"
    create = CreateTopicsRequest(topics=(CreatableTopic(name=topic, num_partitions=1, replication_factor=1,
                                                        assignments=(), configs=()),),
                                 timeout=datetime.timedelta(seconds=10), validate_only=False)
    sent = time.perf_counter()
    answer = await conns[via].request(create, timeout=timeout_s)
    if int(answer.topics[0].error_code) != 0:
        raise SystemExit(f"CreateTopics {topic}: error {answer.topics[0].error_code}")
    t0 = time.perf_counter()

    async def until_listed(node: int) -> float:
        while time.perf_counter() - t0 < timeout_s:
            if listed(await conns[node].request(metadata(topic), timeout=timeout_s)):
                return time.perf_counter() - t0
        raise SystemExit(f"node {node} did not list {topic} within {timeout_s}s")

    lags = await asyncio.gather(*(until_listed(n) for n in sorted(conns)))
    return t0 - sent, dict(zip(sorted(conns), lags, strict=True))


async def run(nodes: dict[int, EmbeddedBroker], args: argparse.Namespace) -> dict[str, Any]:
    conns = {i: await KafkaClientConnection.connect(n.host, n.port, client_id="bench-metadata", timeout=10)
             for i, n in nodes.items()}
    try:
        probes = [await probe(conns, args.via, 10.0) for _ in range(args.probes)]
    finally:
        for c in conns.values():
            await c.close()
    creates = [c * 1000 for c, _ in probes]
    results = [r for _, r in probes]
    per_node = {i: [r[i] * 1000 for r in results] for i in nodes}
    worst = [max(r.values()) * 1000 for r in results]
    return {
        "probes": args.probes, "via": args.via,
        "per_node_ms": {i: {"median": statistics.median(v), "max": max(v)} for i, v in per_node.items()},
        "worst_node_median_ms": statistics.median(worst), "worst_node_max_ms": max(worst),
        "probes_over_100ms": sum(w > 100 for w in worst),
        "create_topics_median_ms": statistics.median(creates), "create_topics_max_ms": max(creates),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--probes", type=int, default=12)
    ap.add_argument("--via", type=int, default=1, choices=(1, 2, 3), help="node that gets CreateTopics")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="suoi-bench-md-") as tmp:
        nodes = start_cluster(Path(tmp))
        try:
            out = asyncio.run(run(nodes, args))
        finally:
            for node in nodes.values():
                node.stop()
    print(f"CreateTopics via node {out['via']}: answered after median {out['create_topics_median_ms']:.1f} ms, "
          f"max {out['create_topics_max_ms']:.1f} ms")
    print(f"CreateTopics via node {out['via']} -> topic listed by Metadata, {out['probes']} probes (ms after the answer)")
    for i, s in out["per_node_ms"].items():
        print(f"  node {i}: median {s['median']:7.1f}   max {s['max']:7.1f}")
    print(f"  slowest node per probe: median {out['worst_node_median_ms']:.1f}, max {out['worst_node_max_ms']:.1f}; "
          f"probes with a node over 100 ms: {out['probes_over_100ms']}/{out['probes']}")
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
