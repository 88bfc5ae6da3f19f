"""Long-poll Fetch against a real broker: parked fetches wake on produce, time out after
max_wait with empty records, respect min_bytes, and survive their client going away."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator

import pytest
from kio.schema.errors import ErrorCode
from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic

from suoi.protocol.records import build_batch, iter_records
from suoi.testing import EmbeddedBroker
from tests.integration.support import (
    LogWatch,
    assert_serves,
    create_topic,
    fetch_req,
    module_broker,
    ms,
    produce,
    unique,
)
from tests.rawclient import RawClient

pytestmark = pytest.mark.timeout(30)
#: max_wait of the fetches that data must wake: an answer well before it was woken, not timed out.
#: Long, so that a loaded machine's slow round trips never look like a max_wait expiry.
WAKE_MAX_WAIT_MS = 8000
WOKEN_WITHIN_S = WAKE_MAX_WAIT_MS / 1000 / 2


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    yield from module_broker(tmp_path_factory)


def now_ms() -> int:
    return int(time.time() * 1000)


def no_response_within(c: RawClient, seconds: float) -> bool:
    """True if the broker sends nothing on `c` for `seconds` (the fetch is parked)."""
    c.sock.settimeout(seconds)
    try:
        c.sock.recv(1, socket.MSG_PEEK)  # data, or b"" if the broker closed the connection
    except TimeoutError:
        return True
    finally:
        c.sock.settimeout(10)
    return False


def send_fetch(c: RawClient, request: FetchRequest) -> int:
    c.correlation_id += 1
    c.send_bytes(c.encode(request, correlation_id=c.correlation_id))
    return c.correlation_id


def recv_fetch(c: RawClient, request: FetchRequest, correlation_id: int):  # type: ignore[no-untyped-def]
    cid, body = c.decode(request, c.recv_frame())
    assert cid == correlation_id
    assert body.error_code == ErrorCode.none
    return body


def test_parked_fetch_wakes_on_produce(broker: EmbeddedBroker) -> None:
    topic = unique("lp-wake")
    create_topic(broker.bootstrap, topic)
    request = fetch_req(topic, 0, 0, max_wait_ms=WAKE_MAX_WAIT_MS, min_bytes=1)
    with RawClient(broker.bootstrap) as c:
        started = time.monotonic()
        cid = send_fetch(c, request)
        assert no_response_within(c, 0.2), "fetch at LEO answered before max_wait without data"
        produced_at = time.monotonic()
        part = produce(broker.bootstrap, topic, 0, build_batch([(b"k", b"wake up")], timestamp_ms=now_ms()))
        assert (part.error_code, part.base_offset) == (ErrorCode.none, 0)
        body = recv_fetch(c, request, cid)
        done = time.monotonic()
    p = body.responses[0].partitions[0]
    assert p.error_code == ErrorCode.none
    assert [(r.offset, r.value) for r in iter_records(p.records or b"")] == [(0, b"wake up")]
    assert p.high_watermark == 1
    assert done - started < WOKEN_WITHIN_S, f"long-poll took {done - started:.3f}s although data arrived"
    assert done - produced_at < WOKEN_WITHIN_S


def test_fetch_without_data_returns_after_max_wait(broker: EmbeddedBroker) -> None:
    topic = unique("lp-timeout")
    create_topic(broker.bootstrap, topic)
    request = fetch_req(topic, 0, 0, max_wait_ms=300, min_bytes=1)
    with RawClient(broker.bootstrap) as c:
        started = time.monotonic()
        body = recv_fetch(c, request, send_fetch(c, request))
        elapsed = time.monotonic() - started
    p = body.responses[0].partitions[0]
    assert 0.25 <= elapsed < 2.0, f"max_wait=300ms fetch returned after {elapsed:.3f}s"
    assert (p.error_code, p.high_watermark, p.log_start_offset) == (ErrorCode.none, 0, 0)
    assert not p.records


def test_fetch_with_data_available_is_not_parked(broker: EmbeddedBroker) -> None:
    topic = unique("lp-ready")
    create_topic(broker.bootstrap, topic)
    produce(broker.bootstrap, topic, 0, build_batch([(None, b"already here")], timestamp_ms=now_ms()))
    request = fetch_req(topic, 0, 0, max_wait_ms=WAKE_MAX_WAIT_MS, min_bytes=1)
    with RawClient(broker.bootstrap) as c:
        started = time.monotonic()
        body = recv_fetch(c, request, send_fetch(c, request))
        elapsed = time.monotonic() - started
    assert elapsed < WOKEN_WITHIN_S
    assert [r.value for r in iter_records(body.responses[0].partitions[0].records or b"")] == [b"already here"]


def test_min_bytes_keeps_fetch_parked_until_enough_data(broker: EmbeddedBroker) -> None:
    topic = unique("lp-minbytes")
    create_topic(broker.bootstrap, topic)
    small = [build_batch([(None, f"{i}".encode() * 50)], timestamp_ms=now_ms()) for i in range(6)]
    min_bytes = sum(len(b) for b in small[:4]) - 10   # satisfied by the 4th batch, not the 3rd
    request = fetch_req(topic, 0, 0, max_wait_ms=WAKE_MAX_WAIT_MS, min_bytes=min_bytes)
    with RawClient(broker.bootstrap) as c:
        started = time.monotonic()
        cid = send_fetch(c, request)
        for i in range(3):
            assert produce(broker.bootstrap, topic, 0, small[i]).base_offset == i
            assert no_response_within(c, 0.1), f"answered with only {i + 1} batches < min_bytes"
        assert produce(broker.bootstrap, topic, 0, small[3]).base_offset == 3
        body = recv_fetch(c, request, cid)
        elapsed = time.monotonic() - started
    assert elapsed < WOKEN_WITHIN_S
    p = body.responses[0].partitions[0]
    assert [r.offset for r in iter_records(p.records or b"")] == [0, 1, 2, 3]


def test_one_produce_wakes_every_parked_fetch(broker: EmbeddedBroker) -> None:
    topic = unique("lp-many")
    create_topic(broker.bootstrap, topic, partitions=2)
    # Fetchers on partition 1 only, and on both partitions: data on partition 1 wakes all.
    only_p1 = fetch_req(topic, 1, 0, max_wait_ms=WAKE_MAX_WAIT_MS)
    both = FetchRequest(max_wait=ms(WAKE_MAX_WAIT_MS), min_bytes=1, max_bytes=1 << 20, topics=(FetchTopic(
        topic=topic, partitions=(
        FetchPartition(partition=0, fetch_offset=0, partition_max_bytes=1 << 20),
        FetchPartition(partition=1, fetch_offset=0, partition_max_bytes=1 << 20))),), forgotten_topics_data=())
    # ...while one parked only on partition 0 must stay parked.
    only_p0 = fetch_req(topic, 0, 0, max_wait_ms=1500)
    clients = [RawClient(broker.bootstrap) for _ in range(6)]
    try:
        requests = [only_p1, only_p1, only_p1, both, both, only_p0]
        sent = time.monotonic()
        cids = [send_fetch(c, r) for c, r in zip(clients, requests, strict=True)]
        assert no_response_within(clients[0], 0.2)
        started = time.monotonic()
        produce(broker.bootstrap, topic, 1, build_batch([(None, b"for p1")], timestamp_ms=now_ms()))
        for c, r, cid in list(zip(clients, requests, cids, strict=True))[:5]:
            body = recv_fetch(c, r, cid)
            parts = {p.partition_index: p for p in body.responses[0].partitions}
            assert [x.value for x in iter_records(parts[1].records or b"")] == [b"for p1"]
            if 0 in parts:
                assert not parts[0].records
        assert time.monotonic() - started < WOKEN_WITHIN_S
        # The fetch on partition 0 answers only at its own max_wait (1.5 s after it was sent), empty:
        # measured from the send, so however long the wake-ups above took on a loaded machine.
        body = recv_fetch(clients[5], only_p0, cids[5])
        assert time.monotonic() - sent >= 1.4, "a fetch on partition 0 woke for data on partition 1"
        assert not body.responses[0].partitions[0].records
    finally:
        for c in clients:
            c.close()


def test_more_parked_fetches_than_in_flight_pause_reading_then_resume(broker: EmbeddedBroker) -> None:
    """A connection with MAX_IN_FLIGHT answers owed is not read; the answers going out let
    it be read again. 70 long-polls pipelined at the log end park (reading pauses at 64), a
    71st sent after them is read only once the produce's wake-ups drained the queue: every
    answer comes, in request order, each with the record, none at its max wait."""
    from suoi.net.server import MAX_IN_FLIGHT

    topic = unique("lp-inflight")
    create_topic(broker.bootstrap, topic)
    request = fetch_req(topic, 0, 0, max_wait_ms=WAKE_MAX_WAIT_MS)
    parked = MAX_IN_FLIGHT + 6
    with RawClient(broker.bootstrap) as c:
        frames = []
        for _ in range(parked):
            c.correlation_id += 1
            frames.append(c.encode(request, correlation_id=c.correlation_id))
        c.send_bytes(b"".join(frames))
        assert no_response_within(c, 0.2), "a fetch at the log end answered without data"
        last = send_fetch(c, request)  # behind a full queue: read once answers went out
        started = time.monotonic()
        produce(broker.bootstrap, topic, 0, build_batch([(None, b"wake all")], timestamp_ms=now_ms()))
        for cid in range(last - parked, last + 1):
            body = recv_fetch(c, request, cid)  # (asserts the correlation id: request order)
            assert [x.value for x in iter_records(body.responses[0].partitions[0].records or b"")] == [b"wake all"]
        assert time.monotonic() - started < WOKEN_WITHIN_S


def test_client_disconnect_while_parked(broker: EmbeddedBroker) -> None:
    topic = unique("lp-gone")
    create_topic(broker.bootstrap, topic)
    watch = LogWatch(broker)
    for _ in range(5):
        c = RawClient(broker.bootstrap)
        send_fetch(c, fetch_req(topic, 0, 0, max_wait_ms=5000))
        c.close()
    # The abandoned fetches must not break the append path or the broker.
    part = produce(broker.bootstrap, topic, 0, build_batch([(None, b"nobody listening")], timestamp_ms=now_ms()))
    assert (part.error_code, part.base_offset) == (ErrorCode.none, 0)
    with RawClient(broker.bootstrap) as c:
        request = fetch_req(topic, 0, 1, max_wait_ms=300)
        started = time.monotonic()
        body = recv_fetch(c, request, send_fetch(c, request))
        assert 0.25 <= time.monotonic() - started < 2.0
        assert not body.responses[0].partitions[0].records
    assert_serves(broker)
    new = watch.new()
    assert "Traceback" not in new and " ERROR " not in new, new


def test_an_answer_held_behind_a_parked_fetch_keeps_request_order_and_is_logged(broker: EmbeddedBroker) -> None:
    """Answers on one connection go in request order, so a quick Fetch pipelined behind a
    long-poll one waits for it; the node logs such head-of-line blocking (it is what made
    transactions take 30 s when WriteTxnMarkers shared the replica fetcher's connection)."""
    topic = unique("lp-hol")
    create_topic(broker.bootstrap, topic)
    produce(broker.bootstrap, topic, 0, build_batch([(b"k", b"v")], timestamp_ms=now_ms()))
    parked = fetch_req(topic, 0, 1, max_wait_ms=1500, min_bytes=1)  # at the end: waits 1.5 s
    quick = fetch_req(topic, 0, 0, max_wait_ms=0)  # data at once
    watch = LogWatch(broker)
    with RawClient(broker.bootstrap) as c:
        started = time.monotonic()
        first = send_fetch(c, parked)
        second = send_fetch(c, quick)
        assert not recv_fetch(c, parked, first).responses[0].partitions[0].records
        body = recv_fetch(c, quick, second)
        elapsed = time.monotonic() - started
    assert [r.value for r in iter_records(body.responses[0].partitions[0].records or b"")] == [b"v"]
    assert elapsed >= 1.4
    line = watch.wait_for(r"a Fetch answer was held \d+\.\d s behind an earlier Fetch answer")
    assert line.count("held") == 1
    held = float(re.search(r"held (\d+\.\d) s", line).group(1))  # type: ignore[union-attr]
    assert 1.4 <= held < elapsed + 0.1, line  # the parked fetch's 1.5 s (later on a loaded machine)
