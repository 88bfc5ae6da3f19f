"""Version-agnostic building and request/response round trips through kio."""

from __future__ import annotations

import datetime
import io
import struct
import uuid

import pytest
from kio.schema.errors import ErrorCode
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic
from kio.serial import entity_reader, entity_writer

from suoi.protocol.codec import (
    DecodeError,
    UnsupportedApi,
    build_response,
    decode_request,
    encode_response,
    read_prefix,
)

PRODUCE_DATA = {
    "responses": [{"name": "t", "topic_id": uuid.uuid4(), "partition_responses": [
        {"index": 0, "error_code": 0, "base_offset": 42, "log_append_time": -1, "log_start_offset": 0,
         "record_errors": [], "error_message": None}]}],
    "throttle_time": 0,
}


def encode_request(req: object, correlation_id: int = 7) -> bytes:
    header_cls = type(req).__header_schema__  # type: ignore[attr-defined]
    buf = io.BytesIO()
    entity_writer(header_cls)(buf, header_cls(request_api_key=req.__api_key__,  # type: ignore[attr-defined]
                                              request_api_version=req.__version__,  # type: ignore[attr-defined]
                                              correlation_id=correlation_id, client_id="c"))
    entity_writer(type(req))(buf, req)
    return buf.getvalue()


def test_decode_request_round_trip() -> None:
    req = MetadataRequest(topics=(MetadataRequestTopic(topic_id=None, name="orders"),),
                          allow_auto_topic_creation=False, include_topic_authorized_operations=False)
    frame = encode_request(req)
    decoded = decode_request(frame, read_prefix(frame))
    assert (decoded.api_key, decoded.api_version, decoded.correlation_id, decoded.client_id) == (3, 12, 7, "c")
    assert decoded.body == req


def test_truncated_body_is_a_decode_error() -> None:
    req = MetadataRequest(topics=(MetadataRequestTopic(topic_id=None, name="orders"),),
                          allow_auto_topic_creation=False, include_topic_authorized_operations=False)
    frame = encode_request(req)[:-4]
    with pytest.raises(DecodeError):
        decode_request(frame, read_prefix(frame))


def test_unknown_version_is_unsupported() -> None:
    frame = struct.pack(">hhi", 3, 999, 1) + b"\x00\x00"
    with pytest.raises(UnsupportedApi):
        decode_request(frame, read_prefix(frame))


@pytest.mark.parametrize("version", [3, 7, 8, 9, 13])
def test_build_fits_fields_to_each_version(version: int) -> None:
    resp = build_response(0, version, PRODUCE_DATA)
    part = resp.responses[0].partition_responses[0]
    assert part.base_offset == 42
    assert part.error_code is ErrorCode.none
    assert resp.throttle_time == datetime.timedelta(0)
    assert hasattr(resp.responses[0], "name") == (version < 13)


def test_encoded_response_has_size_prefix_and_correlation_id() -> None:
    resp = build_response(0, 9, PRODUCE_DATA)
    data = b"".join(encode_response(1234, resp))
    size, correlation_id = struct.unpack_from(">ii", data)
    assert size == len(data) - 4 and correlation_id == 1234
    cls = type(resp)
    header, used = entity_reader(cls.__header_schema__)(data[4:], 0)
    body, _ = entity_reader(cls)(data[4:], used)
    assert body == resp


def test_large_payload_is_kept_by_reference() -> None:
    records = b"x" * 100_000
    resp = build_response(1, 12, {"throttle_time": 0, "error_code": 0, "session_id": 0, "responses": [
        {"topic": "t", "partitions": [{"partition_index": 0, "error_code": 0, "high_watermark": 1,
                                       "last_stable_offset": 1, "log_start_offset": 0,
                                       "aborted_transactions": None, "records": records}]}]})
    parts = encode_response(1, resp)
    assert any(p is records for p in parts)


def test_missing_required_field_is_a_handler_bug() -> None:
    with pytest.raises(TypeError, match="missing required field"):
        build_response(0, 9, {"throttle_time": 0, "responses": [{"name": "t"}]} | {"responses": [
            {"name": "t", "partition_responses": [{"index": 0}]}]})
