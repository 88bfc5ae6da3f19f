"""`suoi producer-perf-test` and `suoi consumer-perf-test` (Kafka's perf scripts, same flags and
output lines) against a real broker: what they report is what the topic holds."""

from __future__ import annotations

import re
import time
from pathlib import Path

from tests.e2e.cli import fails, ok
from tests.e2e.helpers import create_topic
from tests.e2e.txn_helpers import latest

TOTAL = re.compile(r"^(\d+) records sent, (\d+\.\d{6}) records/sec \((\d+\.\d\d) MB/sec\), (\d+\.\d\d) ms avg latency, "
                   r"(\d+\.\d\d) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99\.9th\.$")
CONSUMER_HEADER = ("start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, "
                   "rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec")
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d:\d{3}"


def test_producer_then_consumer_perf_test(bootstrap: str, topic: str, tmp_path: Path) -> None:
    create_topic(bootstrap, topic, partitions=2)
    out = ok("producer-perf-test", "--topic", topic, "--num-records", "3000", "--record-size", "100",
             "--throughput", "-1", "--producer-props", f"bootstrap.servers={bootstrap}", "acks=1", "linger.ms=5")
    m = TOTAL.match(out.splitlines()[-1])
    assert m, out
    sent, rate, mb_s, avg, mx, p50, p95, p99, p999 = m.groups()
    assert int(sent) == 3000 and float(rate) > 0 and float(avg) <= float(mx)
    assert int(p50) <= int(p95) <= int(p99) <= int(p999) <= float(mx)
    assert latest(bootstrap, topic, 0) + latest(bootstrap, topic, 1) == 3000

    # --producer.config in Java's `key: value` syntax, and a throttle of 400 records/s
    config = tmp_path / "producer.properties"
    config.write_text(f"# perf\nbootstrap.servers: {bootstrap}\nacks = all\n", encoding="utf-8")
    started = time.monotonic()
    out = ok("producer-perf-test", "--topic", topic, "--num-records", "200", "--payload-monotonic",
             "--throughput", "400", "--producer.config", str(config))
    assert time.monotonic() - started >= 0.45  # 200 records at 400/s take half a second
    sent, rate = TOTAL.match(out.splitlines()[-1]).groups()[:2]  # type: ignore[union-attr]
    assert int(sent) == 200 and float(rate) <= 440

    out = ok("consumer-perf-test", "--bootstrap-server", bootstrap, "--topic", topic, "--messages", "3200",
             "--timeout", "15000").splitlines()
    assert out[0] == CONSUMER_HEADER and len(out) == 2, out
    cells = out[1].split(", ")
    assert re.fullmatch(STAMP, cells[0]) and re.fullmatch(STAMP, cells[1]) and cells[1] >= cells[0]
    # 3000 records of 100 bytes, then "0".."199" (490 bytes): no keys
    assert cells[4] == "3200" and cells[2] == f"{(3000 * 100 + 490) / 2**20:.4f}"
    assert int(cells[6]) >= 0 and int(cells[7]) > 0

    create_topic(bootstrap, f"{topic}-empty")
    warned = ok("consumer-perf-test", "--bootstrap-server", bootstrap, "--topic", f"{topic}-empty", "--messages", "1",
                "--timeout", "500", "--hide-header").splitlines()
    assert warned[0].startswith("WARNING: Exiting before consuming the expected number of messages: timeout (500 ms)")
    assert warned[1].split(", ")[4] == "0" and len(warned) == 2


def test_perf_test_flags(bootstrap: str, topic: str) -> None:
    assert "Either --producer-props or --producer.config must be specified" in fails(
        "producer-perf-test", "--topic", topic, "--num-records", "1", "--record-size", "1", "--throughput", "-1")
    assert "Invalid property: acks" in fails(
        "producer-perf-test", "--topic", topic, "--num-records", "1", "--record-size", "1", "--throughput", "-1",
        "--producer-props", f"bootstrap.servers={bootstrap}", "acks")
