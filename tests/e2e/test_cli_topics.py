"""`suoi topics` against a real broker: create, list, describe (Kafka's layout and JSON),
alter (partitions up, configs), delete, and the one-line errors."""

from __future__ import annotations

import re

from tests.e2e.cli import fails, ok, ok_json


def test_create_list_describe_delete(bootstrap: str, topic: str) -> None:
    out = ok("topics", "--create", "--topic", topic, "--bootstrap-server", bootstrap, "--partitions", "3",
             "--replication-factor", "1", "--config", "retention.ms=60000", "--config", "max.message.bytes=200000")
    assert out == f"Created topic {topic}.\n"
    assert topic in ok("topics", "--list", "--bootstrap-server", bootstrap).splitlines()
    assert topic in ok_json("topics", "--list", "--bootstrap-server", bootstrap)["topics"]

    lines = ok("topics", "--describe", "--topic", topic, "--bootstrap-server", bootstrap).splitlines()
    assert re.fullmatch(
        rf"Topic: {topic}\tTopicId: [A-Za-z0-9_-]{{22}}\tPartitionCount: 3\tReplicationFactor: 1\t"
        r"Configs: max\.message\.bytes=200000,retention\.ms=60000", lines[0]), lines[0]
    assert lines[1:] == [f"\tTopic: {topic}\tPartition: {p}\tLeader: 1\tReplicas: 1\tIsr: 1" for p in range(3)]

    doc = ok_json("topics", "--describe", "--topic", topic, "--bootstrap-server", bootstrap)
    (t,) = doc["topics"]
    assert t["topic"] == topic and t["partition_count"] == 3 and t["replication_factor"] == 1
    assert t["configs"] == {"max.message.bytes": "200000", "retention.ms": "60000"}
    assert t["partitions"][2] == {"partition": 2, "leader": 1, "replicas": [1], "isr": [1]}

    # --topic is a regular expression for describe
    regex = ok_json("topics", "--describe", "--topic", re.escape(topic[:-8]) + ".*", "--bootstrap-server", bootstrap)
    assert [x["topic"] for x in regex["topics"]] == [topic]

    assert ok("topics", "--delete", "--topic", topic, "--bootstrap-server", bootstrap) == f"Deleted topic {topic}.\n"
    assert topic not in ok("topics", "--list", "--bootstrap-server", bootstrap).splitlines()


def test_if_not_exists_and_if_exists(bootstrap: str, topic: str) -> None:
    ok("topics", "--create", "--topic", topic, "--bootstrap-server", bootstrap)
    line = fails("topics", "--create", "--topic", topic, "--bootstrap-server", bootstrap)
    assert "already exists" in line
    assert ok("topics", "--create", "--topic", topic, "--if-not-exists", "--bootstrap-server", bootstrap) == ""
    assert ok_json("topics", "--create", "--topic", topic, "--if-not-exists",
                   "--bootstrap-server", bootstrap) == {"topic": topic, "created": False}
    missing = topic + "-missing"
    assert ok("topics", "--delete", "--topic", missing, "--if-exists", "--bootstrap-server", bootstrap) == ""
    assert ok("topics", "--describe", "--topic", missing, "--if-exists", "--bootstrap-server", bootstrap) == ""


def test_alter_partitions_and_config(bootstrap: str, topic: str) -> None:
    ok("topics", "--create", "--topic", topic, "--partitions", "3", "--bootstrap-server", bootstrap)
    out = ok("topics", "--alter", "--topic", topic, "--partitions", "6", "--bootstrap-server", bootstrap)
    assert out == f"Topic {topic}: partition count 3 -> 6.\n"
    t = ok_json("topics", "--describe", "--topic", topic, "--bootstrap-server", bootstrap)["topics"][0]
    assert t["partition_count"] == 6 and [p["partition"] for p in t["partitions"]] == list(range(6))
    line = fails("topics", "--alter", "--topic", topic, "--partitions", "2", "--bootstrap-server", bootstrap)
    # the KRaft controller's words, as Kafka 4's
    assert f"The topic {topic} currently has 6 partition(s); 2 would not be an increase." in line
    assert "INVALID_PARTITIONS" in line
    ok("topics", "--alter", "--topic", topic, "--config", "retention.ms=5000", "--bootstrap-server", bootstrap)
    t = ok_json("topics", "--describe", "--topic", topic, "--bootstrap-server", bootstrap)["topics"][0]
    assert t["configs"] == {"retention.ms": "5000"}


def test_errors_are_one_line_with_exit_code_1(bootstrap: str, topic: str) -> None:
    assert "Topic 'no-such-topic-x' does not exist" in fails(
        "topics", "--describe", "--topic", "no-such-topic-x", "--bootstrap-server", bootstrap)
    assert "The target replication factor of 3 cannot be reached because only 1 broker(s) are registered" in fails(
        "topics", "--create", "--topic", topic, "--replication-factor", "3", "--bootstrap-server", bootstrap)
    assert "Unknown topic config name: bogus" in fails("topics", "--create", "--topic", topic, "--config",
                                                       "bogus=1", "--bootstrap-server", bootstrap)
    assert "unrecognized arguments: --no-such-flag" in fails("topics", "--list", "--no-such-flag",
                                                             "--bootstrap-server", bootstrap)
    assert "--bootstrap-server" in fails("topics", "--list")
    assert "one of the arguments" in fails("topics", "--bootstrap-server", bootstrap)
    assert "--topic is required" in fails("topics", "--create", "--bootstrap-server", bootstrap)
    assert "invalid int value" in fails("topics", "--create", "--topic", topic, "--partitions", "x",
                                        "--bootstrap-server", bootstrap)


def test_help_lists_every_command() -> None:
    out = ok("--help")
    for command in ("broker", "topics", "console-producer", "console-consumer", "configs",
                    "delete-records", "get-offsets"):
        assert re.search(rf"^\s+{command}\b", out, re.M), command
    for command in ("topics", "console-producer", "console-consumer", "configs", "delete-records", "get-offsets"):
        assert "--bootstrap-server" in ok(command, "--help")
