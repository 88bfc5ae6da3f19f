"""`suoi configs`, `suoi delete-records` and `suoi get-offsets` against a real broker, and
every tool's one-line error when the broker is down."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from suoi.testing import EmbeddedBroker
from tests.conftest import wait_until
from tests.e2e.cli import fails, ok, ok_json
from tests.e2e.helpers import ck_produce, create_topic


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    b = EmbeddedBroker(tmp_path_factory.mktemp("cli-configs"),
                       overrides={"log.retention.check.interval.ms": "200", "log.segment.bytes": "1048576"})
    b.start()
    try:
        yield b
    finally:
        b.stop()


def test_describe_shows_sources_and_synonyms(bootstrap: str, topic: str) -> None:
    create_topic(bootstrap, topic, config={"retention.ms": "60000"})
    out = ok("configs", "--describe", "--entity-type", "topics", "--entity-name", topic, "--bootstrap-server", bootstrap)
    assert out.splitlines() == [
        f"Dynamic configs for topic {topic} are:",
        "  retention.ms=60000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=60000}",
    ]
    everything = ok("configs", "--describe", "--topic", topic, "--all", "--bootstrap-server", bootstrap)
    assert everything.startswith(f"All configs for topic {topic} are:\n")
    assert ("  segment.bytes=1048576 sensitive=false synonyms={STATIC_BROKER_CONFIG:log.segment.bytes=1048576, "
            "DEFAULT_CONFIG:log.segment.bytes=1073741824}" in everything.splitlines())
    assert "  cleanup.policy=delete sensitive=false synonyms={DEFAULT_CONFIG:log.cleanup.policy=delete}" \
        in everything.splitlines()

    doc = ok_json("configs", "--describe", "--topic", topic, "--all", "--bootstrap-server", bootstrap)
    (entity,) = doc["entities"]
    by_name = {c["name"]: c for c in entity["configs"]}
    assert by_name["retention.ms"]["source"] == "DYNAMIC_TOPIC_CONFIG"
    assert by_name["segment.bytes"]["source"] == "STATIC_BROKER_CONFIG"
    assert by_name["max.message.bytes"] == {
        "name": "max.message.bytes", "value": "1048588", "source": "DEFAULT_CONFIG", "sensitive": False,
        "read_only": False, "synonyms": [{"name": "message.max.bytes", "value": "1048588", "source": "DEFAULT_CONFIG"}]}
    assert by_name["segment.bytes"]["synonyms"] == [
        {"name": "log.segment.bytes", "value": "1048576", "source": "STATIC_BROKER_CONFIG"},
        {"name": "log.segment.bytes", "value": "1073741824", "source": "DEFAULT_CONFIG"}]


def test_alter_add_and_delete_config(bootstrap: str, topic: str) -> None:
    create_topic(bootstrap, topic)
    out = ok("configs", "--alter", "--topic", topic, "--add-config",
             "max.message.bytes=200000,cleanup.policy=[delete,compact]", "--bootstrap-server", bootstrap)
    assert out == f"Completed updating config for topic {topic}.\n"
    dyn = ok("configs", "--describe", "--topic", topic, "--bootstrap-server", bootstrap)
    assert re.search(r"^  cleanup\.policy=delete,compact sensitive=false ", dyn, re.M), dyn
    assert re.search(r"^  max\.message\.bytes=200000 sensitive=false ", dyn, re.M), dyn
    ok("configs", "--alter", "--topic", topic, "--delete-config", "cleanup.policy", "--bootstrap-server", bootstrap)
    doc = ok_json("configs", "--describe", "--topic", topic, "--bootstrap-server", bootstrap)
    assert [c["name"] for c in doc["entities"][0]["configs"]] == ["max.message.bytes"]

    assert "Unknown topic config name: bogus" in fails(
        "configs", "--alter", "--topic", topic, "--add-config", "bogus=1", "--bootstrap-server", bootstrap)
    assert "retention.ms" in fails(
        "configs", "--alter", "--topic", topic, "--add-config", "retention.ms=soon", "--bootstrap-server", bootstrap)
    assert "Topic 'no-such-topic-z' does not exist" in fails(
        "configs", "--describe", "--topic", "no-such-topic-z", "--bootstrap-server", bootstrap)


def test_retention_change_deletes_old_segments(broker: EmbeddedBroker, bootstrap: str, topic: str) -> None:
    create_topic(bootstrap, topic, config={"segment.bytes": "200"})
    ok("console-producer", "--topic", topic, "--bootstrap-server", bootstrap, "--sync",
       stdin="".join(f"record-{i:03d}-padding-padding-padding\n" for i in range(20)))
    part = Path(broker.log_dirs[0]) / f"{topic}-0"
    assert len(list(part.glob("*.log"))) > 5
    assert ok("get-offsets", "--topic", topic, "--time", "earliest", "--bootstrap-server", bootstrap) == f"{topic}:0:0\n"
    time.sleep(1.1)  # the records must be older than the new retention.ms: age is what is tested
    ok("configs", "--alter", "--topic", topic, "--add-config", "retention.ms=1000", "--bootstrap-server", bootstrap)
    wait_until(lambda: len(list(part.glob("*.log"))) == 1, timeout=10, message="old segments deleted")
    assert ok("get-offsets", "--topic", topic, "--time", "earliest", "--bootstrap-server", bootstrap) == f"{topic}:0:20\n"
    assert ok("get-offsets", "--topic", topic, "--bootstrap-server", bootstrap) == f"{topic}:0:20\n"


def test_broker_dynamic_config(bootstrap: str) -> None:
    out = ok("configs", "--alter", "--entity-type", "brokers", "--entity-name", "1", "--add-config",
             "log.retention.ms=7200000", "--bootstrap-server", bootstrap)
    assert out == "Completed updating config for broker 1.\n"
    try:
        out = ok("configs", "--describe", "--broker", "1", "--bootstrap-server", bootstrap)
        assert out.splitlines() == [
            "Dynamic configs for broker 1 are:",
            "  log.retention.ms=7200000 sensitive=false synonyms={DYNAMIC_BROKER_CONFIG:log.retention.ms=7200000, "
            "DEFAULT_CONFIG:log.retention.hours=168}",
        ]
        assert "Cannot update these configs dynamically" in fails(
            "configs", "--alter", "--broker", "1", "--add-config", "num.partitions=4", "--bootstrap-server", bootstrap)
    finally:
        ok("configs", "--alter", "--broker", "1", "--delete-config", "log.retention.ms", "--bootstrap-server", bootstrap)
    assert ok("configs", "--describe", "--broker", "1", "--bootstrap-server", bootstrap) == \
        "Dynamic configs for broker 1 are:\n"


def test_delete_records_and_get_offsets(bootstrap: str, topic: str, tmp_path: Path) -> None:
    create_topic(bootstrap, topic, partitions=2)
    ck_produce(bootstrap, topic, [{"value": b"v%d" % i, "partition": i % 2} for i in range(10)])
    assert ok("get-offsets", "--topic", topic, "--bootstrap-server", bootstrap) == f"{topic}:0:5\n{topic}:1:5\n"
    out = ok("delete-records", "--topic", topic, "--partition", "0", "--offset", "3", "--bootstrap-server", bootstrap)
    assert out.splitlines() == ["Executing records delete operation", "Records delete operation completed:",
                                f"partition: {topic}-0\tlow_watermark: 3"]
    spec = tmp_path / "offsets.json"
    spec.write_text(json.dumps({"partitions": [{"topic": topic, "partition": 1, "offset": -1}], "version": 1}))
    doc = ok_json("delete-records", "--offset-json-file", str(spec), "--bootstrap-server", bootstrap)
    assert doc == {"partitions": [{"topic": topic, "partition": 1, "low_watermark": 5, "error": None}]}
    assert ok_json("get-offsets", "--topic", topic, "--time", "-2", "--bootstrap-server", bootstrap) == {
        "offsets": [{"topic": topic, "partition": 0, "offset": 3}, {"topic": topic, "partition": 1, "offset": 5}]}
    assert ok("get-offsets", "--topic-partitions", f"{topic}:1", "--time", "earliest",
              "--bootstrap-server", bootstrap) == f"{topic}:1:5\n"
    assert ok("get-offsets", "--topic", topic, "--partitions", "0", "--time", str(2**62),
              "--bootstrap-server", bootstrap) == f"{topic}:0:\n"
    assert "Offset out of range" in fails("delete-records", "--topic", topic, "--partition", "0", "--offset", "99",
                                          "--bootstrap-server", bootstrap)
    assert "Could not match any topic-partitions" in fails("get-offsets", "--topic", "no-such-topic-w",
                                                           "--bootstrap-server", bootstrap)
    assert "does not exist" in fails("delete-records", "--topic", "no-such-topic-w", "--partition", "0",
                                     "--offset", "1", "--bootstrap-server", bootstrap)


@pytest.fixture(scope="module")
def stopped_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The address of a broker that ran and was stopped (nothing listens there now)."""
    b = EmbeddedBroker(tmp_path_factory.mktemp("cli-stopped"))
    b.start()
    b.stop()
    return b.bootstrap


@pytest.mark.parametrize("command", [
    ["topics", "--list"],
    ["topics", "--describe", "--topic", "t"],
    ["console-producer", "--topic", "t"],
    ["console-consumer", "--topic", "t"],
    ["configs", "--describe", "--topic", "t"],
    ["delete-records", "--topic", "t", "--partition", "0", "--offset", "1"],
    ["get-offsets", "--topic", "t"],
])
def test_stopped_broker_is_one_line(stopped_bootstrap: str, command: list[str]) -> None:
    line = fails(*command, "--bootstrap-server", stopped_bootstrap, stdin="x\n", timeout=15)
    assert line == f"suoi {command[0]}: error: cannot reach a broker at {stopped_bootstrap}: Connection refused"
