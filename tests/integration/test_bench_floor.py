"""The small path's floor servers (benchmarks/floor_server.c, floor_server.py with and without
suoi's codec; started by benchmarks/bench_small_floor.py) answer the bench's rounds as a broker
would: a Produce gets its correlation id and the next base offset, a Fetch at the log end is held
until a Produce moves the log end and then gets the record batch under its own correlation id, a
Fetch below the log end is answered at once. A floor that answered wrongly would make the bench
measure something else."""

from __future__ import annotations

import select
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kio.schema.fetch.v12.response import FetchResponse
from kio.schema.produce.v9.response import ProduceResponse

from suoi.protocol.codec import decode_response, response_correlation_id

pytestmark = pytest.mark.timeout(120)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import bench_small_floor as floor  # noqa: E402
from bench_produce_wire import Rounds, fetch_frame, produce_frame  # noqa: E402


@pytest.fixture(params=["C", "Python", "Python+codec"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[floor.FloorServer]:
    if request.param == "C":
        if shutil.which("cc") is None and shutil.which("gcc") is None:
            pytest.skip("no C compiler")
        built = floor.c_floor(str(tmp_path))
        assert built is not None, "floor_server.c did not compile"
        s = built
    else:
        s = floor.python_floor(codec=request.param == "Python+codec")
    s.start()
    try:
        yield s
    finally:
        s.stop()  # by its PID


def test_a_held_fetch_is_answered_after_the_produce_that_moves_the_log_end(server: floor.FloorServer) -> None:
    r = Rounds(server.port)  # its first Produce: base offset 0, the log end 1
    try:
        assert r.offset == 1
        r.fetch.send(fetch_frame("p6", 0, 1, 10))
        time.sleep(0.05)  # not a synchronisation: a wrong early answer would show in this window
        assert not select.select([r.fetch.sock], [], [], 0)[0], "a Fetch at the log end was answered at once"
        r.produce.send(produce_frame("p6", [0], r.batch, cid=11))
        produced = r.produce.recv()
        assert response_correlation_id(produced) == 11
        answer = decode_response(produced, ProduceResponse)
        assert answer.responses[0].partition_responses[0].base_offset == 1
        fetched = r.fetch.recv()
        assert response_correlation_id(fetched) == 10
        partition = decode_response(fetched, FetchResponse).responses[0].partitions[0]
        assert partition.partition_index == 0 and partition.error_code == 0
        # one record batch of one 100 B value, as suoi would send it (its own timestamp)
        assert partition.records is not None and len(partition.records) == len(r.batch)
        assert b"y" * 100 in partition.records
        # below the log end (2 now): answered at once, with its own correlation id
        r.fetch.send(fetch_frame("p6", 0, 1, 12))
        assert response_correlation_id(r.fetch.recv()) == 12
        # the bench's rounds go on from the log end: offsets 2, 3, ...
        r.offset = 2
        for _ in range(20):
            assert r.one() < 5.0
        assert r.offset == 22
    finally:
        r.close()
    assert server.cpu() > 0
