"""What the web console costs: a topic page of 1,000 partitions in Debian's chromium, the time
of one poll of the cluster, and the Kafka requests/s it sends with 5 tabs open.

    python benchmarks/bench_console.py [--partitions 1000] [--seconds 5]

Starts one KRaft node on free loopback ports (data in a temp dir) with `console.listeners`,
creates a topic of --partitions partitions, and prints the figures. Needs the test extras
(playwright) and /usr/bin/chromium (`make tools`). A script, not a test.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from suoi.testing.embedded import EmbeddedBroker, free_port  # noqa: E402

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--partitions", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=5.0, help="how long to count requests with 5 tabs open")
    args = ap.parse_args()
    port, cport, http = free_port(), free_port(), free_port()
    url = f"http://127.0.0.1:{http}"
    props = {"process.roles": "broker,controller", "node.id": "1", "controller.listener.names": "CONTROLLER",
             "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
             "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}", "controller.quorum.voters": f"1@127.0.0.1:{cport}",
             "offsets.topic.replication.factor": "1", "console.listeners": url}
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(Path(tmp), port=port, overrides=props) as node:
        admin = AdminClient({"bootstrap.servers": node.bootstrap})
        admin.create_topics([NewTopic("wide", args.partitions, 1)])["wide"].result(60)
        stats = lambda: json.loads(urllib.request.urlopen(url + "/api/stats", timeout=30).read())  # noqa: E731
        deadline = time.monotonic() + 60
        while True:  # until every partition has a leader that answers ListOffsets
            snap = json.loads(urllib.request.urlopen(url + "/api/snapshot", timeout=30).read())
            wide = next((t for t in snap["topics"] if t["name"] == "wide"), None)
            if wide and all(p["high_watermark"] is not None for p in wide["partitions"]):
                break
            if time.monotonic() > deadline:
                raise SystemExit("the topic's partitions did not all get a leader within 60 s")
            time.sleep(0.5)
        polls = []
        for _ in range(5):  # each a fresh poll: the snapshot is at most `interval` old
            before = stats()["polls"]
            while (now := stats())["polls"] == before:
                urllib.request.urlopen(url + "/api/snapshot", timeout=30).read()
            polls.append(now["last_poll_ms"] / 1000)
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.goto(url + "/#/topics")
            page.wait_for_selector("[data-testid=topic-row-wide]", timeout=30_000)
            renders = []
            last_page, last = (args.partitions - 1) // 100, args.partitions - 1
            for hash_, bar in [("#/topics/wide", min(99, last)), (f"#/topics/wide?page={last_page}", last)] * 3:
                started = time.perf_counter()  # the topic page draws 100 partitions a page
                page.evaluate(f"location.hash = '{hash_}'")
                page.wait_for_selector(f"[data-testid=bar-{bar}]", timeout=30_000)
                renders.append(time.perf_counter() - started)
                page.evaluate("location.hash = '#/topics'")
                page.wait_for_selector("[data-testid=topic-row-wide]", timeout=30_000)
            tabs = [browser.new_page() for _ in range(5)]
            for tab, view in zip(tabs, ("/#/", "/#/map", "/#/topics", "/#/groups", "/#/topics/wide"), strict=True):
                tab.goto(url + view)
            page.close()
            time.sleep(2)  # let the tabs connect before counting
            before, started = stats(), time.perf_counter()
            time.sleep(args.seconds)
            after, elapsed = stats(), time.perf_counter() - started
            browser.close()
    print(f"topic page of a {args.partitions}-partition topic (first and last page) rendered in chromium: "
          f"best {min(renders) * 1000:.0f} ms, worst {max(renders) * 1000:.0f} ms")
    print(f"one poll of the cluster ({args.partitions + 50} partitions, 1 node): "
          f"best {min(polls) * 1000:.0f} ms, worst {max(polls) * 1000:.0f} ms")
    print(f"5 tabs open for {elapsed:.1f} s: {after['polls'] - before['polls']} polls, "
          f"{(after['requests'] - before['requests']) / elapsed:.1f} Kafka requests/s")


if __name__ == "__main__":
    main()
