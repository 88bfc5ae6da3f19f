"""The admin endpoint of `make run`'s node (issue 15): real clients produce, consume and commit,
then `/metrics` (parsed by prometheus-client's own parsers, Prometheus text and OpenMetrics)
must show exactly what they did; health and JSON views answer; https/auth are refused at start."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import confluent_kafka
import pytest
from confluent_kafka.admin import AdminClient
from prometheus_client.parser import text_string_to_metric_families

from suoi.testing import EmbeddedBroker
from suoi.testing.embedded import free_port
from tests.conftest import wait_until
from tests.e2e.admin_scrape import get, get_json, scrape, value
from tests.e2e.cli import fails, ok, ok_json
from tests.e2e.helpers import ck_consume, ck_produce, create_topic
from tests.e2e.test_single_node_kraft import make_run_properties
from tests.rawclient import RawClient

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "suoi-dashboard.json"

#: records produced to each partition of a topic, by partition
COUNTS = {0: 10, 1: 7, 2: 5}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmbeddedBroker, str]]:
    port, cport, admin = free_port(), free_port(), free_port()
    props = {**make_run_properties(port, cport), "admin.listeners": f"http://127.0.0.1:{admin}"}
    with EmbeddedBroker(tmp_path_factory.mktemp("admin"), port=port, overrides=props) as broker:
        base = f"http://127.0.0.1:{admin}"
        wait_until(lambda: get(f"{base}/v1/status/ready")[0] == 200, timeout=20, message="node ready")
        yield broker, base


def produce_counts(bootstrap: str, topic: str) -> None:
    create_topic(bootstrap, topic, partitions=len(COUNTS))
    records = [{"value": f"{topic}-{p}-{i}".encode() * 3, "key": b"k", "partition": p}
               for p, n in COUNTS.items() for i in range(n)]
    ck_produce(bootstrap, topic, records)


def test_messages_and_bytes_in_and_out_match_what_clients_did(node: tuple[EmbeddedBroker, str]) -> None:
    broker, base = node
    produce_counts(broker.bootstrap, "metered")
    s = scrape(base)
    assert value(s, "kafka_server_brokertopicmetrics_messagesin_total", topic="metered") == sum(COUNTS.values())
    for p, n in COUNTS.items():
        assert value(s, "kafka_log_log_logendoffset", topic="metered", partition=str(p)) == n
    log_bytes = sum(value(s, "kafka_log_log_size", topic="metered", partition=str(p)) or 0 for p in COUNTS)
    # batches are stored as received: the bytes in are exactly the log's bytes
    assert value(s, "kafka_server_brokertopicmetrics_bytesin_total", topic="metered") == log_bytes > 0
    assert value(s, "kafka_server_brokertopicmetrics_failedproducerequests_total", topic="metered") == 0
    for meter in ("messagesin", "bytesin", "bytesout"):  # the all-topics series is the sum of the topics'
        name = f"kafka_server_brokertopicmetrics_{meter}_total"
        per_topic = sum(v for (n, labels), v in s.items() if n == name and labels)
        assert value(s, name) == per_topic

    assert len(ck_consume(broker.bootstrap, "metered", list(COUNTS), sum(COUNTS.values()))) == sum(COUNTS.values())
    s = scrape(base)
    assert value(s, "kafka_server_brokertopicmetrics_bytesout_total", topic="metered") >= log_bytes
    produce = value(s, "kafka_network_requestmetrics_requests_total", request="Produce")
    assert produce is not None and produce >= 1
    assert value(s, "kafka_network_requestmetrics_totaltimems_count", request="Produce") == produce
    assert value(s, "kafka_network_requestmetrics_totaltimems_bucket", request="Produce", le="+Inf") == produce
    assert (value(s, "kafka_network_requestmetrics_requests_total", request="Fetch") or 0) >= 1

    om = scrape(base, openmetrics=True)  # content negotiation: the same figures in OpenMetrics
    assert value(om, "kafka_server_brokertopicmetrics_messagesin_total", topic="metered") == sum(COUNTS.values())


def test_consumer_group_lag_is_high_watermark_minus_committed(node: tuple[EmbeddedBroker, str]) -> None:
    broker, base = node
    produce_counts(broker.bootstrap, "lagged")
    committed = {0: 4, 1: 7, 2: 0}
    consumer = confluent_kafka.Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "lagging",
                                         "enable.auto.commit": False})
    try:
        consumer.commit(offsets=[confluent_kafka.TopicPartition("lagged", p, o) for p, o in committed.items()],
                        asynchronous=False)
    finally:
        consumer.close()
    s = scrape(base)
    for p, n in COUNTS.items():
        labels = {"consumergroup": "lagging", "topic": "lagged", "partition": str(p)}
        assert value(s, "kafka_consumergroup_lag", **labels) == n - committed[p]
        assert value(s, "kafka_consumergroup_current_offset", **labels) == committed[p]
    assert value(s, "kafka_consumergroup_lag_sum", consumergroup="lagging", topic="lagged") == 6 + 0 + 5
    assert value(s, "kafka_consumergroup_lag_max", consumergroup="lagging") == 6
    assert value(s, "kafka_consumergroup_members", consumergroup="lagging") == 0
    assert value(s, "kafka_consumergroup_state", consumergroup="lagging", state="Empty") == 1
    status, body = get_json(f"{base}/v1/groups")
    group = next(g for g in body["groups"] if g["group"] == "lagging")
    assert status == 200 and group["lag_sum"] == 11
    assert [(x["partition"], x["lag"]) for x in group["partitions"]] == [(0, 6), (1, 0), (2, 5)]

    table = ok_json("metrics", "--node", base)  # `suoi metrics`: the same figures without Prometheus
    assert {"group": "lagging", "topic": "lagged", "lag": 11} in table["consumer_groups"]
    assert table["nodes"][0]["ready"] == 1 and table["nodes"][0]["under-replicated"] == 0
    lines = ok("metrics", "--node", base).splitlines()
    assert lines[0].split("\t")[:3] == ["NODE" + " " * (len(base) - 4), "READY", "PARTITIONS"]
    assert any(line.split() == ["lagging", "lagged", "11"] for line in lines)


def test_replica_controller_and_raft_gauges_of_a_one_node_cluster(node: tuple[EmbeddedBroker, str]) -> None:
    broker, base = node
    create_topic(broker.bootstrap, "gauged", partitions=4)
    # CreateTopics answers once the metadata lists the topic; the node creates its local replicas in
    # its next reconcile round (another task), which the replica gauges count; the loop-lag probe
    # runs every 0.25 s (this test may be the first on a fresh node): both waited for, not assumed.
    wait_until(lambda: (s := scrape(base)) and value(s, "kafka_server_replicamanager_partitioncount") ==
               value(s, "kafka_controller_kafkacontroller_globalpartitioncount") and
               (value(s, "suoi_eventloop_lag_seconds_count") or 0) >= 1, timeout=10,
               message="the node hosting every partition of the cluster, and one loop-lag probe")
    with RawClient(broker.bootstrap):  # one client connection open while scraping
        s = scrape(base)
        assert (value(s, "kafka_network_socketserver_connections", listener="PLAINTEXT") or 0) >= 1
    partitions = value(s, "kafka_controller_kafkacontroller_globalpartitioncount")
    assert partitions is not None and partitions >= 4
    assert value(s, "kafka_server_replicamanager_partitioncount") == partitions  # one node hosts everything
    assert value(s, "kafka_server_replicamanager_leadercount") == partitions
    assert value(s, "kafka_server_replicamanager_underreplicatedpartitions") == 0
    assert value(s, "kafka_server_replicamanager_underminisrpartitioncount") == 0
    assert value(s, "kafka_controller_kafkacontroller_activecontrollercount") == 1
    assert value(s, "kafka_controller_kafkacontroller_offlinepartitionscount") == 0
    assert value(s, "kafka_controller_kafkacontroller_fencedbrokercount") == 0
    assert value(s, "kafka_controller_kafkacontroller_activebrokercount") == 1
    assert value(s, "kafka_server_raft_metrics_current_leader") == 1
    assert value(s, "kafka_server_raft_metrics_current_state", state="leader") == 1
    assert (value(s, "kafka_server_raft_metrics_high_watermark") or 0) > 0
    assert (value(s, "kafka_server_raft_metrics_leader_changes_total") or 0) >= 1  # it elected itself
    commits = value(s, "kafka_server_raft_metrics_commit_latency_ms_count") or 0
    assert commits >= 1  # the topic creation above, at least
    assert 0 < (value(s, "kafka_server_raft_metrics_commit_latency_ms_sum") or 0) <= commits * \
        (value(s, "kafka_server_raft_metrics_commit_latency_max_ms") or 0)
    assert value(s, "suoi_node_ready") == 1
    assert (value(s, "process_resident_memory_bytes") or 0) > 10_000_000
    assert (value(s, "suoi_eventloop_lag_seconds_count") or 0) >= 1
    status, body = get_json(f"{base}/v1/partitions")
    assert status == 200 and sorted(p["partition"] for p in body["partitions"] if p["topic"] == "gauged") == [0, 1, 2, 3]
    status, body = get_json(f"{base}/v1/cluster")
    assert status == 200 and body["is_active_controller"] and body["partitions"] == partitions
    status, body = get_json(f"{base}/v1/node")
    assert status == 200 and body["node_id"] == 1 and body["mode"] == "kraft" and body["ready"] is True


def test_every_metric_the_grafana_dashboard_queries_is_scraped(node: tuple[EmbeddedBroker, str]) -> None:
    _, base = node
    exprs = [t["expr"] for panel in json.loads(DASHBOARD.read_text())["panels"] for t in panel["targets"]]
    queried = {name for expr in exprs for name in re.findall(r"\b(?:kafka|suoi|process)_[a-z_]+\b", expr)}
    assert len(queried) >= 30
    status, _, body = get(f"{base}/metrics")
    families = list(text_string_to_metric_families(body))
    scraped = {f.name for f in families} | {s.name for f in families for s in f.samples}
    assert status == 200 and sorted(queried - scraped) == []


def test_a_malformed_http_request_gets_400_and_one_log_line(node: tuple[EmbeddedBroker, str]) -> None:
    broker, base = node
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.0 400 Bad Request")
    assert get(f"{base}/v1/status/live")[0] == 200  # the endpoint (and the node) go on
    lines = wait_until(lambda: [ln for ln in broker.logs().splitlines() if "bad HTTP request" in ln], timeout=5,
                       message="the bad request logged")
    assert len(lines) == 1 and " WARNING " in lines[0] and "Traceback" not in broker.logs()


def test_health_endpoints(node: tuple[EmbeddedBroker, str]) -> None:
    _, base = node
    assert get_json(f"{base}/v1/status/ready") == (200, {"ready": True, "reason": "serving"})
    status, body = get_json(f"{base}/v1/status/live")
    assert status == 200 and body["live"] is True
    assert get(f"{base}/no/such/page")[0] == 404


@pytest.mark.parametrize("setting, words", [
    ("admin.listeners=https://127.0.0.1:0", "TLS on the admin endpoint is not supported"),
    ("admin.auth.type=basic", "authentication on the admin endpoint is not supported"),
])
def test_unimplemented_admin_security_is_refused_at_start(tmp_path: pytest.TempPathFactory, setting: str,
                                                          words: str) -> None:
    line = fails("broker", "--log-dirs", str(tmp_path), "--listeners", f"PLAINTEXT://127.0.0.1:{free_port()}",
                 "-o", setting, timeout=30)
    assert words in line and "refusing to start" in line


def test_suoi_metrics_against_a_node_that_does_not_answer() -> None:
    line = fails("metrics", "--node", f"http://127.0.0.1:{free_port()}", "--timeout", "2")
    assert line.startswith("suoi metrics: error:") and "refused" in line.lower(), line


def test_a_single_node_caps_per_partition_log_metrics(tmp_path: Path) -> None:
    """A node without process.roles (its own one-voter quorum) reports the controller and Raft
    families too; above admin.metrics.log.partitions.max partitions the kafka_log_log_* series
    are left out."""
    admin = free_port()
    with EmbeddedBroker(tmp_path, overrides={"admin.listeners": f"http://127.0.0.1:{admin}",
                                             "admin.metrics.log.partitions.max": "2"}) as broker:
        base = f"http://127.0.0.1:{admin}"
        wait_until(lambda: get(f"{base}/v1/status/ready")[0] == 200, timeout=20, message="single node ready")
        create_topic(broker.bootstrap, "capped", partitions=3)
        s = scrape(base)
        assert value(s, "kafka_server_replicamanager_partitioncount") == 3
        assert value(s, "kafka_server_replicamanager_leadercount") == 3
        assert value(s, "suoi_log_partition_metrics_omitted") == 1
        assert not [name for name, _ in s if name.startswith("kafka_log_log_")]
        assert value(s, "kafka_controller_kafkacontroller_activecontrollercount") == 1
        status, cluster = get_json(f"{base}/v1/cluster")
        assert (status, cluster["mode"]) == (200, "kraft")

        # a deleted topic's series go (as Kafka removes its metrics); the all-topics sums stay
        ck_produce(broker.bootstrap, "doomed", [{"value": b"x" * 10, "partition": 0}] * 4)
        assert value(scrape(base), "kafka_server_brokertopicmetrics_messagesin_total", topic="doomed") == 4
        admin_client = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin_client.delete_topics(["doomed"], operation_timeout=10)["doomed"].result(timeout=15)
        s = wait_until(lambda: (s := scrape(base)) and value(s, "kafka_server_brokertopicmetrics_messagesin_total",
                                                              topic="doomed") is None and s,
                       timeout=10, message="the deleted topic's series gone")
        assert value(s, "kafka_server_brokertopicmetrics_messagesin_total") == 4
