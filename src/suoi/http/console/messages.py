"""The message browser: records of one partition from an offset, a timestamp, or the newest ones.

Fetch goes to the partition leader (kio Fetch v12, read_uncommitted, no wait); the record
batches are decoded by `suoi.protocol.records` (any codec). Keys, values and header values are
shown as text when they are UTF-8 and as base64 otherwise (`encoding` says which); values in
the schema registry's wire format are decoded through it when one is given (schemas.py). Bounded:
at most `MAX_LIMIT` records and `MAX_FETCHES` Fetch round trips per page.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from suoi.http.console.kafka_reads import EARLIEST, LATEST, ClusterClient, KafkaReadError, error_name, failed
from suoi.http.console.schemas import SchemaDecoder
from suoi.protocol.record_batch import iter_batches
from suoi.protocol.record_codec import decode_batch_records

__all__ = ["MAX_LIMIT", "browse"]

MAX_LIMIT = 500
MAX_FETCHES = 8
FETCH_BYTES = 1 << 20
SHOWN_BYTES = 16 * 1024


def _text(data: bytes | None) -> dict[str, Any] | None:
    """A key, value or header value for the page; values over `SHOWN_BYTES` are cut (with
    their full `size`), so a page of 1 MiB records stays a small answer."""
    if data is None:
        return None
    size, cut = len(data), data[:SHOWN_BYTES]
    try:
        text = cut.decode("utf-8", errors="strict" if size <= SHOWN_BYTES else "ignore")
    except UnicodeDecodeError:
        return {"encoding": "base64", "data": base64.b64encode(cut).decode(), "size": size}
    try:
        json.loads(text)
        kind = "json"
    except ValueError:
        kind = "text"
    return {"encoding": kind, "data": text, "size": size}


async def browse(client: ClusterClient, leader: int, topic: str, partition: int, *, offset: int | None = None,
                 timestamp: int | None = None, limit: int = 50, decoder: SchemaDecoder | None = None) -> dict[str, Any]:
    """Up to `limit` records from `offset` (or the first at/after `timestamp`, or the newest
    `limit` when neither is given), with the partition's log start and high watermark."""
    limit = max(1, min(limit, MAX_LIMIT))
    if timestamp is not None:
        found = await client.list_offsets(leader, [(topic, partition)], timestamp)
        offset = found.get((topic, partition), -1)
    records: list[dict[str, Any]] = []
    key = (topic, partition)
    starts, ends = await asyncio.gather(client.list_offsets(leader, [key], EARLIEST),
                                        client.list_offsets(leader, [key], LATEST))
    if key not in starts or key not in ends:
        raise KafkaReadError(f"{topic}-{partition}: the leader {leader} does not answer for it")
    start, hw = starts[key], ends[key]
    if offset is None:
        offset = max(start, hw - limit)
    elif offset < 0:  # a timestamp past the last record
        return {"log_start": start, "high_watermark": hw, "from": hw, "records": []}
    offset = max(offset, start)
    position = offset
    for _ in range(MAX_FETCHES):
        if position >= hw or len(records) >= limit:
            break
        part = await client.fetch(leader, topic, partition, position, FETCH_BYTES)
        if failed(part.error_code):
            raise KafkaReadError(f"Fetch {topic}-{partition}: {error_name(part.error_code)}")
        data = bytes(part.records or b"")
        moved = False
        for pos, header in iter_batches(data):
            if header.is_control:
                position = max(position, header.next_offset)
                moved = True
                continue
            for r in decode_batch_records(data, pos, header):
                assert r.offset is not None
                if r.offset >= position and len(records) < limit and r.offset < hw:
                    decoded = await decoder.decode(r.value) if decoder is not None else None
                    records.append({"offset": r.offset, "timestamp": r.timestamp_ms, "key": _text(r.key),
                                    "value": decoded or _text(r.value),
                                    "headers": [{"key": k, "value": _text(v)} for k, v in r.headers]})
            position = max(position, header.next_offset)
            moved = True
        if not moved:
            break
    return {"log_start": start, "high_watermark": hw, "from": offset, "records": records}
