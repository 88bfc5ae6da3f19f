"""A parked Fetch woken by a Produce reads the append it was woken for from memory (the log's
tail, `partition_log_append.Tail`): its answer carries the bytes the segment file holds, and a
partition max bytes below the batch still gets the whole first batch (KIP-74), as from the file."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator

import pytest
from kio.schema.fetch.v12.response import FetchResponse

from suoi.api.dispatch import dispatch
from suoi.protocol.codec import decode_response
from suoi.testing import InProcessNode
from tests.unit.partition.test_fetch_park import TOPIC, _fetch, _log_end, _produce

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(scope="module")
def node() -> Iterator[InProcessNode]:
    with InProcessNode() as n:
        n.create_topic(TOPIC, partitions=1)
        yield n


async def _parked_then_woken(broker: object, offset: int, value: bytes, max_bytes: int) -> bytes:
    fetch = dispatch(broker, _fetch(offset, max_wait_ms=10_000, partition_max_bytes=max_bytes), "test")  # type: ignore[arg-type]
    assert inspect.isawaitable(fetch), "a fetch at the log end must park"
    assert isinstance(dispatch(broker, _produce(value), "test"), list)  # type: ignore[arg-type]
    parts = await asyncio.wait_for(asyncio.ensure_future(fetch), 5)
    return bytes(decode_response(b"".join(parts)[4:], FetchResponse).responses[0].partitions[0].records or b"")


async def _read_now(broker: object, offset: int) -> bytes:
    parts = dispatch(broker, _fetch(offset, max_wait_ms=0), "test")  # type: ignore[arg-type]
    if inspect.isawaitable(parts):
        parts = await parts
    return bytes(decode_response(b"".join(parts)[4:], FetchResponse).responses[0].partitions[0].records or b"")


def _tail_of(node: InProcessNode) -> object:
    leaders = node.broker.kraft.replicas.leaders  # type: ignore[union-attr]
    return next(p for tp, p in leaders.items() if tp.topic == TOPIC).plog._tail


@pytest.mark.parametrize("max_bytes", [1 << 20, 10])
def test_a_woken_fetch_answers_the_bytes_the_file_holds(node: InProcessNode, max_bytes: int) -> None:
    end = node.run(_log_end(node.broker))
    woken = node.run(_parked_then_woken(node.broker, end, b"tail %d" % max_bytes, max_bytes))
    tail = _tail_of(node)
    assert tail is not None and woken == tail.data  # type: ignore[attr-defined]
    assert node.run(_produce_more(node.broker))  # the tail moves on: a read at `end` is the file's now
    from_file = node.run(_read_now(node.broker, end))
    assert len(from_file) > len(woken) and from_file[:len(woken)] == woken
    assert woken[:8] == end.to_bytes(8, "big")  # the stored base offset, stamped at the append


async def _produce_more(broker: object) -> bool:
    return isinstance(dispatch(broker, _produce(b"after"), "test"), list)  # type: ignore[arg-type]
