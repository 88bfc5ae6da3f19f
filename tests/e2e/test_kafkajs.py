"""kafkajs (Node.js, the real client, unchanged) against a real broker process.

`tests/js/roundtrip.js` does the kafkajs side and prints a JSON summary; this module
starts the broker, runs it with node, and checks the summary and the broker's state with
the Python clients:

- group: kafkajs admin creates the topic; its producer sends keyed messages with headers
  (one send gzip); a kafkajs consumer group (JoinGroup/SyncGroup/Heartbeat/OffsetFetch/
  OffsetCommit/LeaveGroup) reads all of them in order per partition and commits; a second
  consumer in the group resumes at the committed offsets. Committed offsets are checked with
  confluent-kafka's AdminClient too.
- txn: kafkajs' transactional producer commits, aborts (both with sendOffsets) and commits;
  confluent-kafka read_committed/read_uncommitted consumers and kafkajs' own consumers see
  exactly the right records; only the committed transaction's offsets are the group's.

`make tools` installs kafkajs (`npm ci` in tests/js); node is required, not optional.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import OFFSET_INVALID, ConsumerGroupState, ConsumerGroupTopicPartitions, Message, TopicPartition
from confluent_kafka.admin import AdminClient

from suoi.testing import EmbeddedBroker
from tests.e2e.txn_helpers import READ_COMMITTED, ck_read_to_end, latest

pytestmark = pytest.mark.timeout(60)

JS_DIR = Path(__file__).resolve().parents[1] / "js"
SCRIPT = JS_DIR / "roundtrip.js"
OVERRIDES = {"group.initial.rebalance.delay.ms": "0"}
SCRIPT_TIMEOUT_S = 20


def run_roundtrip(broker: EmbeddedBroker, *args: str) -> dict[str, Any]:
    node = shutil.which("node")
    assert node, "node is not on PATH (this test needs Node.js >= 18 and `make tools`)"
    assert (JS_DIR / "node_modules" / "kafkajs").is_dir(), "kafkajs is not installed: run `make tools`"
    env = {**os.environ, "KAFKAJS_NO_PARTITIONER_WARNING": "1"}
    cmd = [node, str(SCRIPT), "--bootstrap", broker.bootstrap,
           "--timeout-ms", str((SCRIPT_TIMEOUT_S - 2) * 1000), *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=SCRIPT_TIMEOUT_S, env=env, cwd=JS_DIR)
    except subprocess.TimeoutExpired as e:
        stderr = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else e.stderr  # bytes on timeout
        raise AssertionError(f"kafkajs run timed out\nstderr:\n{stderr}\nbroker log:\n{broker.logs()[-4000:]}") from e
    if proc.returncode != 0:
        raise AssertionError(f"kafkajs run exited {proc.returncode}\nstderr:\n{proc.stderr}\n"
                             f"broker log:\n{broker.logs()[-4000:]}")
    # no kafkajs warnings or errors either: it logs at WARN and above to stderr. Except three retriable
    # answers Apache Kafka gives too, which kafkajs logs before it retries: CONCURRENT_TRANSACTIONS to
    # an AddPartitionsToTxn sent while the previous transaction's markers are being written, and
    # COORDINATOR_LOAD_IN_PROGRESS to a JoinGroup while a just-created __consumer_offsets partition loads
    # (kafkajs then "restarts the consumer"), and COORDINATOR_NOT_AVAILABLE to a FindCoordinator while an
    # internal topic is created.
    retried = ("another concurrent operation on the same transaction was ongoing",
               "The coordinator is loading", "Restarting the consumer in", "The group coordinator is not available")
    logged = [ln for ln in proc.stderr.splitlines() if "[kafkajs" in ln and not any(r in ln for r in retried)]
    assert not logged, proc.stderr
    return json.loads(proc.stdout)


def by_partition(received: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in received:
        out[r["partition"]].append(r)
    return dict(out)


def committed_offsets(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    res = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group, tps)],
                                            request_timeout=10)[group].result(15)
    assert all(tp.error is None for tp in res.topic_partitions), res.topic_partitions
    return {tp.partition: tp.offset for tp in res.topic_partitions}


def check_consumer_run(run: dict[str, Any], topic: str, partitions: int) -> None:
    """The kafkajs consumer's group life: one join as leader with every partition, heartbeats,
    an explicit commit of next offsets, a Stable group while it ran, no crash."""
    events = run["events"]
    # a JoinGroup answered COORDINATOR_LOAD_IN_PROGRESS (retriable; the offsets partition was created a
    # moment before) is a "crash" kafkajs recovers from by rejoining: any other crash fails the test
    assert [c for c in events["crashes"] if "The coordinator is loading" not in c] == []
    assert len(events["joins"]) == 1, events["joins"]
    join = events["joins"][0]
    assert join["isLeader"] is True
    assert join["groupProtocol"] == "RoundRobinAssigner"
    assert join["assignment"] == {topic: list(range(partitions))}
    assert events["heartbeats"] >= 1
    assert run["describedGroup"] == {"state": "Stable", "protocolType": "consumer",
                                     "protocol": "RoundRobinAssigner", "members": 1}
    last = {p: rs[-1]["offset"] + 1 for p, rs in by_partition(run["received"]).items()}
    assert {c["partition"]: c["offset"] for c in run["committed"]} == last
    # one OffsetCommit, of exactly those offsets (kafkajs' COMMIT_OFFSETS event)
    assert len(events["commits"]) == 1, events["commits"]
    assert [t["topic"] for t in events["commits"][0]] == [topic]
    assert {int(p["partition"]): int(p["offset"]) for p in events["commits"][0][0]["partitions"]} == last


def expected_message(i: int, phase: str) -> tuple[str, str, dict[str, Any]]:
    return (f"key-{i % 7}", f"{phase} value {i} " + "x" * (i % 13),
            {"idx": str(i), "phase": phase, "src": "kafkajs", "multi": ["a", "b"]})


def text(m: Message) -> str:
    value = m.value()
    assert value is not None
    return value.decode()


def check_topic(summary: dict[str, Any], partitions: int) -> None:
    assert summary["topic"] == {"created": True, "partitions": [
        {"partition": p, "leader": 1, "errorCode": 0} for p in range(partitions)]}


def check_acks(sends: list[list[dict[str, Any]]], batches: list[range],
               received: dict[int, list[dict[str, Any]]]) -> None:
    """Each send's per-partition baseOffset is the offset its first record was read back at."""
    for acks, batch in zip(sends, batches, strict=True):
        parts = {p for p, rs in received.items() if any(int(r["headers"]["idx"]) in batch for r in rs)}
        assert sorted(a["partition"] for a in acks) == sorted(parts)
        for a in acks:
            assert a["errorCode"] == 0
            first = next(r for r in received[a["partition"]] if int(r["headers"]["idx"]) in batch)
            assert int(a["baseOffset"]) == first["offset"]


def test_kafkajs_produce_consume_group_commit(make_broker: Callable[..., EmbeddedBroker]) -> None:
    broker = make_broker(overrides=OVERRIDES)
    suffix = uuid.uuid4().hex[:8]
    topic, group = f"kafkajs-{suffix}", f"kafkajs-group-{suffix}"
    partitions, count, extra = 3, 30, 6
    before = int(time.time() * 1000)
    summary = run_roundtrip(broker, "--mode", "group", "--topic", topic, "--group", group,
                            "--partitions", str(partitions), "--count", str(count), "--extra", str(extra))
    after = int(time.time() * 1000)
    check_topic(summary, partitions)

    first, second = summary["first"], summary["second"]
    got = by_partition(first["received"])
    assert sum(len(rs) for rs in got.values()) == count
    assert sorted(got) == list(range(partitions))  # murmur2 spreads the 7 keys over all of them
    for p, rs in got.items():
        assert [r["offset"] for r in rs] == list(range(len(rs))), f"partition {p}: offsets"
        indices = [int(r["headers"]["idx"]) for r in rs]
        assert indices == sorted(indices), f"partition {p}: order"
        for r, i in zip(rs, indices, strict=True):
            assert (r["key"], r["value"], r["headers"]) == expected_message(i, "first")
            assert r["topic"] == topic
            assert before - 1000 <= r["timestamp"] <= after + 1000
    assert sorted(int(r["headers"]["idx"]) for r in first["received"]) == list(range(count))
    # one key, one partition (kafkajs' murmur2 partitioner)
    key_parts: dict[str, set[int]] = defaultdict(set)
    for r in first["received"]:
        key_parts[r["key"]].add(r["partition"])
    assert all(len(ps) == 1 for ps in key_parts.values()), key_parts
    third = -(-count // 3)
    check_acks(summary["sends"], [range(0, third), range(third, 2 * third), range(2 * third, count)], got)
    check_consumer_run(first, topic, partitions)
    ends = {p: len(rs) for p, rs in got.items()}

    # the second consumer resumed at the committed offsets: only the new messages
    got2 = by_partition(second["received"])
    assert sorted(int(r["headers"]["idx"]) for r in second["received"]) == list(range(count, count + extra))
    for p, rs in got2.items():
        assert [r["offset"] for r in rs] == list(range(ends.get(p, 0), ends.get(p, 0) + len(rs)))
        for r in rs:
            assert (r["key"], r["value"], r["headers"]) == expected_message(int(r["headers"]["idx"]), "second")
        ends[p] = ends.get(p, 0) + len(rs)
    check_acks(summary["extraSends"], [range(count, count + extra)], got2)
    check_consumer_run(second, topic, partitions)

    # committed offsets: as kafkajs' admin and confluent-kafka's AdminClient see them
    expected = {p: ends[p] for p in range(partitions)}
    assert {o["partition"]: o["offset"] for o in summary["adminFetchedOffsets"]} == expected
    assert committed_offsets(broker.bootstrap, group, topic, partitions) == expected
    assert summary["listedGroups"] == [{"groupId": group, "protocolType": "consumer"}]

    # both consumers left (LeaveGroup): the group is Empty with its offsets kept
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    desc = admin.describe_consumer_groups([group], request_timeout=10)[group].result(15)
    assert desc.state == ConsumerGroupState.EMPTY
    assert desc.members == []


def test_kafkajs_transactional_producer(make_broker: Callable[..., EmbeddedBroker]) -> None:
    broker = make_broker(overrides=OVERRIDES)
    suffix = uuid.uuid4().hex[:8]
    topic, group, tid = f"kafkajs-txn-{suffix}", f"kafkajs-txn-group-{suffix}", f"kafkajs-tid-{suffix}"
    partitions = 2
    summary = run_roundtrip(broker, "--mode", "txn", "--topic", topic, "--group", group, "--txn-id", tid,
                            "--partitions", str(partitions))
    check_topic(summary, partitions)
    names = ["committed-1", "aborted", "committed-2"]
    assert [(t["name"], t["end"]) for t in summary["transactions"]] == \
        list(zip(names, ["commit", "abort", "commit"], strict=True))
    # each transaction: 3 records per partition, then its marker
    for n, t in enumerate(summary["transactions"]):
        assert sorted((a["partition"], a["errorCode"], int(a["baseOffset"])) for a in t["acks"]) == \
            [(p, 0, 4 * n) for p in range(partitions)]

    def values(part: int, *txns: str) -> list[str]:
        return [f"{name}-{part}-{i}" for name in txns for i in range(3)]

    data_offsets = [o for n in range(3) for o in range(4 * n, 4 * n + 3)]  # 3, 7, 11 are markers
    for p in range(partitions):
        assert latest(broker.bootstrap, topic, p) == 12
        assert latest(broker.bootstrap, topic, p, READ_COMMITTED) == 12

    committed = ck_read_to_end(broker.bootstrap, topic, list(range(partitions)), isolation="read_committed")
    everything = ck_read_to_end(broker.bootstrap, topic, list(range(partitions)), isolation="read_uncommitted")
    for p in range(partitions):
        got = [m for m in committed if m.partition() == p]
        assert [text(m) for m in got] == values(p, "committed-1", "committed-2")
        assert [m.offset() for m in got] == data_offsets[:3] + data_offsets[6:]
        assert [m.headers() for m in got] == [[("txn", n.encode())] for n in ("committed-1", "committed-2")
                                              for _ in range(3)]
        got_all = [m for m in everything if m.partition() == p]
        assert [(m.offset(), text(m)) for m in got_all] == \
            list(zip(data_offsets, values(p, *names), strict=True))

    # kafkajs' own consumers: read_committed skips the aborted records, read_uncommitted does not
    for run, txns in ((summary["readCommitted"], ["committed-1", "committed-2"]),
                      (summary["readUncommitted"], names)):
        js_got = by_partition(run["received"])
        assert sorted(js_got) == list(range(partitions))
        for p, rs in js_got.items():
            assert [r["value"] for r in rs] == values(p, *txns)
            assert [r["offset"] for r in rs] == [o for o, v in zip(data_offsets, values(p, *names), strict=True)
                                                 if v in values(p, *txns)]
            assert all(r["headers"] == {"txn": r["value"].rsplit("-", 2)[0]} for r in rs)
        check_consumer_run(run, topic, partitions)

    # sendOffsets: the committed transaction's offset (7) is the group's, the aborted one's (99) never was
    assert committed_offsets(broker.bootstrap, group, topic, partitions) == {0: 7, 1: OFFSET_INVALID}
