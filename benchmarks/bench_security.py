"""TLS and SASL cost: produce and consume throughput and produce round-trip latency of one suoi
node over PLAINTEXT, SSL and SASL_SSL (PLAIN) listeners, printed with ratios to PLAINTEXT.

    python benchmarks/bench_security.py [--messages 200000] [--size 100] [--latency-samples 300]

One process, three listeners of the same node (certificates from trustme), confluent-kafka as
the client; each listener gets its own topic. A script, not a test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from suoi.cli.cluster_layout import free_ports  # noqa: E402
from suoi.testing import EmbeddedBroker  # noqa: E402
from tests.e2e.security_helpers import ADMIN_PASSWORD, PLAIN_JAAS, make_pki, tls_keystore  # noqa: E402


def produce(conf: dict[str, Any], topic: str, n: int, size: int) -> float:
    p = Producer({**conf, "linger.ms": 10, "batch.size": 1_000_000, "queue.buffering.max.messages": 2_000_000,
                  "compression.type": "none", "acks": "1"})
    p.list_topics(topic, timeout=10)
    value = b"x" * size
    t0 = time.perf_counter()
    for _ in range(n):
        while True:
            try:
                p.produce(topic, value)
                break
            except BufferError:
                p.poll(0.05)
    assert p.flush(60) == 0
    return n / (time.perf_counter() - t0)


def consume(conf: dict[str, Any], topic: str, n: int) -> float:
    c = Consumer({**conf, "group.id": "bench", "enable.auto.commit": False, "fetch.max.bytes": 16 << 20,
                  "max.partition.fetch.bytes": 4 << 20, "check.crcs": False})
    c.assign([TopicPartition(topic, 0, 0)])
    got = 0
    t0 = time.perf_counter()
    while got < n:
        got += len([m for m in c.consume(10_000, 1.0) if m.error() is None])
    rate = n / (time.perf_counter() - t0)
    c.close()
    return rate


def latency_ms(conf: dict[str, Any], topic: str, samples: int) -> float:
    p = Producer({**conf, "linger.ms": 0, "acks": "1"})
    p.list_topics(topic, timeout=10)
    out = []
    for _ in range(samples):
        t0 = time.perf_counter()
        p.produce(topic, b"ping")
        p.flush(10)
        out.append((time.perf_counter() - t0) * 1000)
    return statistics.median(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--latency-samples", type=int, default=300)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="suoi-bench-security-"))
    pki = make_pki(tmp / "pki")
    plain, tls, sasl = free_ports(3)
    listeners = f"PLAINTEXT://127.0.0.1:{plain},SSL://127.0.0.1:{tls},SASL_SSL://127.0.0.1:{sasl}"
    overrides = {"listeners": listeners, "sasl.enabled.mechanisms": "PLAIN",
                 "listener.name.sasl_ssl.plain.sasl.jaas.config": PLAIN_JAAS, **tls_keystore(pki)}
    confs = {
        "PLAINTEXT": {"bootstrap.servers": f"127.0.0.1:{plain}"},
        "SSL": {"bootstrap.servers": f"127.0.0.1:{tls}", "security.protocol": "SSL", "ssl.ca.location": pki.ca_file},
        "SASL_SSL": {"bootstrap.servers": f"127.0.0.1:{sasl}", "security.protocol": "SASL_SSL",
                     "ssl.ca.location": pki.ca_file, "sasl.mechanism": "PLAIN", "sasl.username": "admin",
                     "sasl.password": ADMIN_PASSWORD},
    }
    with EmbeddedBroker(tmp / "node", port=plain, overrides=overrides):
        admin = AdminClient(confs["PLAINTEXT"])
        for future in admin.create_topics([NewTopic(f"bench-{p}", 1, 1) for p in confs]).values():
            future.result(30)
        rows = {}
        for protocol, conf in confs.items():
            topic = f"bench-{protocol}"
            rows[protocol] = (produce(conf, topic, args.messages, args.size), consume(conf, topic, args.messages),
                              latency_ms(conf, topic, args.latency_samples))
    base = rows["PLAINTEXT"]
    print(f"{args.messages} messages of {args.size} B, one partition, acks=1; latency: median produce round trip")
    print(f"{'protocol':<10} {'produce msg/s':>14} {'ratio':>6} {'consume msg/s':>14} {'ratio':>6} "
          f"{'latency ms':>11} {'ratio':>6}")
    for protocol, (p, c, lat) in rows.items():
        print(f"{protocol:<10} {p:>14,.0f} {p / base[0]:>6.2f} {c:>14,.0f} {c / base[1]:>6.2f} "
              f"{lat:>11.2f} {lat / base[2]:>6.2f}")


if __name__ == "__main__":
    main()
