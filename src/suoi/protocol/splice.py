"""Responses with one array field given as already-encoded elements.

A Metadata answer for a topic of 1,000 partitions costs ~25 ms to build and encode with kio
(one entity and several small writes per partition), yet the same topic is answered the same
way until the metadata image changes. The api layer keeps each topic's kio encoding
(`encode_element`) and answers with a `SplicedResponse`: the top-level fields are encoded with
the array empty, and the cached elements are put in its place. Both are written straight from
the handler's dicts by `compiled_dict_writer` (kio's bytes without building kio's entities
first: `build` cost ~10 µs an answer).

Only the array length is written here (with kio's writers); everything else is kio's bytes.
That works for responses whose fields after the array have a fixed width (Metadata: the
cluster's authorized operations, the error code, the empty tagged-field count);
`_tail_width` refuses any other shape. tests/unit/protocol/test_splice.py checks the result
byte for byte against kio's encoding of the whole response.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from functools import cache
from io import BytesIO
from typing import Any

from kio.serial.writers import write_compact_array_length, write_legacy_array_length
from kio.static.primitive import i32

from suoi.protocol.codec_build import _plan
from suoi.protocol.codec_responses import _INT32, GatherBuffer
from suoi.protocol.compiled_dict_writer import dict_writer, encode_response_data
from suoi.protocol.file_records import FileRegion

#: Wire widths of the fixed-size field types that may follow a spliced array.
_FIXED_WIDTH = {"int8": 1, "bool": 1, "int16": 2, "error_code": 2, "int32": 4, "timedelta_i32": 4,
                "int64": 8, "timedelta_i64": 8}


@dataclasses.dataclass(frozen=True, slots=True)
class SplicedResponse:
    """A response given as a dict (as handlers return them) whose `field` array holds kio
    encodings of its elements (`bytes`) and/or dicts still to encode."""

    data: Mapping[str, Any]
    field: str


@cache
def element_class(response_cls: type, field: str) -> type:
    """The kio class of the elements of `response_cls`'s array `field`."""
    for p in _plan(response_cls):
        if p.name == field and p.kind == "entities" and p.nested is not None:
            return p.nested
    raise ValueError(f"{response_cls.__qualname__}.{field} is not an array of entities")


def encode_element(cls: type, data: Mapping[str, Any]) -> bytes:
    """kio's encoding of one array element (given as a dict, as `codec.build` takes it)."""
    pieces = GatherBuffer()
    dict_writer(cls)(pieces, data)
    return b"".join(pieces)


@cache
def _tail_width(response_cls: type, field: str) -> int:
    """Bytes kio writes after the array `field`: fixed-width fields, then (flexible versions)
    the count of tagged fields, which is 0 because such a response has no tagged fields."""
    fields = dataclasses.fields(response_cls)
    names = [f.name for f in fields]
    if any("tag" in f.metadata for f in fields):
        raise ValueError(f"{response_cls.__qualname__} has tagged fields: cannot splice")
    width = 1 if response_cls.__flexible__ else 0  # type: ignore[attr-defined]
    for f in fields[names.index(field) + 1:]:
        kafka_type = f.metadata.get("kafka_type")
        if kafka_type not in _FIXED_WIDTH:
            raise ValueError(f"{response_cls.__qualname__}.{f.name} ({kafka_type}) follows {field}: cannot splice")
        width += _FIXED_WIDTH[kafka_type]
    return width


def encode_spliced(correlation_id: int, response_cls: type, spliced: SplicedResponse
                   ) -> list[bytes | bytearray | memoryview | FileRegion]:
    """Header and body of `spliced` as one size-prefixed frame, ready for `transport.writelines`."""
    field = spliced.field
    items = spliced.data[field]
    cls = element_class(response_cls, field)
    elements = [x if isinstance(x, bytes | bytearray) else encode_element(cls, x) for x in items]
    empty = {**spliced.data, field: ()}
    framed = encode_response_data(correlation_id, response_cls.__api_key__, response_cls.__version__,  # type: ignore[attr-defined]
                                  empty)
    out = _splice(bytearray().join(framed), response_cls, field, elements)  # type: ignore[arg-type]  # (no records: no file regions)
    _INT32.pack_into(out, 0, len(out) - 4)
    return [bytes(out)]


def encode_element_spliced(cls: type, data: Mapping[str, Any], field: str, array: bytes, count: int) -> bytes:
    """`encode_element` of an entity whose array `field` of `count` elements is already
    encoded as `array` (the elements only, without the length)."""
    return bytes(_splice(bytearray(encode_element(cls, {**data, field: ()})), cls, field, (array,), count))


def _splice(encoded: bytearray, cls: type, field: str, elements: Sequence[bytes | bytearray],
            count: int | None = None) -> bytearray:
    """`encoded` (kio's bytes of `cls` with `field` empty, at the end of the buffer) with the
    elements in the array's place and its length (`count`, default: one per element) set."""
    length = BytesIO()
    if cls.__flexible__:  # type: ignore[attr-defined]
        write_compact_array_length(length, len(elements) if count is None else count)
        empty_len = 1  # kio wrote uvarint(0 + 1)
    else:
        write_legacy_array_length(length, i32(len(elements) if count is None else count))
        empty_len = 4
    cut = len(encoded) - _tail_width(cls, field)
    return bytearray().join((encoded[:cut - empty_len], length.getvalue(), *elements, encoded[cut:]))
