"""The small path's floor in Python (benchmarks/bench_small_floor.py): a Kafka-framed server on
uvloop that does no broker work, with the `suoi broker` process's collector and GIL settings.

Like `suoi.net.server` it is an `asyncio.BufferedProtocol` per connection that reads into a
scratch buffer and copies each whole frame out as `bytes`; a Produce (api key 0) moves a
one-record "log end" and is answered at once with a canned answer (its correlation id and base
offset written in); a Fetch (api key 1) below the log end is answered at once with a canned
answer holding the record batch, otherwise it is held until a Produce moves the log end past it
(answered after the Produce's answer, as suoi does). No timer, no decoding, no log: what is left
is framing, the event loop, the syscalls and the wake-ups, paid in Python. With ``codec`` the
requests are decoded and the answers encoded by suoi's codec (`CodecConnection`).

    python floor_server.py PORT PRODUCE_ANSWER FETCH_ANSWER BASE_POS OFFSET_FROM_END GEN0 SWITCH_S [codec]

(the answers: files holding a response without its size prefix, the correlation id first;
BASE_POS: where the Produce answer's base offset is; OFFSET_FROM_END: where a Fetch request's
fetch offset is, from its end; GEN0 / SWITCH_S: `suoi.cli.broker`'s GC gen0 threshold and GIL
switch interval). Imports nothing of suoi but with ``codec``: the bench passes those values in.
"""

from __future__ import annotations

import asyncio
import gc
import struct
import sys
from typing import Any

_SIZE = struct.Struct(">i")
_HEADER = struct.Struct(">hhi")  # api key, api version, correlation id
_INT64 = struct.Struct(">q")
_SCRATCH = 65536


def produce_answer_data(base_offset: int) -> dict[str, Any]:
    """A one-partition Produce answer (p6-0) as suoi's handler gives it to the dict writer."""
    return {"responses": [{"name": "p6", "partition_responses": [{
        "index": 0, "error_code": 0, "base_offset": base_offset, "log_append_time": -1, "log_start_offset": 0,
        "record_errors": [], "error_message": None}]}], "throttle_time": 0}


def fetch_answer_data(records: bytes, high_watermark: int) -> dict[str, Any]:
    """A one-partition Fetch answer (p6-0) holding `records`, as suoi's handler gives it."""
    return {"throttle_time": 0, "error_code": 0, "session_id": 0, "responses": [{"topic": "p6", "partitions": [{
        "partition_index": 0, "error_code": 0, "high_watermark": high_watermark,
        "last_stable_offset": high_watermark, "log_start_offset": 0, "aborted_transactions": None,
        "preferred_read_replica": -1, "records": records}]}]}


class Floor:
    """What the connections share: the log end and the held Fetches."""

    def __init__(self, produce: bytes, fetch: bytes, base_pos: int, offset_from_end: int) -> None:
        self.produce = _SIZE.pack(len(produce)) + produce
        self.fetch = _SIZE.pack(len(fetch)) + fetch
        self.base_pos = 4 + base_pos
        self.offset_from_end = offset_from_end
        self.log_end = 0
        self.records = b""  # ``codec``: the last Produce's records, what a Fetch answer holds
        self.fetch_version = 12
        self.parked: dict[FloorConnection, tuple[int, int]] = {}  # connection -> (correlation id, offset)

    def fetch_answer(self, cid: int) -> bytearray:
        answer = bytearray(self.fetch)
        _SIZE.pack_into(answer, 4, cid)
        return answer


class FloorConnection(asyncio.BufferedProtocol):
    def __init__(self, floor: Floor) -> None:
        self.floor = floor
        self.scratch = bytearray(_SCRATCH)
        self.view = memoryview(self.scratch)
        self.start = self.end = 0
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:  # uvloop's TCPTransport
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.floor.parked.pop(self, None)

    def get_buffer(self, sizehint: int) -> memoryview:
        if self.start and _SCRATCH - self.end < 4096:  # a partial frame: to the front
            tail = bytes(self.view[self.start:self.end])
            self.scratch[:len(tail)] = tail
            self.start, self.end = 0, len(tail)
        return self.view[self.end:]

    def buffer_updated(self, nbytes: int) -> None:
        self.end += nbytes
        view = self.view
        while self.end - self.start >= 4:
            start = self.start
            (size,) = _SIZE.unpack_from(view, start)
            if size < 8 or size > _SCRATCH - 4:
                assert self.transport is not None
                self.transport.abort()
                return
            if self.end - start - 4 < size:
                break
            self.start = start + 4 + size
            self.handle(bytes(view[start + 4:start + 4 + size]))
        if self.start == self.end:
            self.start = self.end = 0

    def handle(self, frame: bytes) -> None:
        floor, transport = self.floor, self.transport
        assert transport is not None
        api_key, _, cid = _HEADER.unpack_from(frame, 0)
        if api_key == 0:  # Produce of one record: answered, then the Fetches it satisfies
            answer = bytearray(floor.produce)
            _SIZE.pack_into(answer, 4, cid)
            _INT64.pack_into(answer, floor.base_pos, floor.log_end)
            floor.log_end += 1
            transport.write(answer)
            for conn, (held_cid, offset) in list(floor.parked.items()):
                if offset < floor.log_end and conn.transport is not None:
                    del floor.parked[conn]
                    conn.transport.write(floor.fetch_answer(held_cid))
        elif api_key == 1 and self not in floor.parked:
            (offset,) = _INT64.unpack_from(frame, len(frame) - floor.offset_from_end)
            if offset < floor.log_end:
                transport.write(floor.fetch_answer(cid))
            else:
                floor.parked[self] = (cid, offset)
        else:
            transport.abort()  # anything else is not served


class CodecConnection(FloorConnection):
    """``codec`` (an 8th argument): each request decoded by suoi's codec as `api.dispatch` does
    (`request_decoder`: the bounds walk, kio's readers) and each answer encoded from a dict as the
    handlers' are (`encode_response_data`), the Fetch's holding the last Produce's records. Still
    no partition, log, notifier, metrics or order book: the codec's share of a round."""

    def handle(self, frame: bytes) -> None:
        from suoi.protocol.codec import read_prefix, request_decoder
        from suoi.protocol.compiled_dict_writer import encode_response_data

        floor, transport = self.floor, self.transport
        prefix = read_prefix(frame)
        request = request_decoder(prefix.api_key, prefix.api_version)(frame, prefix.correlation_id)
        if prefix.api_key == 0:
            floor.records = request.body.topic_data[0].partition_data[0].records
            transport.writelines(encode_response_data(prefix.correlation_id, 0, prefix.api_version,
                                                      produce_answer_data(floor.log_end)))
            floor.log_end += 1
            for conn, (held_cid, offset) in list(floor.parked.items()):
                if offset < floor.log_end and conn.transport is not None:
                    del floor.parked[conn]
                    conn.transport.writelines(encode_response_data(
                        held_cid, 1, floor.fetch_version, fetch_answer_data(floor.records, floor.log_end)))
        elif prefix.api_key == 1 and self not in floor.parked:
            offset = request.body.topics[0].partitions[0].fetch_offset
            floor.fetch_version = prefix.api_version
            if offset < floor.log_end:
                transport.writelines(encode_response_data(prefix.correlation_id, 1, prefix.api_version,
                                                          fetch_answer_data(floor.records, floor.log_end)))
            else:
                floor.parked[self] = (prefix.correlation_id, offset)
        else:
            transport.abort()


async def serve(port: int, floor: Floor, codec: bool) -> None:
    loop = asyncio.get_running_loop()
    kind = CodecConnection if codec else FloorConnection
    server = await loop.create_server(lambda: kind(floor), "127.0.0.1", port)
    gc.freeze()  # as `suoi broker` does once started
    async with server:
        await server.serve_forever()


def main() -> None:
    import uvloop

    port, produce_file, fetch_file, base_pos, offset_from_end, gen0, switch_s = sys.argv[1:8]
    codec = sys.argv[8:] == ["codec"]
    if codec:  # imported before the freeze, as `suoi broker` imports the broker's modules
        import suoi.protocol.codec
        import suoi.protocol.compiled_dict_writer  # noqa: F401
    with open(produce_file, "rb") as f, open(fetch_file, "rb") as g:
        floor = Floor(f.read(), g.read(), int(base_pos), int(offset_from_end))
    gc.freeze()  # `suoi.cli.broker._tune_gc`: imports frozen, a larger young generation
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(int(gen0), max(gen1, 20), max(gen2, 20))
    sys.setswitchinterval(float(switch_s))  # `_tune_gil`
    uvloop.run(serve(int(port), floor, codec))


if __name__ == "__main__":
    main()
