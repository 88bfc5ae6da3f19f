"""/metrics of a real node (in this process: its families are compared too), scraped over HTTP with
aiohttp as Prometheus scrapes it, after real clients' traffic (issue 19: the text is kept per series
between scrapes and made on the event loop in slices). prometheus-client's parsers read it; it
carries what the traffic did, also after more traffic (lines rewritten, series added); concurrent
scrapes agree; it is byte-equal to prometheus-client's own encoding of the node's families; and it
is gzipped when the scraper accepts it (Prometheus does), the same text."""

from __future__ import annotations

import asyncio
import gzip
import urllib.request
from collections.abc import Iterator
from email.message import Message

import aiohttp
import confluent_kafka
import pytest
from confluent_kafka.admin import AdminClient
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric

from suoi.http.admin.exposition import Table
from suoi.http.admin.node_view import PartitionTable
from suoi.testing import InProcessNode
from suoi.testing.embedded import free_port
from tests.conftest import wait_until
from tests.e2e.admin_scrape import OPENMETRICS, Samples, parse_openmetrics, parse_prometheus, value
from tests.e2e.helpers import ck_consume, ck_produce

#: what Prometheus 2.x sends (it gets OpenMetrics); a plain GET gets the Prometheus text format
PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;"
                     "q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2")
TOPIC = "exposed"
#: a group id is any string: its label values need prometheus-client's escaping
GROUP = 'odd "group" \\ with\nnewline'


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[InProcessNode, str]]:
    admin = free_port()
    with InProcessNode(tmp_path_factory.mktemp("exposition"),
                       overrides={"admin.listeners": f"http://127.0.0.1:{admin}"}) as node:
        base = f"http://127.0.0.1:{admin}"
        wait_until(lambda: node.broker.admin is not None and node.broker.admin.addresses, timeout=20,
                   message="the admin endpoint loaded")
        yield node, base


async def _get(base: str, accepts: list[str]) -> list[tuple[int, str, str]]:
    async with aiohttp.ClientSession() as session:
        async def one(accept: str) -> tuple[int, str, str]:
            async with session.get(f"{base}/metrics", headers={"Accept": accept} if accept else {}) as r:
                return r.status, r.headers.get("Content-Type", ""), await r.text()
        return list(await asyncio.gather(*(one(accept) for accept in accepts)))


def scrape(base: str, *accepts: str) -> list[Samples]:
    """The samples of concurrent GETs (one per Accept), parsed by prometheus-client's parsers."""
    out = []
    for status, content_type, body in asyncio.run(_get(base, list(accepts))):
        assert status == 200, body
        openmetrics = content_type.startswith("application/openmetrics-text")
        assert openmetrics or content_type.startswith("text/plain"), content_type
        parse = parse_openmetrics if openmetrics else parse_prometheus
        out.append({(s.name, frozenset(s.labels.items())): s.value for family in parse(body) for s in family.samples})
    return out


def commit(bootstrap: str, offsets: dict[int, int]) -> None:
    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP, "enable.auto.commit": False})
    try:
        consumer.commit(offsets=[confluent_kafka.TopicPartition(TOPIC, p, o) for p, o in offsets.items()],
                        asynchronous=False)
    finally:
        consumer.close()


def produce(bootstrap: str, counts: dict[int, int]) -> None:
    ck_produce(bootstrap, TOPIC, [{"value": b"v" * 20, "partition": p} for p, n in counts.items() for _ in range(n)])


def test_scrapes_carry_the_traffic_and_follow_it(node: tuple[InProcessNode, str]) -> None:
    n, base = node
    n.create_topic(TOPIC, partitions=3)
    produce(n.bootstrap, {0: 6, 1: 3, 2: 1})
    commit(n.bootstrap, {0: 2, 1: 3})
    assert len(ck_consume(n.bootstrap, TOPIC, [0, 1, 2], 10)) == 10
    wait_until(lambda: value(scrape(base, "")[0], "kafka_log_log_logendoffset", topic=TOPIC, partition="2") == 1,
               timeout=10, message="the topic's partitions hosted and scraped")
    om, text, om_again = scrape(base, PROMETHEUS_ACCEPT, "", OPENMETRICS)  # three at once, sliced together
    for s in (om, text, om_again):
        assert value(s, "kafka_server_brokertopicmetrics_messagesin_total", topic=TOPIC) == 10
        assert [value(s, "kafka_log_log_logendoffset", topic=TOPIC, partition=str(p)) for p in range(3)] == [6, 3, 1]
        lag = {p: value(s, "kafka_consumergroup_lag", consumergroup=GROUP, topic=TOPIC, partition=str(p))
               for p in range(3)}
        assert lag == {0: 4, 1: 0, 2: None}  # partition 2: nothing committed
        assert value(s, "kafka_consumergroup_lag_sum", consumergroup=GROUP, topic=TOPIC) == 4
        assert value(s, "kafka_server_replicamanager_partitioncount") == \
            value(s, "kafka_controller_kafkacontroller_globalpartitioncount")
        produced = value(s, "kafka_network_requestmetrics_requests_total", request="Produce") or 0
        assert produced >= 1
        assert value(s, "kafka_network_requestmetrics_totaltimems_bucket", request="Produce", le="+Inf") == produced
        assert value(s, "kafka_network_requestmetrics_localtimems_count", request="Produce") == produced
        assert (value(s, "kafka_server_brokertopicmetrics_bytesout_total", topic=TOPIC) or 0) >= 10 * 20
    assert value(text, "kafka_server_brokertopicmetrics_messagesin_total") == \
        value(om, "kafka_server_brokertopicmetrics_messagesin_total")

    # more traffic: lines whose values changed are rewritten, new series appear, the rest is reused
    produce(n.bootstrap, {1: 2, 2: 4})
    commit(n.bootstrap, {2: 1})
    for s in scrape(base, PROMETHEUS_ACCEPT, ""):
        assert value(s, "kafka_server_brokertopicmetrics_messagesin_total", topic=TOPIC) == 16
        assert [value(s, "kafka_log_log_logendoffset", topic=TOPIC, partition=str(p)) for p in range(3)] == [6, 5, 5]
        lag = {p: value(s, "kafka_consumergroup_lag", consumergroup=GROUP, topic=TOPIC, partition=str(p))
               for p in range(3)}
        assert lag == {0: 4, 1: 2, 2: 4}
        assert value(s, "kafka_consumergroup_lag_max", consumergroup=GROUP) == 4


@pytest.fixture(scope="module")
def other_topic(node: tuple[InProcessNode, str]) -> str:
    n, _ = node
    n.create_topic("exposed-too", partitions=3)
    ck_produce(n.bootstrap, "exposed-too", [{"value": b"x", "partition": p} for p in range(3)])
    return "exposed-too"


@pytest.mark.parametrize("accept", ["", PROMETHEUS_ACCEPT, "text/plain;version=1.0.0;escaping=allow-utf-8"])
def test_the_text_is_prometheus_clients_own(node: tuple[InProcessNode, str], other_topic: str, accept: str) -> None:
    """The endpoint's families, encoded by the endpoint (twice: new text, then kept text) and by
    prometheus-client, in one step of the node's loop (nothing changes in between)."""
    n, _ = node
    admin = n.broker.admin
    encoder, _ = choose_encoder(accept)

    async def both() -> list[tuple[bytes, bytes]]:
        out = []
        for _ in range(2):
            families = [f for f in admin.families() if f is not None]
            metrics = [f.to_metric() if isinstance(f, Table) else f for f in families]
            out.append((admin.exposition.encode(families, encoder), encoder(_Registry(metrics))))
        return out

    ck_produce(n.bootstrap, other_topic, [{"value": b"y", "partition": 0}])  # a changed value since the last one
    wait_until(lambda: n.broker.logs.get_log(other_topic, 2) is not None, timeout=10, message="partitions hosted")
    for ours, theirs in n.run(both()):
        assert ours == theirs
        assert ours.count(f'\nkafka_log_log_size{{partition="2",topic="{other_topic}"}} '.encode()) == 1


class _Registry:
    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> list[Metric]:
        return self._metrics


def test_a_topic_deleted_while_a_scrape_reads_the_partitions(node: tuple[InProcessNode, str]) -> None:
    """The partitions are read a step at a time (the loop runs between): a topic deleted after
    the replica sets were taken is read as its logs were left, and the next scrape drops it."""
    n, base = node
    n.create_topic("doomed-mid", partitions=3)
    ck_produce(n.bootstrap, "doomed-mid", [{"value": b"z", "partition": p} for p in range(3)])
    wait_until(lambda: n.broker.logs.get_log("doomed-mid", 2) is not None, timeout=10, message="partitions hosted")
    reading = n.broker.admin.view.partition_table(-1, 1)  # one partition a step

    async def first_step() -> None:
        next(reading)

    async def the_rest() -> PartitionTable:
        try:
            while True:
                next(reading)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    n.run(first_step())  # the replica sets are taken
    admin = AdminClient({"bootstrap.servers": n.bootstrap})
    admin.delete_topics(["doomed-mid"], operation_timeout=10)["doomed-mid"].result(timeout=15)
    wait_until(lambda: n.broker.logs.get_log("doomed-mid", 0) is None, timeout=10, message="the logs deleted")
    table = n.run(the_rest())
    doomed = [i for i, (topic, _) in enumerate(table.labels) if topic == "doomed-mid"]
    assert [table.labels[i][1] for i in doomed] == ["0", "1", "2"]
    assert [table.log_end_offset[i] for i in doomed] == [1, 1, 1]
    assert table.partitions == len(table.labels)
    s = scrape(base, PROMETHEUS_ACCEPT)[0]
    assert value(s, "kafka_log_log_logendoffset", topic="doomed-mid", partition="0") is None
    assert value(s, "kafka_server_replicamanager_partitioncount") == table.partitions - 3


def _raw_get(base: str, headers: dict[str, str]) -> tuple[Message, bytes]:
    """The headers and the body's bytes as sent (urllib decodes no content encoding)."""
    with urllib.request.urlopen(urllib.request.Request(f"{base}/metrics", headers=headers), timeout=10) as r:
        return r.headers, r.read()


def _without_values(text: str) -> list[str]:
    """Every line, each sample's line without its value (what may change between two scrapes)."""
    return [line if line.startswith("#") else line.rsplit(" ", 1)[0] for line in text.split("\n")]


def test_gzip_when_the_scraper_accepts_it(node: tuple[InProcessNode, str], other_topic: str) -> None:
    """Prometheus sends `Accept-Encoding: gzip`: it gets the text gzipped (made in the scrape's
    slices), the same text a plain scrape gets but for the values that moved in between (process
    CPU, loop lag); a scraper that does not accept gzip gets the text as is."""
    _, base = node
    zipped_headers, zipped = _raw_get(base, {"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"})
    plain_headers, plain = _raw_get(base, {"Accept": PROMETHEUS_ACCEPT})
    refused_headers, refused = _raw_get(base, {"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip;q=0, deflate"})
    assert zipped_headers["Content-Encoding"] == "gzip"
    assert int(zipped_headers["Content-Length"]) == len(zipped)
    for headers in (plain_headers, refused_headers):
        assert headers["Content-Encoding"] is None
    for headers in (zipped_headers, plain_headers, refused_headers):
        assert headers["Content-Type"].startswith("application/openmetrics-text"), headers["Content-Type"]
        assert "Accept-Encoding" in [v.strip() for v in headers["Vary"].split(",")]
    text = gzip.decompress(zipped).decode()
    assert len(zipped) * 4 < len(text)
    assert _without_values(text) == _without_values(plain.decode()) == _without_values(refused.decode())
    stable = [{(s.name, frozenset(s.labels.items())): s.value for f in parse_openmetrics(body) for s in f.samples
               if s.name.startswith(("kafka_log_", "kafka_server_brokertopicmetrics_"))}
              for body in (text, plain.decode())]
    assert stable[0] == stable[1]
    assert value(stable[0], "kafka_log_log_logendoffset", topic=other_topic, partition="1") == 1
