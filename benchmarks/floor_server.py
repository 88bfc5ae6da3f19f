"""The small path's floor in Python (benchmarks/bench_small_floor.py): a Kafka-framed server on
uvloop that does no broker work, with the `suoi broker` process's collector and GIL settings.

Like `suoi.net.server` it is an `asyncio.BufferedProtocol` per connection that reads into a
scratch buffer and copies each whole frame out as `bytes`; a Produce (api key 0) moves a
one-record "log end" and is answered at once with a canned answer (its correlation id and base
offset written in); a Fetch (api key 1) below the log end is answered at once with a canned
answer holding the record batch, otherwise it is held until a Produce moves the log end past it
(answered after the Produce's answer, as suoi does). No timer, no decoding, no log: what is left
is framing, the event loop, the syscalls and the wake-ups, paid in Python.

    python floor_server.py PORT PRODUCE_ANSWER FETCH_ANSWER BASE_POS OFFSET_FROM_END GEN0 SWITCH_S

(the answers: files holding a response without its size prefix, the correlation id first;
BASE_POS: where the Produce answer's base offset is; OFFSET_FROM_END: where a Fetch request's
fetch offset is, from its end; GEN0 / SWITCH_S: `suoi.cli.broker`'s GC gen0 threshold and GIL
switch interval). Imports nothing of suoi: the bench passes those values in.
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


class Floor:
    """What the connections share: the log end and the held Fetches."""

    def __init__(self, produce: bytes, fetch: bytes, base_pos: int, offset_from_end: int) -> None:
        self.produce = _SIZE.pack(len(produce)) + produce
        self.fetch = _SIZE.pack(len(fetch)) + fetch
        self.base_pos = 4 + base_pos
        self.offset_from_end = offset_from_end
        self.log_end = 0
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


async def serve(port: int, floor: Floor) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: FloorConnection(floor), "127.0.0.1", port)
    gc.freeze()  # as `suoi broker` does once started
    async with server:
        await server.serve_forever()


def main() -> None:
    import uvloop

    port, produce_file, fetch_file, base_pos, offset_from_end, gen0, switch_s = sys.argv[1:8]
    with open(produce_file, "rb") as f, open(fetch_file, "rb") as g:
        floor = Floor(f.read(), g.read(), int(base_pos), int(offset_from_end))
    gc.freeze()  # `suoi.cli.broker._tune_gc`: imports frozen, a larger young generation
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(int(gen0), max(gen1, 20), max(gen2, 20))
    sys.setswitchinterval(float(switch_s))  # `_tune_gil`
    uvloop.run(serve(int(port), floor))


if __name__ == "__main__":
    main()
