"""The dict writers (`protocol.compiled_dict_writer`) write what `build` + the compiled entity
writer write, for handler-style dicts made from Hypothesis-built responses of every version of
every response class kio has (Produce and Fetch with more examples: they are the hot answers):
nested entities as dicts or as entities, error codes, durations and timestamps as plain ints,
fields left out where they hold the schema default, None where the version has no null."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import os
import sys
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kio.index import load_response_schema
from kio.schema.produce.v9.response import ProduceResponse

from suoi.log.handles import FileHandles, LazyFile
from suoi.model import ErrorCode
from suoi.protocol.codec import GatherBuffer, build, build_response, encode_response
from suoi.protocol.compiled_dict_writer import EncodedOnce, dict_writer, encode_response_data
from suoi.protocol.compiled_writer import Encoded, compiled_writer
from suoi.protocol.file_records import FileRecords, FileRegion, joined
from tests.kio_strategies import fuzz_settings, requests
from tests.unit.protocol.test_compiled_writer import HOT, RESPONSES


def _entity_bytes(entity: Any) -> bytes:
    out = BytesIO()
    compiled_writer(type(entity))(out, entity)
    return out.getvalue()


def _dict_bytes(cls: type, data: dict[str, Any]) -> bytes:
    out = BytesIO()
    dict_writer(cls)(out, data)
    return out.getvalue()


def _as_handler_dict(entity: Any, draw: Any) -> dict[str, Any]:
    """What a handler could have returned for `entity`: plain values, some keys left out."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(entity):
        value = getattr(entity, f.name)
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        if has_default and value == default and draw(st.booleans()):
            continue  # build takes the schema default
        out[f.name] = _plain(value, draw)
    return out


def _plain(value: Any, draw: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _as_handler_dict(value, draw) if draw(st.booleans()) else value
    if isinstance(value, tuple) and value and dataclasses.is_dataclass(value[0]):
        return [_plain(v, draw) for v in value]
    if isinstance(value, datetime.timedelta) and draw(st.booleans()):
        return round(value.total_seconds() * 1000)
    if isinstance(value, datetime.datetime) and value.timestamp() >= 0 and draw(st.booleans()):
        return round(value.timestamp() * 1000)
    if isinstance(value, enum.IntEnum) and draw(st.booleans()):
        return int(value)
    return value


@st.composite
def _cases(draw: Any, pairs: list[tuple[int, int]]) -> tuple[Any, dict[str, Any]]:
    key, version = draw(st.sampled_from(pairs))
    entity = draw(requests(load_response_schema(key, version), records=(b"", b"r" * 70_000)))
    return entity, _as_handler_dict(entity, draw)


@fuzz_settings(150)
@given(case=_cases(HOT))
def test_produce_fetch_metadata_dicts_are_written_as_built_entities(case: tuple[Any, dict[str, Any]]) -> None:
    entity, data = case
    assert _dict_bytes(type(entity), data) == _entity_bytes(entity)


@fuzz_settings(150)
@given(case=_cases(RESPONSES))
def test_every_response_class_from_a_dict_is_the_built_entitys_bytes(case: tuple[Any, dict[str, Any]]) -> None:
    entity, data = case
    assert _dict_bytes(type(entity), data) == _entity_bytes(entity)
    assert _dict_bytes(type(entity), data) == _entity_bytes(build(type(entity), data))


def test_a_produce_answer_as_handlers_give_it() -> None:
    """Ints for the error code, throttle time and log append time; a None error message; a
    key the version lacks (ignored); the answer framed as `encode_response` frames it."""
    data = {"throttle_time": 0, "responses": [{"name": "t", "topic_id": None, "partition_responses": [
        {"index": 3, "error_code": ErrorCode.none, "base_offset": 42, "log_append_time": -1, "log_start_offset": 0,
         "record_errors": [], "error_message": None, "no_such_field": 1}]}]}
    for version in range(3, 12):
        expected = b"".join(encode_response(9, build_response(0, version, data)))
        assert b"".join(encode_response_data(9, 0, version, data)) == expected


def test_an_answer_encoded_once_is_framed_anew_for_each_request() -> None:
    """`EncodedOnce` (ApiVersions): the kept body under each request's own correlation id, and
    another version of the same answer encoded for that version."""
    data = {"error_code": 0, "throttle_time": 0, "api_keys": [{"api_key": k, "min_version": 0, "max_version": k % 9}
                                                              for k in range(40)],
            "finalized_features": [{"name": "metadata.version", "min_version_level": 25, "max_version_level": 25}],
            "finalized_features_epoch": 17}
    once = EncodedOnce(data)
    for version in (3, 0, 3, 4):
        for correlation_id in (1, 70000):
            expected = b"".join(encode_response(correlation_id, build_response(18, version, data)))
            assert b"".join(encode_response_data(correlation_id, 18, version, once)) == expected


def test_encoded_array_elements_are_written_as_is() -> None:
    """A Fetch answer whose partitions mix dicts and `Encoded` entries (each written before by the
    version's partition dict writer, as `api.fetch` keeps a caught-up partition's) is byte for
    byte the answer of all dicts, for flexible and non-flexible versions."""
    def part(index: int, records: bytes) -> dict[str, Any]:
        return {"partition_index": index, "error_code": 0, "high_watermark": 10 + index, "last_stable_offset": 10 + index,
                "log_start_offset": index, "aborted_transactions": None if index % 2 else [],
                "preferred_read_replica": -1, "records": records}

    dicts = [part(i, b"" if i != 2 else b"r" * 300) for i in range(4)]
    for version in (4, 11, 12, 16):
        entry = dict_writer(_element(_element(load_response_schema(1, version), "responses"), "partitions"))
        mixed = []
        for d in dicts:
            if d["records"]:
                mixed.append(d)
                continue
            pieces = GatherBuffer()
            entry(pieces, d)
            mixed.append(Encoded(b"".join(pieces)))
        topic = {"topic": "t", "topic_id": None}
        expected = b"".join(encode_response_data(5, 1, version, {
            "throttle_time": 0, "error_code": 0, "session_id": 0, "responses": [{**topic, "partitions": dicts}]}))
        assert b"".join(encode_response_data(5, 1, version, {
            "throttle_time": 0, "error_code": 0, "session_id": 0, "responses": [{**topic, "partitions": mixed}]})) == expected


def _element(cls: Any, name: str) -> Any:
    """The entity class of array field `name` of kio class `cls` (defined in its module)."""
    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    element = str(field.type).removeprefix("tuple[").split(",")[0].strip().rsplit(".", 1)[-1]
    return getattr(sys.modules[cls.__module__], element)


def test_a_missing_required_field_raises_as_build_does() -> None:
    with pytest.raises(TypeError, match="missing required field 'index'"):
        _dict_bytes(ProduceResponse, {"responses": [{"name": "t", "partition_responses": [{"error_code": 0}]}]})
    with pytest.raises(TypeError, match="missing required field 'index'"):
        build(ProduceResponse, {"responses": [{"name": "t", "partition_responses": [{"error_code": 0}]}]})


def test_an_unknown_error_code_raises_as_build_does() -> None:
    data = {"responses": [{"name": "t", "partition_responses": [{"index": 0, "error_code": 12345}]}]}
    with pytest.raises(ValueError):
        build(ProduceResponse, data)
    with pytest.raises(ValueError):
        _dict_bytes(ProduceResponse, data)


def test_a_large_record_set_is_written_by_reference() -> None:
    records = b"r" * 100_000
    data = {"throttle_time": 0, "error_code": 0, "session_id": 0, "responses": [{"topic": "t", "partitions": [
        {"partition_index": 0, "error_code": 0, "high_watermark": 5, "last_stable_offset": 5, "log_start_offset": 0,
         "aborted_transactions": None, "preferred_read_replica": -1, "records": records}]}]}
    parts = encode_response_data(7, 1, 12, data)
    assert any(p is records for p in parts)
    assert b"".join(parts) == b"".join(encode_response(7, build_response(1, 12, data)))


def test_record_sets_large_and_small_between_small_fields() -> None:
    """A large record set is its own part, between the joined small pieces; the whole is framed."""
    large, small = b"L" * 40_000, b"s" * 100
    partitions = [{"partition_index": i, "error_code": 0, "high_watermark": 5, "last_stable_offset": 5,
                   "log_start_offset": 0, "aborted_transactions": None, "preferred_read_replica": -1, "records": r}
                  for i, r in enumerate((small, large, small, large))]
    data = {"throttle_time": 0, "error_code": 0, "session_id": 0, "responses": [{"topic": "t", "partitions": partitions}]}
    parts = encode_response_data(7, 1, 12, data)
    assert [p is large for p in parts] == [False, True, False, True, False]
    whole = b"".join(parts)
    assert whole == b"".join(encode_response(7, build_response(1, 12, data)))
    assert int.from_bytes(whole[:4], "big") == len(whole) - 4


def test_file_records_are_taken_apart_alike_by_both_encoders(tmp_path: Path) -> None:
    """`codec.GatherBuffer.finish` for both encoders: a region of a segment file is a part of
    its own (sent by sendfile) between the joined small pieces, and the bytes are the same."""
    data_bytes = bytes(range(256)) * 200
    segment = LazyFile(tmp_path / "00000000000000000000.log", os.O_RDWR | os.O_CREAT | os.O_APPEND, FileHandles())
    os.write(segment.fd, data_bytes)
    region = FileRegion(segment.pin(), 1000, 40_000, segment, segment.cuts)
    records = FileRecords([b"h" * 100, region, b"t" * 10])
    data = {"throttle_time": 0, "error_code": 0, "session_id": 0, "responses": [{"topic": "t", "partitions": [
        {"partition_index": 0, "error_code": 0, "high_watermark": 5, "last_stable_offset": 5,
         "log_start_offset": 0, "aborted_transactions": None, "preferred_read_replica": -1, "records": records}]}]}
    by_dict = encode_response_data(7, 1, 12, data)
    by_kio = encode_response(7, build_response(1, 12, data))
    for parts in (by_dict, by_kio):
        assert [p is region for p in parts] == [False, True, False]
    expected = b"".join(data_bytes[1000:41_000] if p is region else bytes(p) for p in by_kio)
    assert joined(by_dict) == expected  # reads the region, then releases it
    assert int.from_bytes(expected[:4], "big") == len(expected) - 4
    segment.close()
