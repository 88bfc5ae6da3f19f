"""bench_latency --probe's broker side (benchmarks/latency_probe.py) on a real node: the node runs
inside the probe, stamps what it appends and what a consumer Fetch reads of the `latency-` topics
only, times its loop callbacks, and writes it all at SIGUSR1, starting over each time."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kio.schema.errors import ErrorCode

from suoi.protocol.records import build_batch
from suoi.testing import EmbeddedBroker
from tests.conftest import wait_until
from tests.integration.support import create_topic, fetch, produce, unique

pytestmark = pytest.mark.timeout(60)

PROBE = Path(__file__).resolve().parents[2] / "benchmarks" / "latency_probe.py"


class ProbedBroker(EmbeddedBroker):
    """`python latency_probe.py --out PREFIX broker ...` instead of `python -m suoi broker ...`."""

    def __init__(self, data_dir: Path, out: Path) -> None:
        super().__init__(data_dir)
        self.out = out

    def command(self) -> list[str]:
        cmd = super().command()
        assert cmd[1:3] == ["-m", "suoi"]
        return [cmd[0], str(PROBE), "--out", str(self.out), *cmd[3:]]


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProbedBroker]:
    node = ProbedBroker(tmp_path_factory.mktemp("suoi-probe"), tmp_path_factory.mktemp("dumps") / "node")
    node.start()
    try:
        yield node
    finally:
        node.stop()


def _dump(broker: ProbedBroker, n: int) -> dict[str, Any]:
    path = Path(f"{broker.out}.{n}.json")
    os.kill(broker.pid, signal.SIGUSR1)
    wait_until(path.exists, timeout=10, message=f"the probe's dump {path}")
    return json.loads(path.read_text())


def _rows(flat: list[int], width: int) -> list[list[int]]:
    return [flat[i:i + width] for i in range(0, len(flat), width)]


def test_the_probe_stamps_appends_and_consumer_reads_of_latency_topics_only(broker: ProbedBroker) -> None:
    topic, other = unique("latency-probe"), unique("other")
    create_topic(broker.bootstrap, topic, partitions=2)
    create_topic(broker.bootstrap, other)
    _dump(broker, 0)  # start over: what topic creation ran is not this test's
    batch = build_batch([(None, b"a"), (None, b"b")])
    for partition in (0, 0, 0, 1):
        assert produce(broker.bootstrap, topic, partition, batch).error_code == ErrorCode.none
    assert produce(broker.bootstrap, other, 0, batch).error_code == ErrorCode.none  # not stamped
    assert fetch(broker.bootstrap, topic, 0, 0).high_watermark == 6
    assert fetch(broker.bootstrap, topic, 1, 0).high_watermark == 2
    assert fetch(broker.bootstrap, topic, 1, 2).records in (None, b"")  # nothing read: not stamped

    dump = _dump(broker, 1)
    appends = _rows(dump["appends"], 6)  # partition, base offset, count, read ns, append ns, busy since ns
    assert [a[:3] for a in appends] == [[0, 0, 2], [0, 2, 2], [0, 4, 2], [1, 0, 2]]
    for _, _, _, read_ns, append_ns, busy_since in appends:
        assert busy_since <= read_ns <= append_ns
    reads = _rows(dump["reads"], 7)  # partition, fetch offset, hw, ns, parked re-read?, request read ns, busy since
    assert [r[:3] + [r[4]] for r in reads] == [[0, 0, 6, 0], [1, 0, 2, 0]]
    for r in reads:
        assert r[6] <= r[5] <= r[3]
    assert reads[0][3] > appends[2][4]
    assert dump["by_name"]["KafkaConnection.buffer_updated"][0] >= 7  # every request read was timed
    assert dump["callbacks"] >= 7 and dump["busy_cpu_ns"] > 0
    assert sum(dump["thread_cpu_s"].values()) >= 0 and dump["thread_cpu_s"]
    assert dump["started_ns"] < appends[0][3] < dump["ended_ns"]

    again = _dump(broker, 2)  # each dump starts over
    assert again["appends"] == [] and again["reads"] == []

