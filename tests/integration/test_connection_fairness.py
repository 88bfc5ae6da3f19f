"""One connection with a backlog of requests does not hold the node's event loop
(`suoi.net.server.YIELD_AFTER_S`): the node works through it in slices and runs everything else
that is ready in between. Before, a producer the node had fallen behind was read up to 8 MB per
readable event and handled in one go; every other client (a consumer's Fetch, the admin
endpoint) waited until all of it was done: seconds at 10,000 one-record Produce requests per
second (benchmarks/bench_latency.py)."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import Iterator

import pytest

from suoi.protocol.records import build_batch
from suoi.testing import InProcessNode
from tests.integration.support import produce_req
from tests.rawclient import RawClient

pytestmark = pytest.mark.timeout(60)

BACKLOG = 4000  # one-record Produce requests written at once (~700 KB)


class LoopTicker:
    """Runs on the node's loop, one step per loop iteration, noting the most CPU time the
    loop's thread spent between two steps: the longest the loop ran something else in one go."""

    def __init__(self) -> None:
        self.measuring = False
        self.stopped = False
        self.max_gap_s = 0.0
        self.cpu_s = 0.0

    async def run(self) -> None:
        last = time.thread_time()
        while not self.stopped:
            await asyncio.sleep(0)
            now = time.thread_time()
            if self.measuring:
                self.max_gap_s = max(self.max_gap_s, now - last)
                self.cpu_s += now - last
            last = now


@pytest.fixture(scope="module")
def node() -> Iterator[InProcessNode]:
    with InProcessNode() as n:
        n.create_topic("fair", partitions=1)
        yield n


def test_a_backlogged_connection_is_handled_in_slices(node: InProcessNode) -> None:
    ticker = LoopTicker()

    async def start_ticker() -> asyncio.Task[None]:
        return asyncio.get_running_loop().create_task(ticker.run())

    task = node.run(start_ticker())
    # What the test process holds (every earlier test's objects, on a busy xdist worker) out of the
    # collector, as `suoi broker` freezes its start-up objects: a full collection of this whole heap on
    # the loop thread would be a gap of its own, not one of the connection's slices.
    gc.collect()
    gc.freeze()
    try:
        with RawClient(node.bootstrap, timeout=30) as flood:
            frame = flood.encode(produce_req("fair", 0, build_batch([(None, b"v" * 100)]), acks=1))
            answered = [0]

            def read_answers() -> None:
                for _ in range(BACKLOG):
                    flood.recv_frame()
                    answered[0] += 1

            reader = threading.Thread(target=read_answers, daemon=True)
            reader.start()
            ticker.measuring = True
            flood.send_bytes(frame * BACKLOG)
            reader.join(timeout=45)
            ticker.measuring = False
            assert answered[0] == BACKLOG  # every request answered, in order, none dropped
    finally:
        gc.unfreeze()
        ticker.stopped = True
        node.run(asyncio.wait_for(task, 10))
    assert ticker.cpu_s > 0.05, ticker.cpu_s  # the backlog was real work for the loop
    # no step ran much longer than a slice (YIELD_AFTER_S = 2 ms) plus one request
    assert ticker.max_gap_s < 0.015, (ticker.max_gap_s, ticker.cpu_s)
