"""What a consumer's Fetch reads, partition by partition, and the long-poll over several.

A consumer at the end of what it may read (the high watermark, or the last stable offset with
read_committed) gets its empty answer without a walk of the log: the offsets it carries must
be the log's all the same, and anything outside the log still an error. A long-poll over
several partitions woken by one answers every partition and leaves nothing parked. Fetch v12+
partitions are read as kio gives them, older ones through `FetchPartition`: same answers.
"""

from __future__ import annotations

import asyncio
import datetime
import inspect
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kio.schema.fetch.v11 import request as fetch_v11
from kio.schema.fetch.v11.response import FetchResponse as FetchResponseV11
from kio.schema.fetch.v12 import request as fetch_v12
from kio.schema.fetch.v12.response import FetchResponse
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData

from suoi.api.dispatch import dispatch
from suoi.log.manager import LogManager
from suoi.model import ErrorCode
from suoi.protocol.codec import decode_response, encode_request
from suoi.protocol.records import build_batch, iter_records
from suoi.testing import InProcessNode
from tests.unit.partition.test_partition import F1, LEADER, Host, batch, follower_fetch, lead, logs, values

pytestmark = pytest.mark.timeout(30)
__all__ = ["logs"]  # the fixture, from test_partition
TOPIC = "reads"


def test_a_consumer_at_the_high_watermark_gets_nothing_and_the_log_offsets(logs: LogManager) -> None:
    host = Host()
    p = lead(logs, host, isr=(LEADER, F1), replicas=(LEADER, F1))
    assert p.append_records(batch(b"a", b"b"), acks=1).error == ErrorCode.none
    at_hw = p.read(0, 1 << 20)  # HW 0: the follower has not fetched yet
    assert (at_hw.error, at_hw.records, at_hw.high_watermark, at_hw.last_stable_offset, at_hw.log_start_offset,
            at_hw.aborted, at_hw.answer_now) == (ErrorCode.none, b"", 0, 0, 0, None, False)
    assert p.read(0, 1 << 20, read_committed=True).aborted == []
    assert follower_fetch(p, F1, 0) == ErrorCode.none and follower_fetch(p, F1, 2) == ErrorCode.none
    assert values(p.read(0, 1 << 20).records) == [b"a", b"b"]
    caught_up = p.read(2, 1 << 20)
    assert (caught_up.records, caught_up.high_watermark, caught_up.last_stable_offset) == (b"", 2, 2)
    beyond = p.read(3, 1 << 20)  # past the log end: still refused
    assert (beyond.error, beyond.answer_now) == (ErrorCode.offset_out_of_range, True)


def test_read_committed_stops_at_an_open_transaction(logs: LogManager) -> None:
    host = Host()
    p = lead(logs, host, isr=(LEADER,), min_isr=1)
    assert p.append_records(batch(b"plain"), acks=1).error == ErrorCode.none
    open_txn = build_batch([(None, b"in txn")], producer_id=7, producer_epoch=0, base_sequence=0,
                           is_transactional=True)
    assert p.append_records(open_txn, acks=1).error == ErrorCode.none
    assert (p.plog.high_watermark, p.plog.last_stable_offset) == (2, 1)
    committed = p.read(1, 1 << 20, read_committed=True)  # at the LSO, below the HW
    assert (committed.records, committed.high_watermark, committed.last_stable_offset, committed.aborted) == (
        b"", 2, 1, [])
    uncommitted = p.read(1, 1 << 20)
    assert values(uncommitted.records) == [b"in txn"] and uncommitted.last_stable_offset == 1


@pytest.fixture(scope="module")
def node() -> Iterator[InProcessNode]:
    with InProcessNode() as n:
        n.create_topic(TOPIC, partitions=3)
        yield n


def _fetch(offsets: dict[int, int], max_wait_ms: int, version: int = 12) -> bytes:
    kio = fetch_v12 if version == 12 else fetch_v11
    fields: dict[str, Any] = {"last_fetched_epoch": -1} if version == 12 else {}
    req = kio.FetchRequest(
        replica_id=-1, max_wait=datetime.timedelta(milliseconds=max_wait_ms), min_bytes=1, max_bytes=1 << 20,
        isolation_level=0, session_id=0, session_epoch=-1, forgotten_topics_data=(), rack_id="",
        topics=(kio.FetchTopic(topic=TOPIC, partitions=tuple(kio.FetchPartition(
            partition=p, current_leader_epoch=-1, fetch_offset=o, log_start_offset=-1, partition_max_bytes=1 << 20,
            **fields) for p, o in offsets.items())),), **({"cluster_id": None} if version == 12 else {}))
    return encode_request(1, "t", req)[4:]


def _produce(partition: int, value: bytes) -> bytes:
    req = ProduceRequest(transactional_id=None, acks=1, timeout=datetime.timedelta(seconds=5), topic_data=(
        TopicProduceData(name=TOPIC, partition_data=(PartitionProduceData(
            index=partition, records=build_batch([(None, value)], timestamp_ms=int(time.time() * 1000))),)),))
    return encode_request(2, "t", req)[4:]


async def _answer(broker: Any, frame: bytes) -> bytes:
    parts = dispatch(broker, frame, "test")
    if inspect.isawaitable(parts):
        parts = await asyncio.wait_for(parts, 5)
    assert isinstance(parts, list)
    return b"".join(parts)[4:]


async def _log_ends(broker: Any) -> dict[int, int]:
    body = decode_response(await _answer(broker, _fetch({0: 0, 1: 0, 2: 0}, 0)), FetchResponse)
    return {int(p.partition_index): int(p.high_watermark) for p in body.responses[0].partitions}


async def _park_then_produce(broker: Any, ends: dict[int, int], partition: int) -> tuple[bytes, int, int]:
    fetch = dispatch(broker, _fetch(ends, max_wait_ms=10_000), "test")
    assert inspect.isawaitable(fetch), "a fetch at the log ends must park"
    parked = broker.notifier.parked  # one registration per partition
    assert isinstance(dispatch(broker, _produce(partition, b"to %d" % partition), "test"), list)
    parts = await asyncio.wait_for(asyncio.ensure_future(fetch), 5)
    return b"".join(parts)[4:], parked, broker.notifier.parked


def test_one_append_wakes_a_fetch_of_three_partitions_which_answers_all_three(node: InProcessNode) -> None:
    for woken in (1, 0):  # a partition in the middle, then the first
        ends = node.run(_log_ends(node.broker))
        frame, parked, left = node.run(_park_then_produce(node.broker, ends, woken))
        assert (parked, left) == (3, 0), "parked on its three partitions, and nothing left once answered"
        answer = {int(p.partition_index): p for p in decode_response(frame, FetchResponse).responses[0].partitions}
        assert sorted(answer) == [0, 1, 2]
        for index, p in answer.items():
            assert p.error_code == 0
            got = [(r.offset, r.value) for r in iter_records(p.records or b"")]
            if index == woken:
                assert got == [(ends[index], b"to %d" % index)] and p.high_watermark == ends[index] + 1
            else:
                assert got == [] and p.high_watermark == p.last_stable_offset == ends[index]


def test_fetch_v11_and_v12_partitions_answer_alike(node: InProcessNode) -> None:
    """v12's partitions are kio's own objects, v11's are copied into `FetchPartition`."""
    broker = node.broker
    ends = node.run(_log_ends(broker))
    node.run(_answer(broker, _produce(2, b"for both")))
    offsets = {0: ends[0], 2: ends[2]}
    v12 = decode_response(node.run(_answer(broker, _fetch(offsets, 0))), FetchResponse).responses[0].partitions
    v11 = decode_response(node.run(_answer(broker, _fetch(offsets, 0, version=11))),
                          FetchResponseV11).responses[0].partitions
    for answer in (v11, v12):
        summary = [(int(p.partition_index), p.error_code, int(p.high_watermark),
                    [r.value for r in iter_records(p.records or b"")]) for p in answer]
        assert summary == [(0, 0, ends[0], []), (2, 0, ends[2] + 1, [b"for both"])]
