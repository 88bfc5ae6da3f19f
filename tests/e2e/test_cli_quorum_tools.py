"""`suoi metadata-quorum` and `suoi broker-api-versions` against real KRaft nodes: a voter and a
broker-only node (which forwards DescribeQuorum to the active controller)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from suoi.cli.tables import split_kafka_table
from suoi.testing import EmbeddedBroker
from tests.e2e.cli import fails, ok
from tests.e2e.kraft_pair import CLUSTER_ID, kraft_pair


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmbeddedBroker, EmbeddedBroker, int]]:
    with kraft_pair(tmp_path_factory.mktemp("quorum-tools")) as nodes:
        yield nodes


def status_lines(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        assert line.startswith(f"{key}:".ljust(24)), f"not Kafka's layout: {line!r}"
        out[key] = value.strip()
    return out


def test_describe_status_through_a_broker_only_node(pair: tuple[EmbeddedBroker, EmbeddedBroker, int]) -> None:
    voter, broker, cport = pair
    status = status_lines(ok("metadata-quorum", "--bootstrap-server", broker.bootstrap, "describe", "--status"))
    assert list(status) == ["ClusterId", "LeaderId", "LeaderEpoch", "HighWatermark", "MaxFollowerLag",
                            "MaxFollowerLagTimeMs", "CurrentVoters", "CurrentObservers"]
    assert status["ClusterId"] == CLUSTER_ID
    assert status["LeaderId"] == "1"
    assert int(status["LeaderEpoch"]) >= 1
    assert int(status["HighWatermark"]) > 0  # registrations of both brokers are committed
    assert status["MaxFollowerLag"] == "0" and status["MaxFollowerLagTimeMs"] == "0"  # the one voter leads
    assert json.loads(status["CurrentVoters"]) == [{"id": 1, "endpoints": [f"CONTROLLER://127.0.0.1:{cport}"]}]
    assert json.loads(status["CurrentObservers"]) == [{"id": 2}]


def test_describe_replication_from_the_controller_listener(pair: tuple[EmbeddedBroker, EmbeddedBroker, int]) -> None:
    voter, broker, cport = pair
    before_ms = int(time.time() * 1000)
    rows = split_kafka_table(ok("metadata-quorum", "--bootstrap-controller", f"127.0.0.1:{cport}",
                                "describe", "--replication"))
    assert rows[0] == ["NodeId", "DirectoryId", "LogEndOffset", "Lag", "LastFetchTimestamp",
                       "LastCaughtUpTimestamp", "Status"]
    by_status = {r[6]: r for r in rows[1:]}
    assert sorted(by_status) == ["Leader", "Observer"] and len(rows) == 3
    leader, observer = by_status["Leader"], by_status["Observer"]
    assert leader[0] == "1" and observer[0] == "2"
    assert leader[1] == observer[1] == "AAAAAAAAAAAAAAAAAAAAAA"  # no directory ids: Kafka's zero Uuid
    assert leader[3] == "0"
    assert int(observer[3]) == int(leader[2]) - int(observer[2]) >= 0
    # the observer fetches all the time: its last fetch is recent wall-clock time
    assert abs(int(observer[4]) - before_ms) < 60_000
    human = split_kafka_table(ok("metadata-quorum", "--bootstrap-server", voter.bootstrap, "describe",
                                 "--replication", "--human-readable"))
    assert [r[6] for r in human[1:]] == ["Leader", "Observer"]
    assert human[2][4].endswith(" ms ago") and int(human[2][4].split()[0]) < 60_000


def test_describe_flags_and_a_standalone_node(pair: tuple[EmbeddedBroker, EmbeddedBroker, int],
                                              bootstrap: str) -> None:
    voter, _, _ = pair
    assert "One of --status or --replication" in fails("metadata-quorum", "--bootstrap-server", voter.bootstrap,
                                                       "describe")
    assert "no metadata quorum" in fails("metadata-quorum", "--bootstrap-server", bootstrap, "describe", "--status")


def test_broker_api_versions_lists_every_broker(pair: tuple[EmbeddedBroker, EmbeddedBroker, int]) -> None:
    import suoi.api.dispatch  # noqa: F401  (registers every handler)
    from suoi.api.api_versions import QUORUM_API_KEYS
    from suoi.api.registry import REGISTRY

    assert len(REGISTRY) > 40
    voter, broker, _ = pair
    out = ok("broker-api-versions", "--bootstrap-server", broker.bootstrap)
    blocks = out.split("\n)\n")
    assert blocks[-1] == "" and len(blocks) == 3, out
    heads = [b.splitlines()[0] for b in blocks[:2]]
    assert heads == [f"{voter.bootstrap} (id: 1 rack: null isFenced: false) -> (",
                     f"{broker.bootstrap} (id: 2 rack: null isFenced: false) -> ("]
    for block in blocks[:2]:
        entries = [line.removeprefix("\t").rstrip(",") for line in block.splitlines()[1:]]
        assert all(line.startswith("\t") for line in block.splitlines()[1:])
        keys = [int(e.split("(", 1)[1].split(")", 1)[0]) for e in entries]
        assert keys == sorted(keys)
        for spec in REGISTRY.values():
            if spec.api_key in QUORUM_API_KEYS - {55}:
                continue
            lo, hi = spec.advertised_min, spec.max_version
            versions = str(lo) if lo == hi else f"{lo} to {hi}"
            assert any(e.startswith(f"{spec.name}({spec.api_key}): {versions} [usable: ") for e in entries), spec
        assert "ApiVersions(18): 0 to 4 [usable: 4]" in entries
        assert "DescribeQuorum(55): 0 to 2 [usable: 2]" in entries  # the broker-only node forwards it
        assert "ShareFetch(78): UNSUPPORTED" in entries
