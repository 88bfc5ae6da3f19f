"""`suoi metadata-quorum` and `suoi broker-api-versions` against real KRaft nodes: two voters and
a broker-only node. A broker that does not lead the quorum forwards DescribeQuorum to the
active controller; a follower's CONTROLLER listener names the leader, which the tool asks."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from suoi.cli.tables import split_kafka_table
from tests.conftest import wait_until
from tests.e2e.cli import fails, ok
from tests.e2e.kraft_nodes import CLUSTER_ID, KRaftNodes, kraft_nodes


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KRaftNodes]:
    with kraft_nodes(tmp_path_factory.mktemp("quorum-tools")) as started:
        yield started


def status_lines(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        assert line.startswith(f"{key}:".ljust(24)), f"not Kafka's layout: {line!r}"
        out[key] = value.strip()
    return out


def status(*where: str) -> dict[str, str]:
    return status_lines(ok("metadata-quorum", *where, "describe", "--status"))


def test_describe_status_through_any_broker(nodes: KRaftNodes) -> None:
    first = status("--bootstrap-server", nodes.nodes[3].bootstrap)  # broker-only: forwards
    assert list(first) == ["ClusterId", "LeaderId", "LeaderEpoch", "HighWatermark", "MaxFollowerLag",
                           "MaxFollowerLagTimeMs", "CurrentVoters", "CurrentObservers"]
    assert first["ClusterId"] == CLUSTER_ID
    leader = int(first["LeaderId"])
    assert leader in (1, 2) and int(first["LeaderEpoch"]) >= 1
    assert int(first["HighWatermark"]) > 0  # the brokers' registrations are committed
    assert json.loads(first["CurrentVoters"]) == [
        {"id": i, "endpoints": [f"CONTROLLER://{nodes.controller(i)}"]} for i in (1, 2)]
    assert json.loads(first["CurrentObservers"]) == [{"id": 3}]
    assert int(first["MaxFollowerLag"]) >= 0 and int(first["MaxFollowerLagTimeMs"]) >= -1
    follower = 3 - leader
    via_follower = status("--bootstrap-server", nodes.nodes[follower].bootstrap)  # a follower voter forwards too
    assert (via_follower["LeaderId"], via_follower["ClusterId"]) == (str(leader), CLUSTER_ID)
    via_controller = status("--bootstrap-controller", nodes.controller(follower))  # follows the leader named
    assert via_controller["LeaderId"] == str(leader)
    assert int(via_controller["HighWatermark"]) >= int(first["HighWatermark"])


def test_describe_replication_from_a_controller_listener(nodes: KRaftNodes) -> None:
    before_ms = int(time.time() * 1000)

    def table() -> list[list[str]]:
        return split_kafka_table(ok("metadata-quorum", "--bootstrap-controller",
                                    f"{nodes.controller(1)},{nodes.controller(2)}", "describe", "--replication"))

    rows = table()
    assert rows[0] == ["NodeId", "DirectoryId", "LogEndOffset", "Lag", "LastFetchTimestamp",
                       "LastCaughtUpTimestamp", "Status"]
    assert [r[6] for r in rows[1:]] == ["Leader", "Follower", "Observer"]
    leader, follower, observer = rows[1:]
    assert sorted([leader[0], follower[0]]) == ["1", "2"] and observer[0] == "3"
    assert {r[1] for r in rows[1:]} == {"AAAAAAAAAAAAAAAAAAAAAA"}  # no directory ids: Kafka's zero Uuid
    assert leader[3] == "0"
    for r in (follower, observer):
        assert int(r[3]) == int(leader[2]) - int(r[2]) >= 0
        assert abs(int(r[4]) - before_ms) < 60_000  # they fetch all the time: recent wall-clock times
    wait_until(lambda: all(r[3] == "0" for r in table()[1:]), timeout=10, message="followers caught up")
    human = split_kafka_table(ok("metadata-quorum", "--bootstrap-server", nodes.nodes[1].bootstrap, "describe",
                                 "--replication", "--human-readable"))
    assert [r[6] for r in human[1:]] == ["Leader", "Follower", "Observer"]
    assert human[3][4].endswith(" ms ago") and int(human[3][4].split()[0]) < 60_000


def test_describe_flags_and_a_node_without_process_roles(nodes: KRaftNodes, bootstrap: str) -> None:
    assert "One of --status or --replication" in fails("metadata-quorum", "--bootstrap-server",
                                                       nodes.nodes[1].bootstrap, "describe")
    # a node without process.roles is its own one-voter quorum (with no controller endpoint)
    status = ok("metadata-quorum", "--bootstrap-server", bootstrap, "describe", "--status")
    assert "LeaderId:               1\n" in status and 'CurrentVoters:          [{"id": 1}]\n' in status


def test_broker_api_versions_lists_every_broker(nodes: KRaftNodes) -> None:
    import suoi.api.dispatch  # noqa: F401  (registers every handler)
    from suoi.api.api_versions import QUORUM_API_KEYS
    from suoi.api.registry import REGISTRY

    assert len(REGISTRY) > 40
    out = ok("broker-api-versions", "--bootstrap-server", nodes.nodes[3].bootstrap)
    blocks = out.split("\n)\n")
    assert blocks[-1] == "" and len(blocks) == 4, out
    assert [b.splitlines()[0] for b in blocks[:3]] == [
        f"{nodes.nodes[i].bootstrap} (id: {i} rack: null isFenced: false) -> (" for i in (1, 2, 3)]
    for block in blocks[:3]:
        assert all(line.startswith("\t") for line in block.splitlines()[1:])
        entries = [line.removeprefix("\t").rstrip(",") for line in block.splitlines()[1:]]
        keys = [int(e.split("(", 1)[1].split(")", 1)[0]) for e in entries]
        assert keys == sorted(keys)
        for spec in REGISTRY.values():
            if spec.api_key in QUORUM_API_KEYS - {55}:
                continue
            lo, hi = spec.advertised_min, spec.max_version
            versions = str(lo) if lo == hi else f"{lo} to {hi}"
            assert any(e.startswith(f"{spec.name}({spec.api_key}): {versions} [usable: ") for e in entries), spec
        assert "ApiVersions(18): 0 to 4 [usable: 4]" in entries
        assert "DescribeQuorum(55): 0 to 2 [usable: 2]" in entries  # every KRaft broker answers it
        assert "ShareFetch(78): UNSUPPORTED" in entries
    as_json = json.loads(ok("broker-api-versions", "--bootstrap-server", nodes.nodes[1].bootstrap, "--output", "json"))
    assert [b["id"] for b in as_json] == [1, 2, 3]
    [produce] = [e for e in as_json[0]["apis"] if e["api_key"] == 0]
    assert (produce["name"], produce["min_version"], produce["usable"]) == ("Produce", REGISTRY[0].advertised_min,
                                                                            REGISTRY[0].max_version)
