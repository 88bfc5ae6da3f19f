"""Hypothesis strategies for valid-shaped Kafka requests, derived from kio's schemas.

Every kio entity class carries its wire metadata (each field's kafka_type, nullability,
array-ness, tags); `requests(cls)` builds instances field by field from it, with small
arrays and strings so encoded requests stay a few hundred bytes. `known_strings` are mixed
into every string field so that some requests name a real topic/group and reach deeper
than "unknown topic". Used by the bounds unit test (walker vs kio on valid input) and by
the protocol fuzz test (valid shapes, then mutated bytes).
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import typing
from functools import cache
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from kio.index import load_request_schema
from kio.schema.errors import ErrorCode

from suoi.protocol.bounds import unwrap_optional

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)

_INT_RANGES = {
    "int8": 7, "int16": 15, "int32": 31, "int64": 63,
}
_UINT_BITS = {"uint8": 8, "uint16": 16, "uint32": 32, "uint64": 64}


def _interesting_ints(bits: int, signed: bool) -> st.SearchStrategy[int]:
    lo, hi = (-(2 ** bits), 2 ** bits - 1) if signed else (0, 2 ** bits - 1)
    edges = [v for v in (-1, 0, 1, 2, 3, lo, hi) if lo <= v <= hi]
    return st.one_of(st.sampled_from(edges), st.integers(min_value=max(lo, -1000), max_value=min(hi, 1000)),
                     st.integers(min_value=lo, max_value=hi))


#: Durations stay short so that a generated long-poll (Fetch max_wait, a join's rebalance
#: timeout) cannot park a request for long.
MAX_DURATION_MS = 200


def _scalar(kafka_type: str, known_strings: tuple[str, ...], records: tuple[bytes, ...]) -> st.SearchStrategy[Any]:
    if kafka_type in _INT_RANGES:
        return _interesting_ints(_INT_RANGES[kafka_type], True)
    if kafka_type in _UINT_BITS:
        return _interesting_ints(_UINT_BITS[kafka_type], False)
    if kafka_type == "bool":
        return st.booleans()
    if kafka_type == "float64":
        return st.floats(allow_nan=False, allow_infinity=False)
    if kafka_type == "uuid":
        return st.uuids()
    if kafka_type == "string":
        return st.one_of(st.sampled_from(known_strings), st.text(max_size=12))
    if kafka_type == "bytes":
        return st.binary(max_size=24)
    if kafka_type == "records":
        return st.one_of(st.sampled_from(records), st.binary(max_size=80))
    if kafka_type == "error_code":
        return st.sampled_from(list(ErrorCode))
    if kafka_type == "timedelta_i32":
        return st.integers(min_value=-1, max_value=MAX_DURATION_MS).map(lambda v: datetime.timedelta(milliseconds=v))
    if kafka_type == "timedelta_i64":
        return st.integers(min_value=-1, max_value=MAX_DURATION_MS).map(lambda v: datetime.timedelta(milliseconds=v))
    if kafka_type == "datetime_i64":
        return st.integers(min_value=0, max_value=2 ** 41).map(lambda v: _EPOCH + datetime.timedelta(milliseconds=v))
    raise TypeError(f"no strategy for kafka type {kafka_type!r}")


def _field(field: dataclasses.Field[Any], known_strings: tuple[str, ...],
           records: tuple[bytes, ...]) -> st.SearchStrategy[Any]:
    nullable, tp = unwrap_optional(field.type)
    if typing.get_origin(tp) is tuple:
        inner = typing.get_args(tp)[0]
        if isinstance(inner, type) and dataclasses.is_dataclass(inner):
            element = requests(inner, known_strings, records)
        else:
            element = _scalar(field.metadata["kafka_type"], known_strings, records)
        strategy: st.SearchStrategy[Any] = st.lists(element, max_size=3).map(tuple)
    elif isinstance(tp, type) and dataclasses.is_dataclass(tp):
        strategy = requests(tp, known_strings, records)
    else:
        strategy = _scalar(field.metadata["kafka_type"], known_strings, records)
    if nullable and field.metadata.get("kafka_type") != "uuid":
        return st.one_of(st.none(), strategy)
    return strategy


@cache
def requests(cls: type, known_strings: tuple[str, ...] = ("fuzz",),
             records: tuple[bytes, ...] = (b"",)) -> st.SearchStrategy[Any]:
    """Instances of kio entity `cls` (a request, or an entity nested in one)."""
    fields = {f.name: _field(f, known_strings, records) for f in dataclasses.fields(cls)}
    return st.builds(cls, **fields)


def served_request(api_key: int, versions: tuple[int, int], known_strings: tuple[str, ...] = ("fuzz",),
                   records: tuple[bytes, ...] = (b"",)) -> st.SearchStrategy[Any]:
    """A request of `api_key` at any version in `versions` (inclusive)."""
    return st.integers(*versions).flatmap(
        lambda v: requests(load_request_schema(api_key, v), known_strings, records))


def served(api_key: int, known_strings: tuple[str, ...] = ("fuzz",),
           records: tuple[bytes, ...] = (b"",)) -> st.SearchStrategy[Any]:
    """A request of `api_key` at any version suoi serves."""
    from suoi.api.registry import REGISTRY

    spec = REGISTRY[api_key]
    return served_request(api_key, (spec.min_version, spec.max_version), known_strings, records)


def fuzz_settings(default_examples: int) -> settings:
    """Deterministic (derandomized) Hypothesis settings; SUOI_FUZZ_EXAMPLES raises the number
    of examples for a longer local run (src/suoi/api/README.md)."""
    return settings(max_examples=int(os.environ.get("SUOI_FUZZ_EXAMPLES", default_examples)), derandomize=True,
                    deadline=None, suppress_health_check=list(HealthCheck))


def uvarint(n: int) -> bytes:
    """Kafka's unsigned varint (for hand-made hostile lengths)."""
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)
