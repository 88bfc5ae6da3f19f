"""Hostile requests against a real KRaft combined node, on its client AND its controller
listener (they share dispatch): the regression cases of the hardening issue (items 1 and 4)
and of the compatibility issue's item 6. The node answers with Kafka's error code or closes
the connection with one WARNING line, never logs a traceback, and keeps serving. A client API
sent to the controller listener is closed before it is decoded (`suoi.api.listener_roles`)."""

from __future__ import annotations

import dataclasses
import os
import struct
import time
import typing
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kafka import KafkaConsumer, KafkaProducer
from kio.index import load_request_schema
from kio.schema.describe_producers.v0.request import DescribeProducersRequest, TopicRequest
from kio.schema.errors import ErrorCode
from kio.schema.incremental_alter_configs.v1.request import (
    AlterableConfig,
    AlterConfigsResource,
    IncrementalAlterConfigsRequest,
)

import suoi.broker  # noqa: F401  (registers every handler)
from suoi.api.error_responses import zero_fields
from suoi.api.listener_roles import CONTROLLER_APIS
from suoi.api.registry import REGISTRY
from suoi.protocol.bounds import unwrap_optional
from suoi.protocol.codec import build, encode_request
from suoi.protocol.records import build_batch
from suoi.testing import EmbeddedBroker, free_port
from tests.integration.support import LogWatch, api_versions_req, create_topics_req, kraft_combined_overrides, metadata_req
from tests.kio_strategies import fuzz_settings, served_request, uvarint
from tests.rawclient import RawClient
from tests.unit.protocol.test_bounds import DESCRIBE_PRODUCERS_2_34

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """One KRaft node with roles broker,controller; `node.controller_port` is its CONTROLLER listener."""
    port, cport = free_port(), free_port()
    broker = EmbeddedBroker(tmp_path_factory.mktemp("hostile"), port=port, overrides=kraft_combined_overrides(
        port, cport, **{"offsets.topic.replication.factor": "1", "transaction.state.log.replication.factor": "1",
                        "transaction.state.log.min.isr": "1", "group.initial.rebalance.delay.ms": "0"}))
    broker.controller_port = cport  # type: ignore[attr-defined]
    with broker:
        yield broker
    assert "Traceback" not in broker.logs()


@pytest.fixture(params=["client", "controller"])
def address(request: pytest.FixtureRequest, node: EmbeddedBroker) -> str:
    return node.bootstrap if request.param == "client" else f"127.0.0.1:{node.controller_port}"  # type: ignore[attr-defined]


def served_here(node: EmbeddedBroker, address: str, api_key: int) -> bool:
    """Whether the listener at `address` serves `api_key` (a CONTROLLER listener: the controller's APIs)."""
    return address == node.bootstrap or api_key in CONTROLLER_APIS


def assert_not_served(node: EmbeddedBroker, watch: LogWatch, name: str) -> None:
    watch.wait_for(rf"closing connection from .*{name} v\d+ is not served on CONTROLLER listener")
    assert watch.new().count("is not served on CONTROLLER listener") == 1
    assert_answers(node)


def assert_answers(node: EmbeddedBroker) -> None:
    """Both listeners answer ApiVersions, and Metadata on the client listener, on new connections."""
    assert node.proc is not None and node.proc.poll() is None, "the node died"
    for address in (node.bootstrap, f"127.0.0.1:{node.controller_port}"):  # type: ignore[attr-defined]
        with RawClient(address) as c:
            assert c.request(api_versions_req()).error_code == ErrorCode.none
    with RawClient(node.bootstrap) as c:
        assert [b.node_id for b in c.request(metadata_req(allow_create=False)).brokers] == [1]


def assert_round_trip(node: EmbeddedBroker, topic: str) -> None:
    """A real client produces and consumes through the node."""
    producer = KafkaProducer(bootstrap_servers=node.bootstrap)
    try:
        producer.send(topic, b"still-serving").get(timeout=30)
    finally:
        producer.close()
    consumer = KafkaConsumer(topic, bootstrap_servers=node.bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=20000)
    try:
        assert next(iter(consumer)).value == b"still-serving"
    finally:
        consumer.close()


def test_nested_array_claiming_2_34_entries_closes_the_connection(node: EmbeddedBroker, address: str) -> None:
    """Hardening item 1: kio 0.6.5 aborted the process on this 24-byte request."""
    watch = LogWatch(node)
    with RawClient(address) as c:
        c.send_bytes(DESCRIBE_PRODUCERS_2_34)
        assert c.is_closed_by_peer(timeout=5.0)
    if not served_here(node, address, 61):
        return assert_not_served(node, watch, "DescribeProducers")
    line = watch.wait_for(r"malformed request.*partition_indexes claims 17179869184")
    assert node.proc is not None and node.proc.poll() is None, "the node died"
    assert watch.new().count("partition_indexes claims") == 1, line
    assert_answers(node)
    assert struct.unpack(">i", DESCRIBE_PRODUCERS_2_34[:4])[0] == 20


@pytest.mark.parametrize("api_key", [999, 7, -1])  # 7: ControlledShutdown, gone in Kafka 4
def test_unknown_api_key_closes_the_connection(node: EmbeddedBroker, address: str, api_key: int) -> None:
    """Compatibility item 6: an api key the node does not serve closes the connection (as Kafka)
    with one WARNING line; a known key at an unknown version still gets UNSUPPORTED_VERSION."""
    watch = LogWatch(node)
    with RawClient(address) as c:
        c.send_bytes(struct.pack(">ihhih", 10, api_key, 0, 4242, 0))
        assert c.is_closed_by_peer(timeout=5.0)
    watch.wait_for(rf"closing connection from .*unknown api key {api_key} \(v0\)")
    assert watch.new().count("unknown api key") == 1
    with RawClient(address) as c:  # CreateTopics: served on both listeners
        c.send_bytes(struct.pack(">ihhih", 10, 19, 99, 4243, 0))
        assert struct.unpack(">ih", c.recv_frame()[:6]) == (4243, ErrorCode.unsupported_version)
    assert_answers(node)


# -- nulls where the schema forbids them, and out-of-range values (hardening item 4) ----------

#: The APIs whose handlers failed with "TypeError: 'NoneType' object is not iterable" on a
#: null array in a flexible request: the hardening issue's list (61 ... 2), those the fuzzer
#: below found the same way with the null check off (Produce, Vote), and other array-heavy APIs.
NULL_ARRAY_APIS = [61, 23, 21, 10, 56, 32, 43, 37, 33, 42, 2, 0, 52, 9, 15, 19, 20, 24, 44, 45, 46, 47, 65, 66]


@pytest.mark.parametrize("api_key", NULL_ARRAY_APIS)
def test_null_array_in_a_flexible_request_gets_invalid_request(node: EmbeddedBroker, address: str,
                                                               api_key: int) -> None:
    spec = REGISTRY[api_key]
    request, field = with_null_array(load_request_schema(api_key, spec.max_version))
    if api_key == 0:
        request = dataclasses.replace(request, acks=-1)  # acks=0 would get no response at all
    watch = LogWatch(node)
    if not served_here(node, address, api_key):
        with RawClient(address) as c:
            c.send_bytes(c.encode(request))
            assert c.is_closed_by_peer(timeout=5.0)
        return assert_not_served(node, watch, spec.name)
    with RawClient(address) as c:
        response = c.request(request)
        top = getattr(response, "error_code", ErrorCode.invalid_request)
        assert top == ErrorCode.invalid_request, response
        assert c.request(api_versions_req()).error_code == ErrorCode.none  # the connection stays open
    watch.wait_for(rf"{spec.name} v{spec.max_version} with null in non-nullable field {field}; answering INVALID_REQUEST")


def with_null_array(cls: type) -> tuple[object, str]:
    """A `cls` request (zero values) whose first non-nullable array is null: at the top level,
    else inside the single element of its first array (ElectLeaders' topics may be null)."""
    zero = build(cls, zero_fields(cls))
    for f in dataclasses.fields(cls):
        if typing.get_origin(f.type) is tuple:
            return dataclasses.replace(zero, **{f.name: None}), f"{cls.__name__}.{f.name}"
    for f in dataclasses.fields(cls):
        element = typing.get_args(unwrap_optional(f.type)[1])
        if element and dataclasses.is_dataclass(element[0]):
            inner, name = with_null_array(element[0])
            return dataclasses.replace(zero, **{f.name: (inner,)}), name
    raise AssertionError(f"{cls.__name__} has no non-nullable array")


def test_nested_null_array_gets_invalid_request_for_its_topic(node: EmbeddedBroker, address: str) -> None:
    request = DescribeProducersRequest(topics=(TopicRequest(name="t", partition_indexes=None),))  # type: ignore[arg-type]
    if not served_here(node, address, 61):
        watch = LogWatch(node)
        with RawClient(address) as c:
            c.send_bytes(c.encode(request))
            assert c.is_closed_by_peer(timeout=5.0)
        return assert_not_served(node, watch, "DescribeProducers")
    with RawClient(address) as c:
        response = c.request(request)
    assert [t.name for t in response.topics] == ["t"]


def test_unknown_incremental_alter_configs_operation_gets_invalid_request(node: EmbeddedBroker, address: str) -> None:
    """config_operation 9 raised ValueError in the handler; now that resource gets
    INVALID_REQUEST and the other one of the same request is applied."""
    with RawClient(node.bootstrap) as c:
        assert c.request(create_topics_req("op9-a", "op9-b")).topics[0].error_code in (ErrorCode.none,
                                                                                       ErrorCode.topic_already_exists)
    request = IncrementalAlterConfigsRequest(validate_only=False, resources=(
        AlterConfigsResource(resource_type=2, resource_name="op9-a", configs=(
            AlterableConfig(name="retention.ms", config_operation=9, value="1000"),)),
        AlterConfigsResource(resource_type=2, resource_name="op9-b", configs=(
            AlterableConfig(name="retention.ms", config_operation=0, value="123456"),)),
    ))
    with RawClient(address) as c:
        response = c.request(request)
    assert [(r.resource_name, r.error_code) for r in response.responses] == [
        ("op9-a", ErrorCode.invalid_request), ("op9-b", ErrorCode.none)]
    assert "Unknown config operation 9" in (response.responses[0].error_message or "")


# -- the fuzzer (hardening item 5) --------------------------------------------------------------

class Mutation(typing.NamedTuple):
    kind: str  # "none" | "flip" | "truncate" | "length" | "null" | "append"
    position: float  # where in the body, as a fraction of its length
    value: int


MUTATIONS = st.builds(
    Mutation, st.sampled_from(["none", "flip", "truncate", "length", "length", "null", "append"]),
    st.floats(0, 1, exclude_max=True), st.integers(0, 2 ** 35 - 1))


def mutate(frame: bytes, m: Mutation, body_start: int) -> bytes:
    """`frame` (size prefix removed) with one structure-blind change: a flipped byte, a cut, a
    huge length (varint or int32), a null length (-1 / 0), garbage. Mostly in the body (from
    `body_start`), one time in ten anywhere after the 8-byte prefix (the client id, tagged fields)."""
    start = 8 if m.value % 10 == 0 else body_start
    pos = start + int(m.position * (len(frame) - start))
    if m.kind == "flip" and pos < len(frame):
        return frame[:pos] + bytes([frame[pos] ^ (1 + m.value % 255)]) + frame[pos + 1:]
    if m.kind == "truncate":
        return frame[:pos]
    if m.kind == "length":
        patch = uvarint(m.value) if m.value % 2 else struct.pack(">i", m.value % 2 ** 31)
        return frame[:pos] + patch + frame[pos + len(patch):]
    if m.kind == "null":
        patch = b"\x00" if m.value % 2 else b"\xff\xff\xff\xff"
        return frame[:pos] + patch + frame[pos + len(patch):]
    if m.kind == "append":
        return frame + m.value.to_bytes(5, "big")
    return frame


#: State-destroying control-plane requests a fuzzer would send as valid ones: the node would
#: do what it was asked (unregister or fence itself, step down, delete the topics it fuzzes).
#: They are still fuzzed, but only mutated, never as valid requests.
DESTRUCTIVE = {20, 52, 53, 54, 62, 63, 64}


class Peer:
    """One fuzzing connection to a listener; reopened whenever the node closes it."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.client: RawClient | None = None
        self.correlation_id = 0
        self.closed = self.answered = 0
        self.parked: list[tuple[float, int]] = []  # (when, api key) of requests not answered in time

    def send(self, frame: bytes) -> None:
        """Send one request and a trailing ApiVersions: the node must answer the request (or not,
        for acks=0) and then the ApiVersions, or close the connection, within the deadline."""
        if self.client is None:
            self.client = RawClient(self.address, timeout=3.0)
        self.correlation_id += 2
        cid = self.correlation_id
        request = struct.pack(">hhi", *struct.unpack_from(">hh", frame), cid) + frame[8:]
        probe = self.client.encode(api_versions_req(), correlation_id=cid + 1)
        try:
            self.client.send_bytes(struct.pack(">i", len(request)) + request + probe)
            while True:
                (got,) = struct.unpack_from(">i", self.client.recv_frame())
                assert got in (cid, cid + 1), f"response to correlation id {got}, expected {cid}"
                if got == cid + 1:
                    self.answered += 1
                    return
        except (ConnectionError, BrokenPipeError):
            self.closed += 1
        except TimeoutError:  # a long poll the request asked for (Fetch max_wait, a join): not an answer yet
            self.parked.append((time.monotonic(), struct.unpack_from(">h", frame)[0]))
        self.client.close()
        self.client = None


#: Requests that may legitimately wait longer than the fuzzer's 3 s: long polls (Fetch,
#: JoinGroup, SyncGroup, FetchSnapshot). CreateTopics/CreatePartitions with huge counts are
#: refused at once (POLICY_VIOLATION) and smaller ones never freeze the node (hardening item 2),
#: so they get no allowance.
LONG_POLLS = {1, 11, 14, 59}


def assert_only_expected_waits(parked: list[tuple[float, int]]) -> None:
    """Every unanswered request is a long poll."""
    for _, key in parked:
        assert key in LONG_POLLS, f"api key {key} got no answer and no close within 3 s: {sorted(parked)}"


@pytest.fixture(scope="module")
def advertised(node: EmbeddedBroker) -> dict[str, list[tuple[int, int, int]]]:
    """(api_key, min, max) that ApiVersions advertises on each listener."""
    out = {}
    for name, address in (("client", node.bootstrap), ("controller", f"127.0.0.1:{node.controller_port}")):  # type: ignore[attr-defined]
        with RawClient(address) as c:
            out[name] = [(k.api_key, k.min_version, k.max_version) for k in c.request(api_versions_req()).api_keys]
    return out


FUZZ_EXAMPLES = 400  # CI; SUOI_FUZZ_EXAMPLES overrides (see fuzz_settings)


@pytest.mark.timeout(120 + int(os.environ.get("SUOI_FUZZ_EXAMPLES", FUZZ_EXAMPLES)) // 10)  # ~30 examples/s
def test_fuzzed_requests_on_both_listeners_leave_the_node_serving(
        node: EmbeddedBroker, advertised: dict[str, list[tuple[int, int, int]]]) -> None:
    """Valid-shaped requests for every advertised API and version (from kio's schemas), then
    mutated; the node answers or closes the connection, never dies, logs no traceback, and a
    real client still produces and consumes afterwards. Derandomized; SUOI_FUZZ_EXAMPLES
    (default 400) sets the number of examples (src/suoi/api/README.md)."""
    with RawClient(node.bootstrap) as c:
        c.request(create_topics_req("fuzz", partitions=2))
    batch = build_batch([(b"k", b"fuzz-value"), (None, b"x" * 100)])
    strings = ("fuzz", "fuzz-group", "fuzz-txn", "")
    peers = {"client": Peer(node.bootstrap), "controller": Peer(f"127.0.0.1:{node.controller_port}")}  # type: ignore[attr-defined]
    apis = st.sampled_from(sorted({(listener, key, lo, hi) for listener, keys in advertised.items()
                                   for key, lo, hi in keys}))
    started = time.monotonic()

    @fuzz_settings(FUZZ_EXAMPLES)
    @given(target=apis, data=st.data(), mutation=MUTATIONS)
    def fuzz(target: tuple[str, int, int, int], data: st.DataObject, mutation: Mutation) -> None:
        listener, key, lo, hi = target
        if key == 0:
            lo = max(lo, 3)  # Produce v0-2: suoi's deliberate legacy reply (test_bad_input)
        request = data.draw(served_request(key, (lo, hi), strings, (batch,)), label="request")
        if key in DESTRUCTIVE and mutation.kind == "none":
            mutation = mutation._replace(kind="flip")
        frame = encode_request(1, "fuzz", request)[4:]
        body_start = 8 + 2 + len("fuzz") + (1 if type(request).__header_schema__.__flexible__ else 0)
        peers[listener].send(mutate(frame, mutation, body_start))
        assert node.proc is not None and node.proc.poll() is None, f"the node died on {request!r} {mutation}"

    fuzz()
    elapsed = time.monotonic() - started
    counts = {name: (p.answered, p.closed, sorted(k for _, k in p.parked)) for name, p in peers.items()}
    print(f"fuzzed for {elapsed:.1f}s: (answered, closed, parked api keys) per listener {counts}")
    assert all(p.answered > 0 for p in peers.values()), counts
    assert_only_expected_waits([x for p in peers.values() for x in p.parked])
    assert_answers(node)
    assert_round_trip(node, "after-fuzz")
    logs = node.logs()
    assert "Traceback" not in logs, logs[logs.find("Traceback") - 2000:][:6000]
