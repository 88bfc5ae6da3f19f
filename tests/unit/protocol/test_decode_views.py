"""`codec.decode_response_views` against kio's own decode: for Hypothesis-built instances of every
version of every response class with records fields (Fetch, ...), the response decoded with its
records left out equals kio's once the views are put back, and the views are the records' bytes,
in wire order (None for a null field). A class with no records field is decoded as usual."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from kio.index import load_request_schema, load_response_schema
from kio.schema.index import api_key_map, schema_name_map
from kio.static.constants import EntityType

from suoi.protocol.bounds import records_spanner
from suoi.protocol.codec import (
    VIEWS_FROM,
    build_response,
    decode_response,
    decode_response_views,
    encode_request,
    encode_response,
    request_decoder,
)
from tests.kio_strategies import fuzz_settings, requests

WITH_RECORDS = sorted((key, version) for key, name in api_key_map.items()
                      for version, kinds in schema_name_map[name].items()
                      if EntityType.response in kinds and records_spanner(load_response_schema(key, version)) is not None)

REQUESTS_WITH_RECORDS = sorted((key, version) for key, name in api_key_map.items()
                               for version, kinds in schema_name_map[name].items()
                               if EntityType.request in kinds
                               and records_spanner(load_request_schema(key, version)) is not None)


def _with_records(entity: Any, records: Iterator[Any]) -> Any:
    """`entity` with each records field (regular fields, in order, nested ones too) the next of `records`."""
    changes = {}
    for f in dataclasses.fields(entity):
        if "tag" in f.metadata:
            continue
        value = getattr(entity, f.name)
        if f.metadata.get("kafka_type") == "records":
            changes[f.name] = next(records)
        elif isinstance(value, tuple) and value and dataclasses.is_dataclass(value[0]):
            changes[f.name] = tuple(_with_records(v, records) for v in value)
        elif dataclasses.is_dataclass(value):
            changes[f.name] = _with_records(value, records)
    return dataclasses.replace(entity, **changes)


def _frame(entity: Any) -> memoryview:
    """The answer as a follower receives it: size prefix off, a read-only view of a buffer."""
    return memoryview(bytearray(b"".join(bytes(p) for p in encode_response(7, entity))[4:])).toreadonly()


def test_every_fetch_answer_a_follower_gets_has_a_spanner() -> None:
    assert {v for k, v in WITH_RECORDS if k == 1} >= set(range(4, 19))  # (followers send v12+)


@fuzz_settings(200)
@given(response=st.sampled_from(WITH_RECORDS).flatmap(
    lambda kv: requests(load_response_schema(*kv), records=(b"", b"ab" * 500, b"r" * 70_000))))
def test_views_are_the_records_kio_decodes(response: Any) -> None:
    cls = type(response)
    frame = _frame(response)
    expected = decode_response(frame, cls)
    body, views = decode_response_views(frame, cls)
    assert views is not None
    as_bytes = [None if v is None else bytes(v) for v in views]
    assert _with_records(body, iter(as_bytes)) == expected
    emptied = []
    _with_records(body, iter(lambda: emptied.append(0) or b"", None))  # (counts the records fields)
    assert len(emptied) == len(views)


def test_a_response_without_records_is_decoded_as_usual() -> None:
    from kio.schema.api_versions.v3.response import ApiVersionsResponse

    response = build_response(18, 3, {"error_code": 0, "api_keys": [{"api_key": 1, "min_version": 4, "max_version": 17}],
                                      "throttle_time": 0})
    body, views = decode_response_views(_frame(response), ApiVersionsResponse)
    assert views is None and body == decode_response(_frame(response), ApiVersionsResponse) == response


def test_every_produce_version_has_a_spanner() -> None:
    assert {v for k, v in REQUESTS_WITH_RECORDS if k == 0} >= set(range(3, 12))


@fuzz_settings(200)
@given(request=st.sampled_from(REQUESTS_WITH_RECORDS).flatmap(
    lambda kv: requests(load_request_schema(*kv), records=(b"", b"ab" * 500, b"r" * 70_000))))
def test_a_produce_decodes_with_its_records_as_views_of_the_frame(request: Any) -> None:
    """The leader's decode (`request_decoder`) equals kio's; in a frame of `VIEWS_FROM` bytes or
    more each records field is a read-only view of the frame (or None), not a copy."""
    frame = encode_request(9, "views", request)[4:]
    decoded = request_decoder(request.__api_key__, request.__version__)(frame, 9)
    assert decoded.body == request
    views: list[Any] = []
    _with_records(decoded.body, iter(lambda: views.append(0) or b"", None))  # (counts the fields)
    fields = [p.records for t in decoded.body.topic_data for p in t.partition_data]
    assert len(fields) == len(views)
    large = len(frame) >= VIEWS_FROM
    for value in fields:
        assert value is None or (isinstance(value, memoryview) and value.readonly and value.obj is frame
                                 if large else isinstance(value, bytes))
