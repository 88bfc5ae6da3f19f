"""`suoi leader-election` and `suoi reassign-partitions` as an operator runs them: Kafka's flags,
JSON files and messages, `--output json`, one-line errors and exit codes. Against a 3-node
KRaft cluster (tests/integration/reassign_cluster.py) and a single node (no process.roles)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from kio.schema.errors import ErrorCode

from suoi.testing import EmbeddedBroker
from tests.conftest import wait_until
from tests.e2e.cli import fails, ok, suoi
from tests.integration.reassign_cluster import Cluster, create, node_down, running
from tests.integration.reassign_cluster import reassign as raw_reassign


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running(tmp_path_factory.mktemp("cli-reassign"), {"auto.leader.rebalance.enable": "false"}) as c:
        yield c


def write(path: Path, doc: object) -> str:
    path.write_text(json.dumps(doc))
    return str(path)


def plan(*entries: tuple[str, int, list[int]]) -> dict[str, object]:
    return {"version": 1, "partitions": [{"topic": t, "partition": p, "replicas": rs} for t, p, rs in entries]}


def reassign(bootstrap: str, *args: str) -> str:
    return ok("reassign-partitions", *args, "--bootstrap-server", bootstrap)


# ---------------------------------------------------------------------------- flags (no broker needed)


@pytest.mark.parametrize(("args", "message"), [
    ((), "Command must include exactly one action: --generate, --execute, --verify, --cancel, --list"),
    (("--list", "--verify"), "Command must include exactly one action"),
    (("--execute",), 'Missing required argument "[reassignment-json-file]"'),
    (("--generate", "--broker-list", "1"), 'Missing required argument "[topics-to-move-json-file]"'),
    (("--list", "--additional"), 'Option "[additional]" can\'t be used with action "[list]"'),
    (("--verify", "--reassignment-json-file", "x.json", "--broker-list", "1"),
     'Option "[broker-list]" can\'t be used with action "[verify]"'),
    (("--execute", "--reassignment-json-file", "/nonexistent/plan.json"), "cannot read /nonexistent/plan.json"),
])
def test_reassign_flag_errors(args: tuple[str, ...], message: str) -> None:
    line = fails("reassign-partitions", *args, "--bootstrap-server", "127.0.0.1:1")
    assert line.startswith("suoi reassign-partitions: error: ") and message in line


@pytest.mark.parametrize(("doc", "message"), [
    ({"version": 1, "partitions": []}, "Partition reassignment list cannot be empty"),
    (plan(("a", 0, [])), "Partition replica list cannot be empty"),
    (plan(("a", 0, [1]), ("a", 0, [2])), "Partition reassignment contains duplicate topic partitions: a-0"),
    (plan(("a", 0, [1, 1, 2])), "Partition replica lists may not contain duplicate entries: a-0 contains multiple "
                                "entries for 1"),
    ({"version": 2, "partitions": []}, "Not supported version field value 2"),
    ({"version": 1, "partitions": [{"topic": "a", "partition": 0, "replicas": [1], "log_dirs": ["/d"]}]},
     'log_dirs other than "any" are not supported'),
    ({"version": 1, "partitions": [{"topic": "a", "replicas": [1]}]}, "each partition is"),
])
def test_reassignment_file_errors(tmp_path: Path, doc: object, message: str) -> None:
    line = fails("reassign-partitions", "--execute", "--reassignment-json-file", write(tmp_path / "p.json", doc),
                 "--bootstrap-server", "127.0.0.1:1")
    assert message in line


@pytest.mark.parametrize(("args", "message"), [
    (("--all-topic-partitions",), "Missing required option(s) [election-type]"),
    (("--election-type", "preferred"), "One and only one of the following options is required: "
                                       "all-topic-partitions, topic, path-to-json-file"),
    (("--election-type", "preferred", "--all-topic-partitions", "--topic", "a", "--partition", "0"),
     "One and only one of the following options is required"),
    (("--election-type", "preferred", "--topic", "a"), "Missing required option(s) [partition]"),
    (("--election-type", "sideways", "--all-topic-partitions"), "invalid choice: 'SIDEWAYS'"),
])
def test_leader_election_flag_errors(args: tuple[str, ...], message: str) -> None:
    line = fails("leader-election", *args, "--bootstrap-server", "127.0.0.1:1")
    assert message in line


def test_leader_election_json_file_errors(tmp_path: Path) -> None:
    missing = write(tmp_path / "a.json", {"partition": []})
    assert 'Replica election data is missing "partitions" field' in fails(
        "leader-election", "--election-type", "PREFERRED", "--path-to-json-file", missing, "--bootstrap-server", "x:1")
    dup = write(tmp_path / "b.json", {"partitions": [{"topic": "a", "partition": 1}, {"topic": "a", "partition": 1}]})
    assert "Replica election data contains duplicate partitions: a-1" in fails(
        "leader-election", "--election-type", "PREFERRED", "--path-to-json-file", dup, "--bootstrap-server", "x:1")


def test_unreachable_broker_is_one_line() -> None:
    assert "cannot reach a broker at 127.0.0.1:1" in fails("reassign-partitions", "--list",
                                                           "--bootstrap-server", "127.0.0.1:1")
    assert "cannot reach a broker at 127.0.0.1:1" in fails(
        "leader-election", "--election-type", "PREFERRED", "--all-topic-partitions", "--bootstrap-server", "127.0.0.1:1")


# ---------------------------------------------------------------------------- a single node


def test_a_single_node(make_broker: object, tmp_path: Path) -> None:
    broker: EmbeddedBroker = make_broker()  # type: ignore[operator]
    b = broker.bootstrap
    admin = AdminClient({"bootstrap.servers": b})
    admin.create_topics([NewTopic("solo", 2, 1)])["solo"].result(timeout=10)
    assert ok("leader-election", "--election-type", "PREFERRED", "--all-topic-partitions", "--bootstrap-server", b) == ""
    assert ok("leader-election", "--election-type", "unclean", "--topic", "solo", "--partition", "1",
              "--bootstrap-server", b) == "Valid replica already elected for partitions solo-1\n"
    proc = suoi("leader-election", "--election-type", "PREFERRED", "--topic", "nope", "--partition", "0",
                "--bootstrap-server", b)
    assert proc.returncode == 1
    assert proc.stdout == ("Error completing leader election (PREFERRED) for partition: nope-0: "
                           "UNKNOWN_TOPIC_OR_PARTITION: No such topic as nope\n")
    assert proc.stderr.count("\n") == 1 and "1 replica(s) could not be elected" in proc.stderr
    assert reassign(b, "--list") == "No partition reassignments found.\n"
    away = write(tmp_path / "away.json", plan(("solo", 0, [2])))
    assert fails("reassign-partitions", "--execute", "--reassignment-json-file", away,
                 "--bootstrap-server", b).endswith("Unknown broker id 2")
    assert "Reassignment of partition solo-0 is completed." in reassign(
        b, "--verify", "--reassignment-json-file", write(tmp_path / "here.json", plan(("solo", 0, [1]))))
    assert "None of the specified partition reassignments are active." in reassign(
        b, "--cancel", "--reassignment-json-file", away)


# ---------------------------------------------------------------------------- cluster


def test_generate_execute_verify(cluster: Cluster, tmp_path: Path) -> None:
    b = cluster.bootstrap
    topic = create(cluster, [[1], [1], [1]])
    topics = write(tmp_path / "topics.json", {"topics": [{"topic": topic}], "version": 1})
    out = reassign(b, "--generate", "--topics-to-move-json-file", topics, "--broker-list", "2,3")
    lines = out.splitlines()
    assert lines[0] == "Current partition replica assignment"
    assert json.loads(lines[1]) == {"version": 1, "partitions": [
        {"topic": topic, "partition": p, "replicas": [1], "log_dirs": ["any"]} for p in range(3)]}
    assert lines[2:4] == ["", "Proposed partition reassignment configuration"]
    proposed = json.loads(lines[4])
    assert [x["replicas"] for x in proposed["partitions"]] == [[2], [3], [2]]
    generated = json.loads(reassign(b, "--generate", "--topics-to-move-json-file", topics, "--broker-list", "2,3",
                                    "--output", "json"))
    assert generated["proposed"] == proposed

    plan_file = write(tmp_path / "plan.json", proposed)
    out = reassign(b, "--execute", "--reassignment-json-file", plan_file)
    assert out.startswith("Current partition replica assignment\n\n")
    assert "Save this to use as the --reassignment-json-file option during rollback" in out
    assert out.endswith(f"Successfully started partition reassignments for {topic}-0,{topic}-1,{topic}-2\n")

    done = "Status of partition reassignment:\n" + "".join(
        f"Reassignment of partition {topic}-{p} is completed.\n" for p in range(3))
    # (the broker that answers the metadata may lag the controller a moment: poll for the final text)
    wait_until(lambda: reassign(b, "--verify", "--reassignment-json-file", plan_file) == done, timeout=30,
               message="reassignments completed")
    for p, broker in enumerate([2, 3, 2]):  # every node's metadata has it now, whichever answers the tool
        cluster.wait_partition(topic, ([broker], [broker], broker), p)
    status = json.loads(reassign(b, "--verify", "--reassignment-json-file", plan_file, "--output", "json"))
    assert [r["state"] for r in status["partitions"]] == ["completed"] * 3 and status["in_progress"] is False
    assert reassign(b, "--list") == "No partition reassignments found.\n"
    # rolling back with the file --execute printed is a reassignment like any other
    back = write(tmp_path / "back.json", plan((topic, 1, [1])))
    assert "There is no active reassignment of partition" in reassign(b, "--verify", "--reassignment-json-file", back)


def test_pending_reassignment_list_additional_and_cancel(cluster: Cluster, tmp_path: Path) -> None:
    b = cluster.bootstrap
    topic = create(cluster, [[1], [2]])
    to_3 = write(tmp_path / "to3.json", plan((topic, 0, [3])))
    with node_down(cluster, 3):  # 3 cannot catch up while it is down: the reassignment stays pending
        # like Kafka's tool, --execute only moves partitions to live brokers; the API takes registered ones
        assert fails("reassign-partitions", "--execute", "--reassignment-json-file", to_3,
                     "--bootstrap-server", b).endswith("Unknown broker id 3")
        assert raw_reassign(cluster, 1, [(topic, 0, [3])])[0][2] == ErrorCode.none
        assert reassign(b, "--list") == f"Current partition reassignments:\n{topic}-0: replicas: 3,1. adding: 3. removing: 1.\n"
        listed = json.loads(reassign(b, "--list", "--output", "json"))
        assert listed == {"reassignments": [{"topic": topic, "partition": 0, "replicas": [3, 1],
                                             "adding_replicas": [3], "removing_replicas": [1]}]}
        assert f"Reassignment of partition {topic}-0 is still in progress." in reassign(
            b, "--verify", "--reassignment-json-file", to_3)
        other = write(tmp_path / "other.json", plan((topic, 1, [1, 2])))
        line = fails("reassign-partitions", "--execute", "--reassignment-json-file", other, "--bootstrap-server", b)
        assert "Cannot execute because there is an existing partition assignment." in line
        assert "Successfully started" in reassign(b, "--execute", "--additional", "--reassignment-json-file", other)
        both = write(tmp_path / "both.json", plan((topic, 0, [3]), (topic, 1, [1, 2])))
        wait_until(lambda: "still in progress" not in reassign(b, "--verify", "--reassignment-json-file", other),
                   timeout=30, message=f"{topic}-1 reassigned to 1,2 (both brokers up)")
        assert reassign(b, "--cancel", "--reassignment-json-file", both) == (
            f"Successfully cancelled partition reassignment for: {topic}-0\n")
        assert reassign(b, "--cancel", "--reassignment-json-file", both) == (
            "None of the specified partition reassignments are active.\n")
        cluster.wait_partition(topic, ([1], [1], 1), nodes=(1, 2))  # (the tool reads replicas from any broker)
        assert f"There is no active reassignment of partition {topic}-0, but replica set is 1 rather than 3." in (
            reassign(b, "--verify", "--reassignment-json-file", to_3))
    unknown = write(tmp_path / "unknown.json", plan((topic, 0, [7])))
    assert fails("reassign-partitions", "--execute", "--reassignment-json-file", unknown,
                 "--bootstrap-server", b).endswith("Unknown broker id 7")
    missing = write(tmp_path / "missing.json", plan((topic, 9, [2])))
    assert fails("reassign-partitions", "--execute", "--reassignment-json-file", missing,
                 "--bootstrap-server", b).endswith(f"Unable to find partition: {topic}-9")


def test_preferred_leader_election(cluster: Cluster, tmp_path: Path) -> None:
    b = cluster.bootstrap
    topic = create(cluster, [[1, 2], [2, 3]])
    cluster.wait_partition(topic, ([1, 2], [1, 2], 1))
    reassign(b, "--execute", "--reassignment-json-file", write(tmp_path / "swap.json", plan((topic, 0, [2, 1]))))
    cluster.wait_partition(topic, ([2, 1], None, 1))  # reordered at once; 1 still leads
    parts = write(tmp_path / "parts.json", {"partitions": [{"topic": topic, "partition": 0},
                                                           {"topic": topic, "partition": 1}]})
    out = ok("leader-election", "--election-type", "PREFERRED", "--path-to-json-file", parts, "--bootstrap-server", b)
    assert out == (f"Successfully completed leader election (PREFERRED) for partitions {topic}-0\n"
                   f"Valid replica already elected for partitions {topic}-1\n")
    cluster.wait_partition(topic, ([2, 1], None, 2))
    result = json.loads(ok("leader-election", "--election-type", "PREFERRED", "--topic", topic, "--partition", "0",
                           "--bootstrap-server", b, "--output", "json"))
    assert result == {"election_type": "PREFERRED", "partitions": [
        {"topic": topic, "partition": 0, "error": "ELECTION_NOT_NEEDED",
         "message": "Leader is already the preferred leader.", "result": "not_needed"}]}
