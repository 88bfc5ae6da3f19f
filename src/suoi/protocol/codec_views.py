"""A request's or a response's records fields handed back as views of the frame, not kio's copies
(`codec_requests.request_decoder` for a large Produce, `codec_client.decode_response_views` for a
follower's Fetch answer): the frame kio decodes with each records field emptied, the views cut
from the frame, and a setter that puts them back into the decoded entity in wire order."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any, TypeAlias

from suoi.protocol.bounds import records_spanner

#: an empty records field, by flexibility (compact: length + 1 as a varint; classic: an int32)
EMPTY_RECORDS = {True: b"\x01", False: b"\x00\x00\x00\x00"}


def without_records(frame: bytes | memoryview, spans: list[tuple[int, int, int]], empty: bytes) -> bytes:
    """`frame` with each records field (`spans`: length prefix at, data at, length) made empty:
    what kio decodes, a few hundred bytes however large the records (a bytearray grown in place:
    then one copy, kio reading read-only buffers only: faster than a join of slices)."""
    out = bytearray()
    at = 0
    for prefix, start, size in spans:
        out += frame[at:prefix]
        out += empty
        at = start + size if size > 0 else start
    out += frame[at:]
    return bytes(out)


def record_views(frame: bytes | memoryview, spans: list[tuple[int, int, int]]) -> list[memoryview | None]:
    """A read-only view of `frame` per records field in `spans` (None for a null one)."""
    view = memoryview(frame).toreadonly()
    return [view[start:start + size] if size >= 0 else None for _, start, size in spans]


_ViewsSetter: TypeAlias = Callable[[Any, Iterator[Any]], None]


@cache
def views_setter(cls: type) -> _ViewsSetter:
    """`put(entity, views)`: set each records field of a decoded kio `cls` entity (nested ones
    included) to the next of `views`, in wire order (the order `bounds.records_spanner` notes
    them: the regular fields' declaration order; records in tagged fields have no spanner).
    kio's entities are frozen dataclasses; the decoded request is the decoder's own."""
    steps: list[tuple[str, str, _ViewsSetter | None]] = []
    for f in dataclasses.fields(cls):
        if "tag" in f.metadata:
            continue
        tp = typing.get_args(f.type)[0] if typing.get_origin(f.type) is tuple else f.type
        for arg in typing.get_args(tp) or (tp,):  # X | None: X
            if isinstance(arg, type) and dataclasses.is_dataclass(arg) and records_spanner(arg) is not None:
                kind = "entities" if typing.get_origin(f.type) is tuple else "entity"
                steps.append((f.name, kind, views_setter(arg)))
                break
        else:
            if f.metadata.get("kafka_type") == "records":
                steps.append((f.name, "records", None))
    put_attr = object.__setattr__

    def put(entity: Any, views: Iterator[Any]) -> None:
        for name, kind, nested in steps:
            if nested is None:
                put_attr(entity, name, next(views))
            elif kind == "entity":
                value = getattr(entity, name)
                if value is not None:
                    nested(value, views)
            else:
                for item in getattr(entity, name):
                    nested(item, views)

    return put

