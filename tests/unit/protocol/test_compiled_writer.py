"""The compiled entity writers (`protocol.compiled_writer`) write byte for byte what kio's
`entity_writer` writes, for Hypothesis-built instances of every version of every response
class kio has (Produce, Fetch and Metadata with more examples: they are the hot answers) and
of every request class (suoi's clients: replica fetcher, raft, forwarding), and every one of
them compiles (none is left to kio's writer)."""

from __future__ import annotations

from io import BytesIO
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kio.index import load_request_schema, load_response_schema
from kio.schema.describe_cluster.v0.response import DescribeClusterResponse
from kio.schema.fetch.v12.response import FetchResponse
from kio.schema.index import api_key_map, schema_name_map
from kio.serial import entity_writer
from kio.static.constants import EntityType

from suoi.protocol.codec import build, build_response, encode_response
from suoi.protocol.compiled_writer import compiled_writer
from tests.kio_strategies import fuzz_settings, requests

RESPONSES = sorted((key, version) for key, name in api_key_map.items() for version, kinds in schema_name_map[name].items()
                   if EntityType.response in kinds)
REQUESTS = sorted((key, version) for key, name in api_key_map.items() for version, kinds in schema_name_map[name].items()
                  if EntityType.request in kinds)
HOT = [(key, version) for key, version in RESPONSES if key in (0, 1, 3)]  # Produce, Fetch, Metadata


def _kio(entity: Any) -> bytes:
    out = BytesIO()
    entity_writer(type(entity))(out, entity)
    return out.getvalue()


def _compiled(entity: Any) -> bytes:
    out = BytesIO()
    compiled_writer(type(entity))(out, entity)
    return out.getvalue()


def _responses(pairs: list[tuple[int, int]], load: Any = load_response_schema) -> st.SearchStrategy[Any]:
    return st.sampled_from(pairs).flatmap(lambda kv: requests(load(*kv), records=(b"", b"r" * 70_000)))


@fuzz_settings(300)
@given(response=_responses(HOT))
def test_produce_fetch_metadata_answers_are_kios_bytes(response: Any) -> None:
    assert _compiled(response) == _kio(response)


@fuzz_settings(200)
@given(response=_responses(RESPONSES))
def test_every_response_class_is_kios_bytes(response: Any) -> None:
    assert _compiled(response) == _kio(response)


@fuzz_settings(150)
@given(request=_responses(REQUESTS, load_request_schema))
def test_every_request_class_is_kios_bytes(request: Any) -> None:
    assert _compiled(request) == _kio(request)


@pytest.mark.parametrize(("load", "key", "version"), [(load_request_schema, *kv) for kv in REQUESTS]
                         + [(load_response_schema, *kv) for kv in RESPONSES])
def test_every_class_compiles(load: Any, key: int, version: int) -> None:
    """Each class's writer is compiled once (no per-class fallback to kio)."""
    cls = load(key, version)
    writer = compiled_writer(cls)
    assert writer is compiled_writer(cls)
    assert writer.__code__.co_filename.startswith("<compiled writer")


def test_a_large_record_set_reaches_the_socket_by_reference() -> None:
    records = b"r" * 100_000
    answer = {"throttle_time": 0, "error_code": 0, "session_id": 0, "responses": [{"topic": "t", "partitions": [
        {"partition_index": 0, "error_code": 0, "high_watermark": 5, "last_stable_offset": 5, "log_start_offset": 0,
         "aborted_transactions": [], "preferred_read_replica": -1, "records": records}]}]}
    parts = encode_response(7, build(FetchResponse, answer))
    assert any(p is records for p in parts)
    expected = BytesIO()
    entity_writer(FetchResponse)(expected, build(FetchResponse, answer))
    assert b"".join(parts)[9:] == expected.getvalue()  # after size, correlation id, header tagged fields


def test_a_flexible_string_given_as_bytes_is_written_as_kio_writes_it() -> None:
    response = build_response(60, 0, {"throttle_time": 0, "error_code": 0, "error_message": b"caf\xc3\xa9",
                                      "cluster_id": b"abc", "controller_id": 1, "brokers": [],
                                      "cluster_authorized_operations": 0})
    assert type(response) is DescribeClusterResponse
    assert _compiled(response) == _kio(response)
    assert b"\x06caf\xc3\xa9" in _compiled(response)



@pytest.mark.parametrize("tagged", [{}, {"current_leader": {"leader_id": 2, "leader_epoch": 7}},
                                    {"diverging_epoch": {"epoch": 3, "end_offset": 40},
                                     "snapshot_id": {"end_offset": 9, "epoch": 1}}])
def test_tagged_fields_at_their_defaults_are_one_zero_byte_set_ones_are_kios_bytes(tagged: dict[str, Any]) -> None:
    """The tagged-field section: none set (the usual answer) is the single count byte 0; set
    ones are written in tag order with their count, as kio writes them (both writers)."""
    from suoi.protocol.codec import GatherBuffer
    from suoi.protocol.compiled_dict_writer import dict_writer

    partition = {"partition_index": 0, "error_code": 0, "high_watermark": 5, "last_stable_offset": 5,
                 "log_start_offset": 0, "aborted_transactions": [], "preferred_read_replica": -1, "records": b"",
                 **tagged}
    response = build(FetchResponse, {"throttle_time": 0, "error_code": 0, "session_id": 0,
                                     "responses": [{"topic": "t", "partitions": [partition]}]})
    entity = response.responses[0].partitions[0]
    pieces = GatherBuffer()
    dict_writer(type(entity))(pieces, partition)
    written = _kio(entity)
    assert _compiled(entity) == written == b"".join(pieces)
    assert _compiled(response) == _kio(response)
    untagged = _kio(build(type(entity), {k: v for k, v in partition.items() if k not in tagged}))
    assert untagged.endswith(b"\x00")  # records (empty), then no tagged field: a count of 0
    if tagged:  # count, then each field: its tag, size and value
        assert written[:len(untagged) - 1] == untagged[:-1] and written[len(untagged) - 1] == len(tagged)
    else:
        assert written == untagged
