"""`suoi consumer-groups` against a real broker: list, describe (exact lag, members, state),
reset offsets (dry run and execute, refused while the group is active), delete groups and
offsets, JSON output, and the one-line errors.

Consumers are confluent-kafka Consumers in this process; the tool runs as a subprocess.
The broker starts with fast group settings so that joins complete at once."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import confluent_kafka
import pytest
from confluent_kafka import TopicPartition as TP

from suoi.testing import EmbeddedBroker
from tests.conftest import wait_until
from tests.e2e.cli import fails, ok, ok_json, suoi
from tests.e2e.helpers import create_topic

FAST_GROUPS = {"group.initial.rebalance.delay.ms": "0", "group.min.session.timeout.ms": "1000"}
FAST_CLIENT = {"session.timeout.ms": 3000, "heartbeat.interval.ms": 300, "auto.offset.reset": "earliest",
               "enable.auto.commit": False}


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    b = EmbeddedBroker(tmp_path_factory.mktemp("cli-groups"), overrides=FAST_GROUPS)
    b.start()
    try:
        yield b
    finally:
        b.stop()


def cg(bootstrap: str, *args: str) -> list[str]:
    return ["consumer-groups", *args, "--bootstrap-server", bootstrap]


def new_group() -> str:
    return f"cg-{uuid.uuid4().hex[:10]}"


def produce(bootstrap: str, topic: str, counts: dict[int, int]) -> None:
    p = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for partition, n in counts.items():
        for i in range(n):
            p.produce(topic, value=f"{partition}-{i}".encode(), partition=partition)
    assert p.flush(20) == 0


def member(bootstrap: str, group: str, topic: str, client_id: str = "cli-test") -> confluent_kafka.Consumer:
    c = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": group, "client.id": client_id,
                                  **FAST_CLIENT})
    c.subscribe([topic])
    return c


def consume(c: confluent_kafka.Consumer, n: int, timeout: float = 15.0) -> list[confluent_kafka.Message]:
    got: list[confluent_kafka.Message] = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        m = c.poll(0.2)
        if m is not None and m.error() is None:
            got.append(m)
    assert len(got) == n, f"consumed {len(got)} of {n}"
    return got


def table(stdout: str) -> list[dict[str, str]]:
    """Kafka's whitespace-aligned table (blank line, header, rows) as dicts."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    header = lines[0].split()
    return [dict(zip(header, line.split(), strict=True)) for line in lines[1:]]


def describe_json(bootstrap: str, group: str, *extra: str) -> dict[str, Any]:
    (doc,) = ok_json(*cg(bootstrap, "--describe", "--group", group, *extra))["groups"]
    return doc


def committed_then_closed(bootstrap: str, group: str, topic: str, n: int, commit: dict[int, int]) -> None:
    """A member reads `n` records, commits `commit` ({partition: offset}) and leaves."""
    c = member(bootstrap, group, topic)
    consume(c, n)
    c.commit(offsets=[TP(topic, p, o) for p, o in commit.items()], asynchronous=False)
    c.close()


def test_list_describe_members_state_with_an_active_member_and_after(bootstrap: str, topic: str) -> None:
    group = new_group()
    create_topic(bootstrap, topic, partitions=2)
    produce(bootstrap, topic, {0: 10, 1: 3})
    c = member(bootstrap, group, topic, client_id="lag-reader")
    try:
        consume(c, 13)
        c.commit(offsets=[TP(topic, 0, 4)], asynchronous=False)  # partition 1: never committed
        member_id = c.memberid()

        assert group in ok(*cg(bootstrap, "--list")).splitlines()
        assert {"GROUP": group, "STATE": "Stable"} in table(ok(*cg(bootstrap, "--list", "--state")))
        assert group in [g["group"] for g in ok_json(*cg(bootstrap, "--list", "--state", "stable"))["groups"]]
        assert group not in [g["group"] for g in ok_json(*cg(bootstrap, "--list", "--state", "Empty"))["groups"]]

        rows = table(ok(*cg(bootstrap, "--describe", "--group", group)))
        assert [(r["PARTITION"], r["CURRENT-OFFSET"], r["LOG-END-OFFSET"], r["LAG"]) for r in rows] == [
            ("0", "4", "10", "6"), ("1", "-", "3", "-")]
        assert all(r["GROUP"] == group and r["TOPIC"] == topic and r["CONSUMER-ID"] == member_id
                   and r["CLIENT-ID"] == "lag-reader" and r["HOST"] == "/127.0.0.1" for r in rows)
        doc = describe_json(bootstrap, group)
        assert doc["state"] == "Stable"
        assert [(o["partition"], o["current_offset"], o["log_end_offset"], o["lag"], o["consumer_id"])
                for o in doc["offsets"]] == [(0, 4, 10, 6, member_id), (1, None, 3, None, member_id)]

        (m,) = table(ok(*cg(bootstrap, "--describe", "--group", group, "--members", "--verbose")))
        assert (m["CONSUMER-ID"], m["CLIENT-ID"], m["#PARTITIONS"], m["ASSIGNMENT"]) == (
            member_id, "lag-reader", "2", f"{topic}(0,1)")
        every = ok_json(*cg(bootstrap, "--describe", "--all-groups"))["groups"]
        assert [g["offsets"][0]["lag"] for g in every if g["group"] == group] == [6]
        members = describe_json(bootstrap, group, "--members")["members"]
        assert [(x["consumer_id"], x["partitions"]) for x in members] == [(member_id, 2)]
        assert [(a["topic"], a["partition"]) for a in members[0]["assignment"]] == [(topic, 0), (topic, 1)]

        out = ok(*cg(bootstrap, "--describe", "--group", group, "--state"))
        header, row = [line for line in out.splitlines() if line.strip()]
        assert header.split() == ["GROUP", "COORDINATOR", "(ID)", "ASSIGNMENT-STRATEGY", "STATE", "#MEMBERS"]
        assert row.split()[0] == group and row.split()[-3:] == ["range", "Stable", "1"]
        state = describe_json(bootstrap, group, "--state")
        assert (state["state"], state["members"], state["coordinator"]["id"]) == ("Stable", 1, 1)

        # an active group can be neither reset nor deleted
        assert fails(*cg(bootstrap, "--reset-offsets", "--group", group, "--all-topics", "--to-earliest",
                         "--execute")).endswith(
            f"Assignments can only be reset if the group '{group}' is inactive, but the current state is Stable.")
        assert "active members" in fails(*cg(bootstrap, "--delete", "--group", group))
    finally:
        c.close()

    wait_until(lambda: describe_json(bootstrap, group)["state"] == "Empty", message="group empty after close")
    proc = suoi(*cg(bootstrap, "--describe", "--group", group))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == f"Consumer group '{group}' has no active members."
    rows = table(proc.stdout)
    assert [(r["PARTITION"], r["CURRENT-OFFSET"], r["LOG-END-OFFSET"], r["LAG"], r["CONSUMER-ID"], r["HOST"],
             r["CLIENT-ID"]) for r in rows] == [("0", "4", "10", "6", "-", "-", "-")]
    assert describe_json(bootstrap, group, "--members")["members"] == []
    assert describe_json(bootstrap, group, "--state")["members"] == 0


def test_reset_offsets_dry_run_execute_and_reread(bootstrap: str, topic: str) -> None:
    group = new_group()
    create_topic(bootstrap, topic, partitions=2)
    produce(bootstrap, topic, {0: 10, 1: 10})
    committed_then_closed(bootstrap, group, topic, 20, {0: 7, 1: 5})

    def current() -> list[int | None]:
        return [o["current_offset"] for o in describe_json(bootstrap, group)["offsets"]]

    assert current() == [7, 5]
    # dry runs: the plan is printed, nothing changes (--dry-run is the default)
    plan = table(ok(*cg(bootstrap, "--reset-offsets", "--group", group, "--topic", topic, "--shift-by", "-3")))
    assert [(r["GROUP"], r["TOPIC"], r["PARTITION"], r["NEW-OFFSET"]) for r in plan] == [
        (group, topic, "0", "4"), (group, topic, "1", "2")]
    plan = table(ok(*cg(bootstrap, "--reset-offsets", "--group", group, "--topic", f"{topic}:1", "--to-offset", "3",
                        "--dry-run")))
    assert [(r["PARTITION"], r["NEW-OFFSET"]) for r in plan] == [("1", "3")]
    # clamped to [log start, log end]
    doc = ok_json(*cg(bootstrap, "--reset-offsets", "--group", group, "--all-topics", "--shift-by", "100"))
    assert doc["executed"] is False
    assert [(o["partition"], o["new_offset"]) for o in doc["groups"][0]["offsets"]] == [(0, 10), (1, 10)]
    ok("delete-records", "--topic", topic, "--partition", "1", "--offset", "2", "--bootstrap-server", bootstrap)
    plan = table(ok(*cg(bootstrap, "--reset-offsets", "--group", group, "--all-topics", "--to-offset", "0")))
    assert [(r["PARTITION"], r["NEW-OFFSET"]) for r in plan] == [("0", "0"), ("1", "2")]
    plan = table(ok(*cg(bootstrap, "--reset-offsets", "--group", group, "--all-topics", "--to-latest")))
    assert [r["NEW-OFFSET"] for r in plan] == ["10", "10"]
    plan = table(ok(*cg(bootstrap, "--reset-offsets", "--group", group, "--all-topics", "--to-current")))
    assert [r["NEW-OFFSET"] for r in plan] == ["7", "5"]
    plan = table(ok(*cg(bootstrap, "--reset-offsets", "--group", group, "--all-topics", "--by-duration", "P1D")))
    assert [r["NEW-OFFSET"] for r in plan] == ["0", "2"]  # every record is younger than a day
    plan = table(ok(*cg(bootstrap, "--reset-offsets", "--group", group, "--all-topics",
                        "--to-datetime", "2999-01-01T00:00:00.000")))
    assert [r["NEW-OFFSET"] for r in plan] == ["10", "10"]  # no record that late: log end
    assert current() == [7, 5]

    # --execute commits; a member of the group then reads everything again
    plan = table(ok(*cg(bootstrap, "--reset-offsets", "--group", group, "--topic", topic, "--to-earliest",
                        "--execute")))
    assert [(r["PARTITION"], r["NEW-OFFSET"]) for r in plan] == [("0", "0"), ("1", "2")]
    assert current() == [0, 2]
    c = member(bootstrap, group, topic)
    try:
        got = consume(c, 18)
        assert sorted(m.value().decode() for m in got) == sorted(
            [f"0-{i}" for i in range(10)] + [f"1-{i}" for i in range(2, 10)])
        assert c.poll(0.5) is None
    finally:
        c.close()


def test_delete_group_delete_offsets_and_simple_groups(bootstrap: str, topic: str) -> None:
    create_topic(bootstrap, topic, partitions=2)
    produce(bootstrap, topic, {0: 5, 1: 5})
    group = new_group()
    committed_then_closed(bootstrap, group, topic, 10, {0: 5, 1: 5})
    wait_until(lambda: describe_json(bootstrap, group)["state"] == "Empty", message="group empty")

    out = ok(*cg(bootstrap, "--delete-offsets", "--group", group, "--topic", f"{topic}:1"))
    assert out.splitlines()[0] == f"Request succeed for deleting offsets with topic {topic} group {group}"
    assert table("\n".join(out.splitlines()[1:])) == [{"TOPIC": topic, "PARTITION": "1", "STATUS": "Successful"}]
    assert [o["partition"] for o in describe_json(bootstrap, group)["offsets"]] == [0]

    assert ok(*cg(bootstrap, "--delete", "--group", group)) == (
        f"Deletion of requested consumer groups ('{group}') was successful.\n")
    assert group not in ok(*cg(bootstrap, "--list")).splitlines()
    assert fails(*cg(bootstrap, "--describe", "--group", group)).endswith(f"Consumer group '{group}' does not exist.")

    # a "simple" group: offsets committed by a consumer that assigned partitions itself
    simple = new_group()
    c = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": simple, **FAST_CLIENT})
    try:
        c.commit(offsets=[TP(topic, 0, 3)], asynchronous=False)
    finally:
        c.close()
    assert {"group": simple, "state": "Empty"} in ok_json(*cg(bootstrap, "--list", "--state"))["groups"]
    doc = describe_json(bootstrap, simple)
    assert (doc["state"], [(o["partition"], o["lag"]) for o in doc["offsets"]]) == ("Empty", [(0, 2)])
    ok(*cg(bootstrap, "--delete", "--group", simple, "--output", "json"))
    assert simple not in ok(*cg(bootstrap, "--list")).splitlines()


def test_errors_are_one_line(bootstrap: str, topic: str, make_broker: Any) -> None:
    missing = new_group()
    assert fails(*cg(bootstrap, "--describe", "--group", missing)).endswith(
        f"Consumer group '{missing}' does not exist.")
    assert "does not exist" in fails(*cg(bootstrap, "--delete", "--group", missing))
    assert "--to-earliest" in fails(*cg(bootstrap, "--reset-offsets", "--group", missing, "--all-topics"))
    assert "--all-topics or --topic" in fails(*cg(bootstrap, "--reset-offsets", "--group", missing, "--to-latest"))
    assert "not allowed with argument" in fails(*cg(bootstrap, "--reset-offsets", "--group", missing, "--all-topics",
                                                    "--to-latest", "--to-earliest"))
    assert "Topic 'no-such-topic-z' does not exist" in fails(
        *cg(bootstrap, "--reset-offsets", "--group", missing, "--topic", "no-such-topic-z", "--to-latest"))
    assert "PnDTnHnMnS" in fails(*cg(bootstrap, "--reset-offsets", "--group", missing, "--all-topics",
                                     "--by-duration", "1 hour"))
    assert "--group or --all-groups is required" in fails(*cg(bootstrap, "--describe"))
    assert json.loads(ok(*cg(bootstrap, "--list", "--output", "json")))["groups"] is not None

    stopped = make_broker()
    address = stopped.bootstrap
    stopped.stop()
    assert "cannot reach a broker" in fails(*cg(address, "--list"))
    assert "cannot reach a broker" in fails(*cg(address, "--describe", "--group", "g"))
