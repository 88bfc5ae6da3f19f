"""Bad input against a real broker process: broken framing, unparseable headers, unknown
APIs and versions, invalid topics, corrupt/oversized/legacy record batches, out-of-range
reads, connection floods and pipelining.

After every bad input the broker must keep serving (a new connection gets ApiVersions,
Metadata and a produce+fetch round trip) and, for malformed input, log a WARNING.

Not covered here: "disk full while appending" needs a size-limited filesystem (tmpfs or
loop mount), which requires privileges; it is covered by a unit test that injects ENOSPC
through `suoi.log.segment._writev`.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator

import pytest
from kio.schema.api_versions.v0.response import ApiVersionsResponse as ApiVersionsResponseV0
from kio.schema.delete_records.v2.request import DeleteRecordsPartition, DeleteRecordsRequest, DeleteRecordsTopic
from kio.schema.errors import ErrorCode
from kio.serial import entity_reader

from suoi.protocol.records import build_batch, iter_records
from suoi.testing import EmbeddedBroker
from tests.integration.support import (
    LogWatch,
    api_versions_req,
    assert_serves,
    create_topic,
    create_topics_req,
    fetch,
    fetch_req,
    log_end,
    log_start,
    metadata_req,
    module_broker,
    ms,
    partition_dir,
    produce,
    produce_req,
    unique,
)
from tests.rawclient import RawClient

pytestmark = pytest.mark.timeout(30)

MAX_REQUEST = 1024


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """Default settings (auto-create on); tests use unique topic names."""
    yield from module_broker(tmp_path_factory)


@pytest.fixture(scope="module")
def strict_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """Small request limit and no auto-creation."""
    yield from module_broker(tmp_path_factory, {
        "socket.request.max.bytes": str(MAX_REQUEST),
        "auto.create.topics.enable": "false",
    })


def now_ms() -> int:
    return int(time.time() * 1000)


def header_v1(api_key: int, version: int, correlation_id: int, client_id: bytes = b"bad-input") -> bytes:
    return struct.pack(">hhih", api_key, version, correlation_id, len(client_id)) + client_id


def framed(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def assert_open_and_serving(c: RawClient) -> None:
    """An already open connection still works (its neighbour's misbehaviour did not hurt it)."""
    av = c.request(api_versions_req())
    assert av.error_code == ErrorCode.none


# -- framing and header ---------------------------------------------------------------------

def test_truncated_frame_then_close(broker: EmbeddedBroker) -> None:
    watch = LogWatch(broker)
    with RawClient(broker.bootstrap) as bystander:
        c = RawClient(broker.bootstrap)
        # Declares 200 bytes, sends a valid-looking header and 10 bytes of it, then leaves.
        c.send_bytes(struct.pack(">i", 200) + header_v1(3, 12, 7)[:10])
        c.close()
        assert_open_and_serving(bystander)
    assert_serves(broker)
    watch.wait_for(r"(incomplete|truncated|partial|closed).*(request|frame)|(request|frame).*(incomplete|truncated|partial)")


@pytest.mark.parametrize("payload, log_pattern", [
    pytest.param(framed(b"\x00\x03\x00"), r"shorter than a request header", id="frame-shorter-than-header"),
    # Metadata v12 prefix, then a client id claiming 30000 bytes that are not there.
    pytest.param(framed(struct.pack(">hhih", 3, 12, 99, 30000) + b"abc"), r"malformed request",
                 id="client-id-past-end"),
    # A valid Produce v9 prefix followed by 0xff garbage: the flexible body cannot parse.
    pytest.param(framed(header_v1(0, 9, 5) + b"\x00" + b"\xff" * 40), r"malformed request", id="garbage-body"),
    # Someone speaking HTTP to the Kafka port: "GET " read as a 1.2 GB frame size.
    pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", r"exceeds socket.request.max.bytes", id="http-request"),
])
def test_unparseable_input_closes_only_that_connection(broker: EmbeddedBroker, payload: bytes,
                                                        log_pattern: str) -> None:
    watch = LogWatch(broker)
    with RawClient(broker.bootstrap) as bystander, RawClient(broker.bootstrap) as bad:
        assert_open_and_serving(bystander)
        bad.send_bytes(payload)
        assert bad.is_closed_by_peer(timeout=5.0), "broker kept a connection whose input cannot be parsed"
        assert_open_and_serving(bystander)
    assert_serves(broker)
    watch.wait_for(log_pattern)


def test_frame_over_socket_request_max_bytes_closes_connection(strict_broker: EmbeddedBroker) -> None:
    watch = LogWatch(strict_broker)
    with RawClient(strict_broker.bootstrap) as bystander, RawClient(strict_broker.bootstrap) as bad:
        # Only the size prefix is sent: the broker must refuse before buffering the body.
        bad.send_bytes(struct.pack(">i", MAX_REQUEST + 1))
        assert bad.is_closed_by_peer(timeout=5.0)
        assert_open_and_serving(bystander)
    with RawClient(strict_broker.bootstrap) as c:
        # A frame of exactly the limit is still accepted (it is parsed, and answered).
        pad = b"x" * (MAX_REQUEST - len(header_v1(3, 99, 77, b"x" * 10)))
        c.send_bytes(framed(header_v1(3, 99, 77, b"x" * 10) + pad))
        reply = c.recv_frame()
        assert struct.unpack(">ih", reply) == (77, ErrorCode.unsupported_version)
        assert_open_and_serving(c)
    watch.wait_for(rf"{MAX_REQUEST + 1} bytes exceeds socket.request.max.bytes={MAX_REQUEST}")
    # the strict broker has auto-create off: check health with a pre-created topic
    with RawClient(strict_broker.bootstrap) as c:
        assert c.request(api_versions_req()).error_code == ErrorCode.none
        md = c.request(metadata_req())
        assert md.brokers[0].port == strict_broker.port


def test_negative_frame_size_closes_connection(broker: EmbeddedBroker) -> None:
    watch = LogWatch(broker)
    with RawClient(broker.bootstrap) as bystander, RawClient(broker.bootstrap) as bad:
        bad.send_bytes(struct.pack(">i", -5) + b"\x00" * 16)
        assert bad.is_closed_by_peer(timeout=5.0)
        assert_open_and_serving(bystander)
    assert_serves(broker)
    watch.wait_for(r"negative frame size -5")


# -- unknown and unsupported APIs -----------------------------------------------------------

def test_unknown_api_key_closes_the_connection(broker: EmbeddedBroker) -> None:
    """As Kafka (KIP-511): an api key the node does not serve has no response a client could
    decode, so the connection is closed with one WARNING line; the node keeps serving."""
    watch = LogWatch(broker)
    with RawClient(broker.bootstrap) as bystander, RawClient(broker.bootstrap) as c:
        c.send_bytes(framed(header_v1(999, 0, 123456) + b"\x00\x01\x02"))
        assert c.is_closed_by_peer(timeout=5.0)
        assert_open_and_serving(bystander)
    assert_serves(broker)
    watch.wait_for(r"closing connection from .*unknown api key 999 \(v0\)")
    assert watch.new().count("unknown api key 999") == 1


def test_kafka_python_decodes_describe_acls_without_an_authorizer(broker: EmbeddedBroker) -> None:
    """Compatibility item 6 with a real client's protocol layer: kafka-python encodes DescribeAcls
    v1; the old bare "error 35" reply made its parser raise "Unable to decode response", and later
    suoi closed the connection (no ACLs). Now the api is served: a node without an authorizer
    answers SECURITY_DISABLED, as Kafka does, in a response kafka-python decodes. (An api key the
    node does not serve closes the connection: test_unknown_api_key_closes_the_connection.)"""
    import socket

    from kafka.protocol.admin.acl import DescribeAclsRequest
    from kafka.protocol.parser import KafkaProtocol

    protocol = KafkaProtocol(client_id="kafka-python-test")
    protocol.send_request(DescribeAclsRequest(resource_type_filter=1, resource_name_filter=None, pattern_type_filter=1,
                                              principal_filter=None, host_filter=None, operation=1, permission_type=1,
                                              version=1))
    with socket.create_connection((broker.host, broker.port), timeout=5) as sock:
        sock.sendall(protocol.send_bytes())
        responses: list = []  # type: ignore[type-arg]
        while not responses:
            chunk = sock.recv(4096)
            assert chunk, "closed instead of answered"
            responses = protocol.receive_bytes(chunk)
    (_, response), = responses
    assert response.error_code == ErrorCode.security_disabled
    assert_serves(broker)


def test_unsupported_metadata_version(broker: EmbeddedBroker) -> None:
    watch = LogWatch(broker)
    with RawClient(broker.bootstrap) as c:
        c.send_bytes(framed(header_v1(3, 99, 4711) + b"\x00" * 8))
        reply = c.recv_frame()
        correlation_id, error = struct.unpack_from(">ih", reply)
        assert correlation_id == 4711
        assert error == 35
        assert_open_and_serving(c)
    assert_serves(broker)
    watch.wait_for(r"api key 3 at unsupported version 99")


def test_unsupported_api_versions_version_gets_v0_reply_with_ranges(broker: EmbeddedBroker) -> None:
    """KIP-511: ApiVersions newer than the broker's gets a v0-format reply listing ranges."""
    watch = LogWatch(broker)
    with RawClient(broker.bootstrap) as c:
        c.send_bytes(framed(header_v1(18, 99, 31337) + b"\x00\x00\x00"))
        reply = c.recv_frame()
        (correlation_id,) = struct.unpack_from(">i", reply)
        assert correlation_id == 31337
        body, used = entity_reader(ApiVersionsResponseV0)(reply, 4)
        assert 4 + used == len(reply), "trailing bytes after a v0 ApiVersions body"
        assert body.error_code == ErrorCode.unsupported_version
        ranges = {k.api_key: (k.min_version, k.max_version) for k in body.api_keys}
        assert ranges[18][0] == 0 and ranges[18][1] >= 3
        assert ranges[0][0] == 0 and ranges[3][0] == 0
        assert {0, 1, 2, 3, 18, 19} <= set(ranges)
        assert_open_and_serving(c)
    assert_serves(broker)
    watch.wait_for(r"api key 18 at unsupported version 99")


class _Reader:
    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0

    def take(self, fmt: str) -> int:
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += struct.calcsize(fmt)
        return int(value)

    def raw(self, n: int) -> bytes:
        self.pos += n
        return self.buf[self.pos - n : self.pos]


def _legacy_v1_message(value: bytes, offset: int = 0) -> bytes:
    """A magic-1 message set entry (offset, size, crc, magic=1, attrs, timestamp, key, value)."""
    import zlib

    body = struct.pack(">bbq", 1, 0, now_ms()) + struct.pack(">i", -1) + struct.pack(">i", len(value)) + value
    msg = struct.pack(">I", zlib.crc32(body)) + body
    return struct.pack(">qi", offset, len(msg)) + msg


@pytest.mark.parametrize("version", [0, 1, 2])
def test_produce_v0_to_v2_advertised_but_rejected_per_partition(broker: EmbeddedBroker, version: int) -> None:
    topic = unique(f"legacy-produce-v{version}")
    create_topic(broker.bootstrap, topic)
    watch = LogWatch(broker)
    with RawClient(broker.bootstrap) as c:
        av = c.request(api_versions_req())
        produce_range = next((k.min_version, k.max_version) for k in av.api_keys if k.api_key == 0)
        assert produce_range[0] == 0, "Produce must be advertised from v0 (librdkafka compression check)"
        assert produce_range[1] >= 9

        message_set = _legacy_v1_message(b"old client")
        name = topic.encode()
        body = struct.pack(">hi", -1, 5000)                       # acks, timeout
        body += struct.pack(">i", 1) + struct.pack(">h", len(name)) + name
        body += struct.pack(">i", 1) + struct.pack(">i", 0)       # one partition: index 0
        body += struct.pack(">i", len(message_set)) + message_set
        c.send_bytes(framed(header_v1(0, version, 555) + body))
        reply = c.recv_frame()

    r = _Reader(reply)
    assert (r.take(">i"), r.take(">i")) == (555, 1)        # correlation id, topic count
    assert r.raw(r.take(">h")) == topic.encode()
    assert r.take(">i") == 1                               # partition count
    assert (r.take(">i"), r.take(">h"), r.take(">q")) == (0, 35, -1)  # index, error, base offset
    if version >= 2:
        assert r.take(">q") == -1                          # log_append_time
    if version >= 1:
        assert r.take(">i") == 0                           # throttle_time_ms
    pos = r.pos
    assert pos == len(reply), f"unexpected trailing bytes in a v{version} produce response"

    assert log_end(broker.bootstrap, topic) == 0, "a rejected legacy produce appended data"
    assert_serves(broker)
    watch.wait_for(rf"api key 0 at unsupported version {version}")


# -- topics -----------------------------------------------------------------------------------

INVALID_NAMES = ["bad name!", "a" * 250, "..", ".", "topic/with/slashes", "ümlaut"]


def test_create_topics_with_invalid_names(broker: EmbeddedBroker) -> None:
    watch = LogWatch(broker)
    data = broker.data_dir / "data"
    before = set(data.iterdir())
    with RawClient(broker.bootstrap) as c:
        result = c.request(create_topics_req(*INVALID_NAMES))
    codes = {t.name: t.error_code for t in result.topics}
    assert codes == dict.fromkeys(INVALID_NAMES, ErrorCode.invalid_topic_exception)
    assert set(data.iterdir()) == before, "an invalid topic left files behind"
    assert_serves(broker)
    watch.wait_for(r"bad name!")


def test_metadata_auto_create_with_invalid_name(broker: EmbeddedBroker) -> None:
    watch = LogWatch(broker)
    with RawClient(broker.bootstrap) as c:
        md = c.request(metadata_req("no spaces allowed", "x" * 300))
    assert [(t.name, t.error_code, t.partitions) for t in md.topics] == [
        ("no spaces allowed", ErrorCode.invalid_topic_exception, ()),
        ("x" * 300, ErrorCode.invalid_topic_exception, ()),
    ]
    assert_serves(broker)
    watch.wait_for(r"no spaces allowed")


def test_create_existing_topic(broker: EmbeddedBroker) -> None:
    topic = unique("exists")
    create_topic(broker.bootstrap, topic, partitions=2)
    with RawClient(broker.bootstrap) as c:
        again = c.request(create_topics_req(topic, partitions=5)).topics[0]
        assert again.error_code == ErrorCode.topic_already_exists
        md = c.request(metadata_req(topic))
    assert len(md.topics[0].partitions) == 2, "re-creating a topic changed its partition count"
    assert_serves(broker)


def test_produce_unknown_topic_without_auto_create(strict_broker: EmbeddedBroker) -> None:
    topic = unique("nowhere")
    with RawClient(strict_broker.bootstrap) as c:
        pr = c.request(produce_req(topic, 0, build_batch([(b"k", b"v")], timestamp_ms=now_ms())))
        part = pr.responses[0].partition_responses[0]
        assert (part.error_code, part.base_offset) == (ErrorCode.unknown_topic_or_partition, -1)
        md = c.request(metadata_req(topic))
        assert md.topics[0].error_code == ErrorCode.unknown_topic_or_partition
    assert not partition_dir(strict_broker, topic).exists(), "produce with auto-create off created a topic"
    # still healthy: a topic created explicitly works
    ok = unique("strict-ok")
    create_topic(strict_broker.bootstrap, ok)
    assert produce(strict_broker.bootstrap, ok, 0, build_batch([(None, b"x")], timestamp_ms=now_ms())).error_code == 0


def test_produce_partition_beyond_count(broker: EmbeddedBroker) -> None:
    topic = unique("two-parts")
    create_topic(broker.bootstrap, topic, partitions=2)
    batch = build_batch([(b"k", b"v")], timestamp_ms=now_ms())
    for index in (2, 7, 2**31 - 1):
        part = produce(broker.bootstrap, topic, index, batch)
        assert (part.index, part.error_code) == (index, ErrorCode.unknown_topic_or_partition)
    with RawClient(broker.bootstrap) as c:
        assert len(c.request(metadata_req(topic)).topics[0].partitions) == 2
    assert produce(broker.bootstrap, topic, 1, batch).error_code == ErrorCode.none
    assert_serves(broker)


# -- record batches ------------------------------------------------------------------------

def _seed(broker: EmbeddedBroker, prefix: str, configs: dict[str, str] | None = None) -> str:
    """A topic holding one good record, so 'nothing appended' means LEO stays 1."""
    topic = unique(prefix)
    create_topic(broker.bootstrap, topic, configs=configs)
    part = produce(broker.bootstrap, topic, 0, build_batch([(b"k", b"seed")], timestamp_ms=now_ms()))
    assert (part.error_code, part.base_offset) == (ErrorCode.none, 0)
    return topic


@pytest.mark.parametrize("where", ["payload", "crc-field", "attributes"])
def test_batch_with_bad_crc_is_rejected(broker: EmbeddedBroker, where: str) -> None:
    topic = _seed(broker, f"badcrc-{where}")
    watch = LogWatch(broker)
    good = build_batch([(b"k1", b"v1" * 20), (b"k2", b"v2" * 20)], timestamp_ms=now_ms())
    bad = bytearray(good)
    pos = {"payload": len(bad) - 3, "crc-field": 18, "attributes": 22}[where]
    bad[pos] ^= 0x5A
    part = produce(broker.bootstrap, topic, 0, bytes(bad))
    assert (part.error_code, part.base_offset) == (ErrorCode.corrupt_message, -1)
    assert log_end(broker.bootstrap, topic) == 1, "a corrupt batch was appended"
    # The unmodified batch is fine and takes the next offset.
    ok = produce(broker.bootstrap, topic, 0, good)
    assert (ok.error_code, ok.base_offset) == (ErrorCode.none, 1)
    assert_serves(broker)
    watch.wait_for(rf"{topic}-0 .*rejected.*CRC")


def test_good_batch_followed_by_corrupt_batch_appends_nothing(broker: EmbeddedBroker) -> None:
    """Validation is all-or-nothing for one partition's records blob."""
    topic = _seed(broker, "half-bad")
    watch = LogWatch(broker)
    good = build_batch([(None, b"a")], timestamp_ms=now_ms())
    bad = bytearray(build_batch([(None, b"b")], timestamp_ms=now_ms()))
    bad[-1] ^= 0xFF
    part = produce(broker.bootstrap, topic, 0, good + bytes(bad))
    assert part.error_code == ErrorCode.corrupt_message
    assert log_end(broker.bootstrap, topic) == 1
    watch.wait_for(rf"{topic}-0 .*rejected")


def test_batch_over_max_message_bytes(broker: EmbeddedBroker) -> None:
    topic = _seed(broker, "too-big", configs={"max.message.bytes": "512"})
    watch = LogWatch(broker)
    big = build_batch([(b"k", b"x" * 2000)], timestamp_ms=now_ms())
    part = produce(broker.bootstrap, topic, 0, big)
    assert (part.error_code, part.base_offset) == (ErrorCode.message_too_large, -1)
    assert log_end(broker.bootstrap, topic) == 1
    small = produce(broker.bootstrap, topic, 0, build_batch([(b"k", b"x" * 100)], timestamp_ms=now_ms()))
    assert (small.error_code, small.base_offset) == (ErrorCode.none, 1)
    assert_serves(broker)
    watch.wait_for(r"exceeds max.message.bytes=512")


@pytest.mark.parametrize("magic", [0, 1])
def test_legacy_message_set_is_unsupported_for_message_format(broker: EmbeddedBroker, magic: int) -> None:
    topic = _seed(broker, f"magic{magic}")
    watch = LogWatch(broker)
    legacy = bytearray(_legacy_v1_message(b"legacy value"))
    assert legacy[16] == 1
    legacy[16] = magic
    part = produce(broker.bootstrap, topic, 0, bytes(legacy))
    assert (part.error_code, part.base_offset) == (ErrorCode.unsupported_for_message_format, -1)
    assert log_end(broker.bootstrap, topic) == 1
    assert_serves(broker)
    watch.wait_for(rf"message format v{magic} is not supported")


# -- out-of-range fetch ---------------------------------------------------------------------

def test_fetch_outside_log_range(broker: EmbeddedBroker) -> None:
    topic = unique("oor")
    create_topic(broker.bootstrap, topic)
    for i in range(5):
        part = produce(broker.bootstrap, topic, 0, build_batch([(None, f"v{i}".encode())], timestamp_ms=now_ms()))
        assert part.base_offset == i
    with RawClient(broker.bootstrap) as c:
        dr = c.request(DeleteRecordsRequest(topics=(DeleteRecordsTopic(name=topic, partitions=(
            DeleteRecordsPartition(partition_index=0, offset=3),)),), timeout=ms(5000)))
        assert dr.topics[0].partitions[0].error_code == ErrorCode.none
        assert dr.topics[0].partitions[0].low_watermark == 3
    assert log_start(broker.bootstrap, topic) == 3
    assert log_end(broker.bootstrap, topic) == 5

    for offset in (0, 2, 6, 1000, 2**62):
        p = fetch(broker.bootstrap, topic, 0, offset)
        assert p.error_code == ErrorCode.offset_out_of_range, offset
        assert not p.records
        assert (p.high_watermark, p.log_start_offset) == (5, 3)
    # Boundaries are inside the range: log start returns data, LEO returns nothing.
    p = fetch(broker.bootstrap, topic, 0, 3)
    assert p.error_code == ErrorCode.none
    assert [r.offset for r in iter_records(p.records or b"")] == [3, 4]
    p = fetch(broker.bootstrap, topic, 0, 5)
    assert p.error_code == ErrorCode.none and not p.records
    assert_serves(broker)


# -- concurrency and pipelining ----------------------------------------------------------

def test_many_concurrent_connections(broker: EmbeddedBroker) -> None:
    n = 200
    socks: list[RawClient] = []
    try:
        for _ in range(n):
            socks.append(RawClient(broker.bootstrap))
        for i, c in enumerate(socks):
            c.send_bytes(c.encode(api_versions_req(), correlation_id=10_000 + i))
        answered = 0
        for i, c in enumerate(socks):
            correlation_id, body = c.decode(api_versions_req(), c.recv_frame())
            assert correlation_id == 10_000 + i
            assert body.error_code == ErrorCode.none
            answered += 1
        assert answered == n
    finally:
        for c in socks:
            c.close()
    assert_serves(broker)


def test_pipelined_requests_answered_in_order(broker: EmbeddedBroker) -> None:
    topic = unique("pipeline")
    create_topic(broker.bootstrap, topic)
    wait_ms = 700
    requests = []
    for i in range(20):
        if i == 3:
            # Long-poll on an empty partition: parks until max_wait, while later quick
            # requests finish first inside the broker; they must still be answered after it.
            requests.append(fetch_req(topic, 0, 0, max_wait_ms=wait_ms, min_bytes=1))
        elif i % 2:
            requests.append(metadata_req(topic))
        else:
            requests.append(api_versions_req())
    ids = [1000 + 7 * i for i in range(20)]
    with RawClient(broker.bootstrap, timeout=10) as c:
        payload = b"".join(c.encode(r, correlation_id=cid) for r, cid in zip(requests, ids, strict=True))
        started = time.monotonic()
        c.send_bytes(payload)
        got = []
        for r in requests:
            cid, body = c.decode(r, c.recv_frame())
            got.append((cid, time.monotonic() - started, body))
    assert [cid for cid, _, _ in got] == ids
    # Responses 0-2 come at once; the fetch (3) after ~max_wait; everything after it is
    # held back behind the fetch.
    assert got[2][1] < wait_ms / 1000 / 2
    assert got[3][1] >= wait_ms / 1000 * 0.9
    assert all(t >= got[3][1] for _, t, _ in got[4:])
    fetch_part = got[3][2].responses[0].partitions[0]
    assert fetch_part.error_code == ErrorCode.none and not fetch_part.records
    for i, (_, _, body) in enumerate(got):
        if i != 3 and i % 2:
            assert body.topics[0].error_code == ErrorCode.none
        elif i != 3:
            assert body.error_code == ErrorCode.none
    assert_serves(broker)
