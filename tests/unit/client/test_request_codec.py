"""The client-side codec functions agree with the server side: a request encoded by
`encode_request` decodes with `decode_request`, a response from `encode_response` with
`decode_response` (header versions per schema, flexible and not)."""

from __future__ import annotations

import pytest
from kio.schema.api_versions.v3.request import ApiVersionsRequest
from kio.schema.metadata.v1.request import MetadataRequest as MetadataV1
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic

from suoi.protocol.codec import (
    DecodeError,
    build_response,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    read_prefix,
    response_class,
    response_correlation_id,
)


@pytest.mark.parametrize("request_entity", [
    ApiVersionsRequest(client_software_name="suoi", client_software_version="1"),
    MetadataRequest(topics=(MetadataRequestTopic(topic_id=None, name="t"),), allow_auto_topic_creation=False,
                    include_topic_authorized_operations=False),
    MetadataV1(topics=None),
])
def test_request_round_trip(request_entity: object) -> None:
    frame = encode_request(42, "me", request_entity)
    body = frame[4:]
    assert int.from_bytes(frame[:4], "big") == len(body)
    req = decode_request(body, read_prefix(body))
    assert (req.correlation_id, req.client_id, req.body) == (42, "me", request_entity)


def test_response_round_trip() -> None:
    resp = build_response(3, 12, {"throttle_time": 0, "brokers": [], "cluster_id": "c", "controller_id": 1,
                                  "topics": []})
    frame = b"".join(encode_response(7, resp))[4:]
    assert response_correlation_id(frame) == 7
    assert decode_response(frame, response_class(3, 12)) == resp
    with pytest.raises(DecodeError):
        decode_response(frame + b"\x00", response_class(3, 12))
    with pytest.raises(DecodeError):
        decode_response(frame[:-3], response_class(3, 12))
