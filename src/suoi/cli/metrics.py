"""`suoi metrics --node URL`: a node's key figures as a table, for people without Prometheus.

    suoi metrics --node http://127.0.0.1:9644 [--node http://127.0.0.1:9645 ...] [--output json]

Scrapes each node's admin endpoint (`admin.listeners`, `GET /metrics`), parses it with
prometheus-client's parser and prints one row per node (readiness, partitions, leaders,
under-replicated, messages/bytes in and out, connections, event-loop lag), then the consumer
groups' lag per topic. A node that does not answer is one error line and exit code 1.
"""

from __future__ import annotations

import argparse
import urllib.request
from typing import Any

from suoi.cli.common import guarded, print_json
from suoi.cli.tables import print_kafka_table

#: (column, metric name) of the per-node table; all are unlabelled samples
NODE_COLUMNS = (
    ("READY", "suoi_node_ready"),
    ("PARTITIONS", "kafka_server_replicamanager_partitioncount"),
    ("LEADERS", "kafka_server_replicamanager_leadercount"),
    ("UNDER-REPLICATED", "kafka_server_replicamanager_underreplicatedpartitions"),
    ("UNDER-MIN-ISR", "kafka_server_replicamanager_underminisrpartitioncount"),
    ("OFFLINE", "kafka_controller_kafkacontroller_offlinepartitionscount"),
    ("MESSAGES-IN", "kafka_server_brokertopicmetrics_messagesin_total"),
    ("BYTES-IN", "kafka_server_brokertopicmetrics_bytesin_total"),
    ("BYTES-OUT", "kafka_server_brokertopicmetrics_bytesout_total"),
    ("LOOP-LAG-MS", "suoi_eventloop_lag_last_seconds"),
)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("metrics", help="key figures of nodes' admin endpoints as a table",
                       description="Scrape nodes' admin endpoints (admin.listeners, GET /metrics) and print their "
                       "key figures and the consumer groups' lag.",
                       epilog="example: suoi metrics --node http://127.0.0.1:9644")
    p.add_argument("--node", action="append", required=True, metavar="URL",
                   help="a node's admin endpoint, e.g. http://127.0.0.1:9644 (repeatable)")
    p.add_argument("--output", choices=("text", "json"), default="text", help="text (default) or json")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per scrape (default 5)")
    p.set_defaults(func=guarded("metrics")(run))


def scrape(url: str, timeout: float) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"{url.rstrip('/')}/metrics", timeout=timeout) as response:  # noqa: S310 (operator's URL)
        text = response.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def run(args: argparse.Namespace) -> int:
    nodes = []
    lags: dict[tuple[str, str], float] = {}
    for url in args.node:
        samples = scrape(url, args.timeout)
        row: dict[str, Any] = {"node": url}
        for column, name in NODE_COLUMNS:
            value = samples.get((name, frozenset()))
            row[column.lower()] = None if value is None else (value * 1000 if column == "LOOP-LAG-MS" else value)
        row["connections"] = sum(v for (n, _), v in samples.items() if n == "kafka_network_socketserver_connections")
        nodes.append(row)
        for (name, labels), value in samples.items():
            if name == "kafka_consumergroup_lag_sum":
                tags = dict(labels)
                lags[(tags["consumergroup"], tags["topic"])] = value  # each group is on one coordinator
    if args.output == "json":
        print_json({"nodes": nodes, "consumer_groups": [{"group": g, "topic": t, "lag": int(v)}
                                                        for (g, t), v in sorted(lags.items())]})
        return 0
    headers = ["NODE", *(c for c, _ in NODE_COLUMNS), "CONNECTIONS"]
    print_kafka_table(headers, [[r["node"], *(_fmt(r[c.lower()]) for c, _ in NODE_COLUMNS), _fmt(r["connections"])]
                                for r in nodes])
    if lags:
        print()
        print_kafka_table(["GROUP", "TOPIC", "LAG"], [[g, t, _fmt(v)] for (g, t), v in sorted(lags.items())])
    return 0


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"
