"""Lengths in a request are checked against its frame before kio decodes it (hardening
issue, item 1): the walker agrees with kio on every valid request we accept, and refuses
any length that claims more than the frame holds."""

from __future__ import annotations

import contextlib
import struct
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kio.index import load_request_schema

import suoi.broker  # noqa: F401  (registers every handler)
from suoi.api.registry import REGISTRY
from suoi.protocol.bounds import LengthOutOfBounds, check_request
from suoi.protocol.codec import (
    DecodeError,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    read_prefix,
    response_class,
)
from tests.kio_strategies import fuzz_settings, requests, served, uvarint

# DescribeProducers v0 (flexible): one topic "t" whose partition-index array claims 2^34
# entries (compact length 2^34 + 1 as a 5-byte varint). kio 0.6.5 aborts on it.
DESCRIBE_PRODUCERS_2_34 = bytes.fromhex("00000014003d000000000001ffff000202748180808040 00".replace(" ", ""))


def test_the_2_34_describe_producers_request_is_24_bytes_and_refused() -> None:
    frame = DESCRIBE_PRODUCERS_2_34[4:]
    assert len(DESCRIBE_PRODUCERS_2_34) == 24 and struct.unpack(">i", DESCRIBE_PRODUCERS_2_34[:4])[0] == len(frame)
    with pytest.raises(LengthOutOfBounds, match=r"partition_indexes claims 17179869184"):
        check_request(frame, load_request_schema(61, 0))


def test_decoding_it_raises_instead_of_aborting_the_process() -> None:
    """In a child process: should the check regress, kio aborts the child, not the test run."""
    code = ("from suoi.protocol.codec import decode_request, read_prefix, DecodeError\n"
            f"f = bytes.fromhex({DESCRIBE_PRODUCERS_2_34[4:].hex()!r})\n"
            "try:\n    decode_request(f, read_prefix(f))\nexcept DecodeError as e:\n    print('refused:', e)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr[-500:]
    assert "refused: api_key=61 v0: TopicRequest.partition_indexes claims 17179869184" in proc.stdout


@pytest.mark.parametrize("api_key", sorted(REGISTRY))
@fuzz_settings(12)
@given(data=st.data())
def test_walker_agrees_with_kio_on_valid_requests(api_key: int, data: st.DataObject) -> None:
    request = data.draw(served(api_key), label="request")
    cls = type(request)
    frame = encode_request(7, "bounds", request)[4:]
    assert check_request(frame, cls) == len(frame)
    decoded = decode_request(frame, read_prefix(frame))
    assert (decoded.api_key, decoded.api_version, decoded.null_fields) == (api_key, cls.__version__, ())
    # Any truncation is refused by the walker or by kio, never accepted as a whole request.
    cut = data.draw(st.integers(8, len(frame) - 1), label="cut")
    with pytest.raises(DecodeError):
        decode_request(frame[:cut], read_prefix(frame[:cut]))


@pytest.mark.parametrize("api_key, version", [(61, 0), (1, 12), (0, 9), (3, 12), (19, 7), (44, 1)])
@pytest.mark.parametrize("claimed", [2 ** 31 - 1, 2 ** 34])
@settings(max_examples=2, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_every_length_position_claiming_too_much_is_refused(api_key: int, version: int, claimed: int,
                                                            data: st.DataObject) -> None:
    """Overwrite each byte position with a huge varint/int32 length: decode either refuses
    (DecodeError) or parses something small, never aborts or allocates the claim."""
    cls = load_request_schema(api_key, version)
    frame = encode_request(9, "bounds", data.draw(requests(cls)))[4:]
    big_varint = uvarint(min(claimed, 2 ** 35 - 1))
    for pos in range(8, len(frame)):
        for patch in (big_varint, struct.pack(">i", min(claimed, 2 ** 31 - 1))):
            mutated = frame[:pos] + patch + frame[pos + len(patch):]
            with contextlib.suppress(DecodeError):
                decode_request(mutated, read_prefix(mutated))


@pytest.mark.parametrize("api_key", sorted(REGISTRY))
@fuzz_settings(4)
@given(data=st.data())
def test_responses_from_peers_are_walked_too(api_key: int, data: st.DataObject) -> None:
    """suoi's own client (replica fetches, forwarding, Raft) decodes peers' responses with the
    same bound; valid responses of every served API still decode."""
    spec = REGISTRY[api_key]
    cls = response_class(api_key, data.draw(st.integers(spec.min_version, spec.max_version), label="version"))
    response = data.draw(requests(cls), label="response")
    frame = b"".join(encode_response(3, response))[4:]
    assert decode_response(frame, cls) == response


def test_a_peer_response_claiming_2_34_nested_entries_is_refused() -> None:
    from kio.schema.describe_producers.v0.response import DescribeProducersResponse
    # throttle 0, topics=[{name "t", partitions: <2^34 entries>}]
    frame = struct.pack(">i", 3) + b"\x00" + struct.pack(">i", 0) + b"\x02\x02t" + uvarint(2 ** 34 + 1) + b"\x00\x00"
    with pytest.raises(DecodeError, match="partitions claims 17179869184"):
        decode_response(frame, DescribeProducersResponse)
