"""The web console (issue 17) in headless Chromium (Playwright, Debian's chromium), against a
real 3-node KRaft cluster whose node 1 serves the console (`console.listeners`), and against
`suoi console` run standalone. Every change is made with real Kafka clients while the page is
open, and must show without a reload. Screenshots land in the test's temp dir."""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import fastavro
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from suoi.testing.embedded import EmbeddedBroker, free_port
from tests.conftest import wait_until
from tests.e2e.console_browser import CHROMIUM, UI_TIMEOUT_MS, browser, page, submit, text, wait_text
from tests.integration.kraft_cluster import KRaftCluster

__all__ = ["browser", "page"]  # fixtures

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="run `make tools` to install chromium")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KRaftCluster, str]]:
    c = KRaftCluster(tmp_path_factory.mktemp("console-cluster"), 3,
                     overrides={"group.initial.rebalance.delay.ms": "0", "offsets.topic.num.partitions": "3"})
    port = free_port()
    c.nodes[1].overrides["console.listeners"] = f"http://127.0.0.1:{port}"
    c.start()
    try:
        yield c, f"http://127.0.0.1:{port}"
    finally:
        c.stop()


def create_topic(bootstrap: str, name: str, partitions: int, rf: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive until the answer comes
    admin.create_topics([NewTopic(name, partitions, rf)])[name].result(15)


def leaders(bootstrap: str, topic: str) -> dict[int, int]:
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=10)
    return {p.id: p.leader for p in md.topics[topic].partitions.values()}


def produce(bootstrap: str, topic: str, partition: int, n: int, start: int = 0) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i in range(start, start + n):
        p.produce(topic, key=f"k{i}".encode(), value=json.dumps({"n": i}).encode(), partition=partition,
                  headers=[("trace", f"t{i}".encode())])
    assert p.flush(15) == 0


def test_cluster_page_shows_brokers_and_the_quorum_leader(cluster: tuple[KRaftCluster, str], page: Any) -> None:
    from suoi.cli.metadata_quorum import describe_quorum

    c, url = cluster
    target = argparse.Namespace(bootstrap_server=c.bootstrap, command_config=None)
    with ThreadPoolExecutor(1) as pool:  # its own event loop: Playwright's runs in this thread
        quorum = pool.submit(describe_quorum, target).result(15)
    page.goto(url + "/#/")
    wait_text(page, "brokers-alive", "3 / 3")
    for node_id in (1, 2, 3):
        assert text(page, f"broker-state-{node_id}") == "alive"
    wait_text(page, "controller", str(quorum["leader_id"]))
    assert f"Leader {quorum['leader_id']}," in text(page, "quorum-leader")
    assert text(page, "health-offline") == "0"
    with urllib.request.urlopen(url + "/api/events", timeout=10) as events:  # the same feed for scripts (SSE)
        first = events.readline().decode()
    assert first.startswith("data: ") and json.loads(first[6:])["quorum"]["leader_id"] == quorum["leader_id"]


def test_topic_page_draws_leaders_and_moves_the_high_watermark_live(cluster: tuple[KRaftCluster, str],
                                                                      page: Any, tmp_path: Path) -> None:
    c, url = cluster
    create_topic(c.bootstrap, "orders", 3, 3)
    page.goto(url + "/#/topics")
    page.get_by_test_id("topic-row-orders").wait_for()
    page.goto(url + "/#/topics/orders")
    for p, leader in leaders(c.bootstrap, "orders").items():
        wait_text(page, f"leader-{p}", str(leader))
        wait_text(page, f"hw-{p}", "0")  # "–" until the new leader answers ListOffsets
        assert sorted(text(page, f"isr-{p}").split(", ")) == ["1", "2", "3"]
    produce(c.bootstrap, "orders", 0, 10)
    wait_text(page, "hw-0", "10")  # pushed by the server: no reload
    assert text(page, "log-start-0") == "0"
    assert text(page, "hw-1") == "0"
    wait_text(page, "topic-messages", "10")
    assert page.get_by_test_id("bar-0").count() == 1
    page.screenshot(path=str(tmp_path / "topic.png"), full_page=True)
    # a topic created while the list is open appears in it; records produced show as a rate in
    page.goto(url + "/#/topics")
    produce(c.bootstrap, "orders", 1, 5)
    page.wait_for_function("parseFloat(document.querySelector('[data-testid=\"in-rate-orders\"]').innerText) > 0",
                           timeout=UI_TIMEOUT_MS)
    create_topic(c.bootstrap, "late-topic", 1, 1)
    page.get_by_test_id("topic-row-late-topic").wait_for()


def test_group_lag_and_an_idle_extra_consumer(cluster: tuple[KRaftCluster, str], page: Any, tmp_path: Path) -> None:
    c, url = cluster
    create_topic(c.bootstrap, "work", 2, 3)
    produce(c.bootstrap, "work", 0, 10)
    produce(c.bootstrap, "work", 1, 4)
    # a group that committed offset 4 on partition 0 and 1 on partition 1: lag 6 + 3
    lagging = Consumer({"bootstrap.servers": c.bootstrap, "group.id": "auditors", "enable.auto.commit": False})
    lagging.commit(offsets=[TopicPartition("work", 0, 4), TopicPartition("work", 1, 1)], asynchronous=False)
    lagging.close()
    page.goto(url + "/#/groups/auditors")
    wait_text(page, "lag-work-0", "6")
    assert text(page, "lag-work-1") == "3"
    wait_text(page, "lag-total", "9")
    produce(c.bootstrap, "work", 1, 2, start=4)
    wait_text(page, "lag-total", "11")  # new records raise the lag live
    page.goto(url + "/#/topics/work")
    page.get_by_test_id("bar-0").wait_for()
    page.screenshot(path=str(tmp_path / "topic-with-group.png"), full_page=True)

    # three members for two partitions: one of them is idle (the seed's §4 picture)
    stop = threading.Event()
    consumers = [Consumer({"bootstrap.servers": c.bootstrap, "group.id": "workers", "client.id": f"worker-{i}",
                           "session.timeout.ms": 6000, "heartbeat.interval.ms": 500}) for i in range(3)]

    def run(consumer: Consumer) -> None:
        consumer.subscribe(["work"])
        while not stop.is_set():
            consumer.poll(0.1)

    threads = [threading.Thread(target=run, args=(x,), daemon=True) for x in consumers]
    try:
        page.goto(url + "/#/groups/workers")
        for t in threads:
            t.start()
        wait_text(page, "group-members", "3")
        wait_text(page, "group-state", "Stable")
        page.wait_for_function("document.querySelectorAll('[data-testid=member][data-idle=true]').length === 1"
                               " && document.querySelectorAll('[data-testid=member][data-idle=false]').length === 2",
                               timeout=UI_TIMEOUT_MS)
        assert "(idle)" in page.get_by_test_id("assignment").inner_html()
        # the timeline, newest first, ends (so far) with three members of whom one is idle
        latest = page.get_by_test_id("timeline-row").first.inner_text().split("\t")
        assert latest[1:4] == ["Stable", "3", "1"], latest
    finally:
        stop.set()
        for t in threads:
            t.join(10)
        for x in consumers:
            x.close()


def test_message_browser_shows_a_record_with_its_headers(cluster: tuple[KRaftCluster, str], page: Any) -> None:
    c, url = cluster
    create_topic(c.bootstrap, "browse", 1, 1)
    produce(c.bootstrap, "browse", 0, 5)
    page.goto(url + "/#/messages/browse/0?offset=2")
    page.get_by_test_id("record-2").wait_for()
    assert page.get_by_test_id("record-1").count() == 0
    assert page.get_by_test_id("record-4").count() == 1
    assert json.loads(text(page, "value-3")) == {"n": 3}
    assert text(page, "headers-3") == "trace: t3"
    # newest-first view follows the partition as records arrive
    page.goto(url + "/#/messages/browse/0")
    page.get_by_test_id("record-4").wait_for()
    produce(c.bootstrap, "browse", 0, 1, start=5)
    page.get_by_test_id("record-5").wait_for()
    shown = [page.locator("[data-testid^=record-]").nth(i).get_attribute("data-testid") for i in range(6)]
    assert shown == [f"record-{n}" for n in (5, 4, 3, 2, 1, 0)]  # newest first


def test_acl_page_of_a_cluster_without_an_authorizer_says_so(cluster: tuple[KRaftCluster, str], page: Any) -> None:
    """DescribeAcls answers SECURITY_DISABLED: a clear message, not an empty list (which would read
    as "nothing allowed"), and no form to add a binding."""
    _, url = cluster
    page.goto(url + "/#/acls")
    page.get_by_test_id("acl-disabled").wait_for()
    assert text(page, "acl-disabled").startswith("This cluster has no authorizer (authorizer.class.name is not set)")
    assert page.get_by_test_id("acl-row").count() == 0
    page.wait_for_function("document.getElementById('actions').hidden", timeout=UI_TIMEOUT_MS)


def test_unknown_topic_and_group_give_a_not_found_page(cluster: tuple[KRaftCluster, str], page: Any) -> None:
    _, url = cluster
    page.goto(url + "/#/topics/no-such-topic")
    assert "no-such-topic" in text(page, "not-found")
    page.goto(url + "/#/groups/no-such-group")
    assert "no-such-group" in text(page, "not-found")
    for path, kind in (("/topics/x", "text/html"), ("/api/topics/no-such-topic/configs", "application/json")):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(url + path, timeout=10)
        assert err.value.code == 404 and err.value.headers.get_content_type() == kind
    # a form another site's page could post (no CORS preflight) is refused: writes take JSON only
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(urllib.request.Request(url + "/api/topics", data=b"name=evil"), timeout=10)
    assert err.value.code == 415
    with pytest.raises(urllib.error.HTTPError) as err:  # nor may another site's page read the live feed
        urllib.request.urlopen(urllib.request.Request(url + "/api/live", headers={"Origin": "http://evil.example"}),
                               timeout=10)
    assert err.value.code == 403
    assert "evil" not in {t["name"] for t in json.loads(urllib.request.urlopen(url + "/api/snapshot").read())["topics"]}


ORDER_SCHEMA = {"type": "record", "name": "Order", "fields": [{"name": "id", "type": "int"},
                                                              {"name": "item", "type": "string"}]}


def register_schema(registry: str, subject: str, schema: str, schema_type: str = "AVRO") -> int:
    """Register `schema` under `subject` in a Confluent-compatible registry (suoi's own here); its id."""
    body = json.dumps({"schema": schema, **({} if schema_type == "AVRO" else {"schemaType": schema_type})}).encode()
    post = urllib.request.Request(f"{registry}/subjects/{subject}/versions", data=body,
                                  headers={"Content-Type": "application/vnd.schemaregistry.v1+json"})
    with urllib.request.urlopen(post, timeout=30) as r:  # the registry answers once its first replay is done
        return int(json.loads(r.read())["id"])


def test_suoi_console_standalone_banner_read_only_and_avro(tmp_path: Path, page: Any) -> None:
    """`suoi console` before its cluster exists: a banner, which clears when the cluster comes;
    --read-only refuses writes; --schema-registry (the node's own, schema.registry.listeners)
    decodes an Avro value in the browser."""
    port, http_port, registry_port = free_port(), free_port(), free_port()
    registry = f"http://127.0.0.1:{registry_port}"  # the node's own schema registry, once the node runs
    proc = subprocess.Popen([sys.executable, "-m", "suoi", "console", "--bootstrap-server", f"127.0.0.1:{port}",
                             "--listen", f"127.0.0.1:{http_port}", "--interval", "0.3", "--read-only",
                             "--schema-registry", registry], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == f"suoi console on http://127.0.0.1:{http_port}/ (Ctrl-C to stop)"
        page.goto(f"http://127.0.0.1:{http_port}/#/topics")
        page.wait_for_function("document.getElementById('banner').innerText.includes('unreachable')",
                               timeout=UI_TIMEOUT_MS)
        with EmbeddedBroker(tmp_path / "late", port=port,
                            overrides={"schema.registry.listeners": registry}) as broker:
            create_topic(broker.bootstrap, "arrived", 1, 1)
            page.get_by_test_id("topic-row-arrived").wait_for()
            page.wait_for_function("document.getElementById('banner').hidden", timeout=UI_TIMEOUT_MS)
            assert page.locator("#create-topic").count() == 0  # --read-only: no forms, and writes refused
            post = urllib.request.Request(f"http://127.0.0.1:{http_port}/api/topics", data=b'{"name": "x"}',
                                          headers={"Content-Type": "application/json"})
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(post, timeout=10)
            assert err.value.code == 403

            schema_id = register_schema(registry, "arrived-value", json.dumps(ORDER_SCHEMA))
            value = io.BytesIO()
            value.write(b"\x00" + schema_id.to_bytes(4, "big"))  # the registry's wire format: magic, schema id
            fastavro.schemaless_writer(value, fastavro.parse_schema(ORDER_SCHEMA), {"id": 42, "item": "tea"})
            producer = Producer({"bootstrap.servers": broker.bootstrap})
            producer.produce("arrived", value=value.getvalue(), partition=0)
            assert producer.flush(15) == 0
            page.goto(f"http://127.0.0.1:{http_port}/#/messages/arrived/0?offset=0")
            page.get_by_test_id("record-0").wait_for()
            decoded = page.get_by_test_id("value-0").locator("pre").inner_text()
            assert json.loads(decoded) == {"id": 42, "item": "tea"}
            assert text(page, "schema") == f"avro, schema id {schema_id}"
        page.goto("about:blank")  # leave before the server goes: a cut event stream is a console error
    finally:
        proc.terminate()
        assert proc.wait(10) == 0


def test_seven_open_tabs_share_one_poll_loop(cluster: tuple[KRaftCluster, str], browser: Any) -> None:
    """More tabs than a browser's 6 HTTP/1.1 connections per host: every one is live (WebSocket),
    a topic page still loads its configs, and the cluster sees one poll loop, not seven."""
    _, url = cluster
    context = browser.new_context()
    try:
        tabs = [context.new_page() for _ in range(7)]
        for i, tab in enumerate(tabs):
            tab.goto(url + ("/#/", "/#/map", "/#/topics", "/#/groups", "/#/transactions", "/#/", "/#/topics/orders")[i])
        stats = lambda: json.loads(urllib.request.urlopen(url + "/api/stats", timeout=10).read())  # noqa: E731
        wait_until(lambda: stats()["listeners"] == 7, timeout=10, message="7 pages listening")
        tabs[-1].get_by_test_id("config-retention.ms").wait_for()
        before, started = stats(), time.monotonic()
        wait_until(lambda: stats()["polls"] >= before["polls"] + 2, timeout=10, message="2 more polls")
        after, elapsed = stats(), time.monotonic() - started
        polls = after["polls"] - before["polls"]
        rate = (after["requests"] - before["requests"]) / elapsed
        print(f"console with 7 tabs: {polls} polls in {elapsed:.1f}s, {rate:.1f} Kafka requests/s")
        assert polls <= elapsed / after["interval_s"] + 2  # one loop for all tabs, not one per tab
    finally:
        context.close()


def test_writes_from_the_page_ask_first_and_apply(cluster: tuple[KRaftCluster, str], page: Any) -> None:
    c, url = cluster
    asked: list[str] = []

    def accept(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    page.goto(url + "/#/topics")
    submit(page, "create-topic", name="made-in-ui", partitions="2", replication_factor="2")  # one node may be dead
    page.get_by_test_id("topic-row-made-in-ui").wait_for()
    assert asked == ["Create topic made-in-ui?"]
    assert sorted(leaders(c.bootstrap, "made-in-ui")) == [0, 1]

    page.goto(url + "/#/messages/made-in-ui/0")
    submit(page, "produce", key="k1", value='{"from": "ui"}', headers="src=console")
    wait_text(page, "produce-status", "written at offset 0")
    page.get_by_test_id("record-0").wait_for()
    assert json.loads(text(page, "value-0")) == {"from": "ui"} and text(page, "headers-0") == "src: console"

    # reset offsets: a dry run commits nothing, execute commits the plan
    committer = Consumer({"bootstrap.servers": c.bootstrap, "group.id": "resetters", "enable.auto.commit": False})
    committer.commit(offsets=[TopicPartition("made-in-ui", 0, 1)], asynchronous=False)
    page.goto(url + "/#/groups/resetters")
    wait_text(page, "lag-made-in-ui-0", "0")
    form = page.locator("#reset-offsets")
    form.locator("select[name=topic]").select_option("made-in-ui")
    form.locator("select[name=to]").select_option("earliest")
    form.locator("button", has_text="Dry run").click()
    wait_text(page, "reset-offsets-status", "dry run: nothing committed")
    assert text(page, "plan-0") == "0"
    assert committer.committed([TopicPartition("made-in-ui", 0)], timeout=10)[0].offset == 1
    form.locator("button", has_text="Execute").click()
    wait_text(page, "reset-offsets-status", "committed")
    assert committer.committed([TopicPartition("made-in-ui", 0)], timeout=10)[0].offset == 0
    wait_text(page, "lag-made-in-ui-0", "1")
    committer.close()

    page.goto(url + "/#/topics/made-in-ui")
    submit(page, "set-config", name="retention.ms", value="3600000")
    wait_text(page, "config-retention.ms", "3600000")
    submit(page, "add-partitions", count="3")
    page.get_by_test_id("partition-2").wait_for()
    page.locator("#delete-topic button").click()
    page.get_by_test_id("not-found").wait_for()  # the page it stood on is gone
    assert asked[-1] == "Delete topic made-in-ui and all its records?" and len(asked) == 6


def test_transactions_page_shows_an_open_then_committed_transaction(cluster: tuple[KRaftCluster, str],
                                                                     page: Any) -> None:
    c, url = cluster
    create_topic(c.bootstrap, "payments", 1, 2)
    producer = Producer({"bootstrap.servers": c.bootstrap, "transactional.id": "pay-1", "acks": "all"})
    producer.init_transactions(15)
    producer.begin_transaction()
    producer.produce("payments", value=b"open", partition=0)
    assert producer.flush(15) == 0
    page.goto(url + "/#/transactions")
    wait_text(page, "txn-state-pay-1", "Ongoing")
    assert "payments-0" in text(page, "txn-pay-1")
    wait_text(page, "txn-open-payments-0", "0")  # DescribeProducers: the open transaction's first offset
    producer.commit_transaction(15)
    wait_text(page, "txn-state-pay-1", "CompleteCommit")
    wait_text(page, "txn-open-payments-0", "–")


def test_a_killed_leader_moves_leadership_on_the_map(cluster: tuple[KRaftCluster, str], page: Any) -> None:
    """Last of the module: it leaves one node of the cluster dead."""
    c, url = cluster
    create_topic(c.bootstrap, "failover", 3, 3)
    before = leaders(c.bootstrap, "failover")
    victim = next(p for p, leader in before.items() if leader != 1)  # node 1 serves the console
    dead = before[victim]
    page.goto(url + "/#/map")
    page.get_by_test_id(f"replica-failover-{victim}-{dead}").wait_for()
    assert page.get_by_test_id(f"replica-failover-{victim}-{dead}").get_attribute("data-role") == "L"
    c.nodes[dead].kill()
    page.wait_for_function(
        "([v, d]) => { const r = document.querySelector(`[data-testid=\"replica-failover-${v}-${d}\"]`);"
        " return r && r.dataset.role === 'F' && r.dataset.inIsr === 'false'; }", arg=[victim, dead],
        timeout=UI_TIMEOUT_MS)
    new_leader = wait_until(lambda: leaders(f"127.0.0.1:{c.nodes[1].port}", "failover")[victim] not in (dead, -1),
                            timeout=10, message="a new leader")
    assert new_leader
    assert page.get_by_test_id(f"broker-box-{dead}").get_attribute("class") == "broker dead"
    led = leaders(f"127.0.0.1:{c.nodes[1].port}", "failover")[victim]
    assert page.get_by_test_id(f"replica-failover-{victim}-{led}").get_attribute("data-role") == "L"
