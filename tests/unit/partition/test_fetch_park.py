"""A long-poll Fetch is parked on its partitions when it is handled, not when its task starts.

The handler returns the long-poll as a coroutine that the connection runs as a task one loop
iteration later. A Produce read in between (another connection's bytes in the same iteration)
used to append with nobody parked yet: the Fetch then sat out its whole max wait although the
data was there. Here both requests go through `dispatch` in one step of the node's loop.
"""

from __future__ import annotations

import asyncio
import datetime
import inspect
import struct
import time
from collections.abc import Iterator

import pytest
from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic
from kio.schema.fetch.v12.response import FetchResponse
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData

from suoi.api.dispatch import dispatch
from suoi.protocol.codec import decode_response, encode_request
from suoi.protocol.records import build_batch, iter_records
from suoi.testing import InProcessNode
from tests.conftest import wait_until
from tests.rawclient import RawClient

pytestmark = pytest.mark.timeout(30)
TOPIC = "park"


@pytest.fixture(scope="module")
def node() -> Iterator[InProcessNode]:
    with InProcessNode() as n:
        n.create_topic(TOPIC, partitions=1)
        yield n


def _fetch(offset: int, max_wait_ms: int, partition_max_bytes: int = 1 << 20) -> bytes:
    req = FetchRequest(cluster_id=None, replica_id=-1, max_wait=datetime.timedelta(milliseconds=max_wait_ms),
                       min_bytes=1, max_bytes=1 << 20, isolation_level=0, session_id=0, session_epoch=-1,
                       topics=(FetchTopic(topic=TOPIC, partitions=(FetchPartition(
                           partition=0, current_leader_epoch=-1, fetch_offset=offset, last_fetched_epoch=-1,
                           log_start_offset=-1, partition_max_bytes=partition_max_bytes),)),),
                       forgotten_topics_data=(), rack_id="")
    return encode_request(1, "t", req)[4:]


def _produce(value: bytes) -> bytes:
    req = ProduceRequest(transactional_id=None, acks=1, timeout=datetime.timedelta(seconds=5), topic_data=(
        TopicProduceData(name=TOPIC, partition_data=(PartitionProduceData(
            index=0, records=build_batch([(None, value)], timestamp_ms=int(time.time() * 1000))),)),))
    return encode_request(2, "t", req)[4:]


async def _fetch_then_produce(broker: object, offset: int) -> tuple[bytes, float]:
    fetch = dispatch(broker, _fetch(offset, max_wait_ms=10_000), "test")  # type: ignore[arg-type]
    assert inspect.isawaitable(fetch), "a fetch at the log end must park"
    started = time.monotonic()
    produced = dispatch(broker, _produce(b"same iteration"), "test")  # type: ignore[arg-type]
    assert isinstance(produced, list), "an acks=1 Produce is answered at once"
    parts = await asyncio.wait_for(asyncio.ensure_future(fetch), 5)
    return b"".join(parts)[4:], time.monotonic() - started


def test_produce_in_the_same_loop_iteration_wakes_the_fetch(node: InProcessNode) -> None:
    end = node.run(_log_end(node.broker))
    frame, waited = node.run(_fetch_then_produce(node.broker, end))
    body = decode_response(frame, FetchResponse)
    p = body.responses[0].partitions[0]
    assert p.error_code == 0
    assert [(r.offset, r.value) for r in iter_records(p.records or b"")] == [(end, b"same iteration")]
    assert waited < 2.0, f"the fetch waited {waited:.1f} s for data appended right after it was handled"


async def _log_end(broker: object) -> int:
    parts = dispatch(broker, _fetch(0, max_wait_ms=0), "test")  # type: ignore[arg-type]
    if inspect.isawaitable(parts):
        parts = await parts
    assert isinstance(parts, list)
    return int(decode_response(b"".join(parts)[4:], FetchResponse).responses[0].partitions[0].high_watermark)


async def _produce_now(broker: object, value: bytes) -> bool:
    return isinstance(dispatch(broker, _produce(value), "test"), list)  # type: ignore[arg-type]


async def _parked_and_connections(broker: object) -> tuple[int, int]:
    return broker.notifier.parked, len(broker.connections)  # type: ignore[attr-defined]


def test_a_client_closing_while_its_fetch_is_parked_leaves_nothing_parked(node: InProcessNode) -> None:
    """A parked Fetch is a notifier registration plus a timer (no task): when its connection
    closes, both must go (the registration would otherwise stay until the next append or the
    max wait, and a later wake-up would write to a closed transport)."""
    broker = node.broker
    end = node.run(_log_end(broker))
    idle = node.run(_parked_and_connections(broker))
    assert idle[0] == 0
    clients = [RawClient(node.bootstrap) for _ in range(3)]
    for c in clients:
        c.send_bytes(struct.pack(">i", len(frame := _fetch(end, max_wait_ms=20_000))) + frame)
    wait_until(lambda: node.run(_parked_and_connections(broker)) == (3, idle[1] + 3), timeout=5,
               message="three fetches parked")
    for c in clients:
        c.close()
    wait_until(lambda: node.run(_parked_and_connections(broker)) == (0, idle[1]), timeout=5,
               message="the closed connections' fetches unparked")
    # the partition still serves: an append wakes a new fetch, whose answer carries it
    with RawClient(node.bootstrap) as c:
        c.send_bytes(struct.pack(">i", len(frame := _fetch(end, max_wait_ms=20_000))) + frame)
        wait_until(lambda: node.run(_parked_and_connections(broker))[0] == 1, timeout=5, message="parked")
        assert node.run(_produce_now(broker, b"after the close"))
        started = time.monotonic()
        body = decode_response(c.recv_frame(), FetchResponse)
        assert time.monotonic() - started < 5
    p = body.responses[0].partitions[0]
    assert [r.value for r in iter_records(p.records or b"")] == [b"after the close"]
    assert node.run(_parked_and_connections(broker))[0] == 0
