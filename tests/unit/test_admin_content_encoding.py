"""gzip of /metrics (suoi.http.admin.content_encoding): which `Accept-Encoding` takes it, and the
body gzipped a chunk per step after the exposition's own steps, decompressing to that body."""

from __future__ import annotations

import gzip
import random
from collections.abc import Generator

import pytest

from suoi.http.admin.content_encoding import CHUNK, gzip_accepted, gzip_steps


@pytest.mark.parametrize(("header", "accepted"), [
    ("gzip", True),  # what Prometheus sends
    ("gzip, deflate", True),  # aiohttp's, curl --compressed's
    ("deflate, GZIP;q=0.5", True),
    ("x-gzip", True),
    ("*", True),
    ("br;q=1.0, *;q=0.1", True),
    ("", False),
    ("identity", False),
    ("deflate, br", False),
    ("gzip;q=0", False),
    ("gzip; q=0.000", False),
    ("*, gzip;q=0", False),  # gzip named: its own weight counts, not the wildcard's
    ("*;q=0", False),
    ("gzip;q=nonsense", False),
    ("gzipped", False),
])
def test_which_accept_encoding_takes_gzip(header: str, accepted: bool) -> None:
    assert gzip_accepted(header) is accepted


def _body_steps(body: bytes, steps: int) -> Generator[None, None, bytes]:
    for _ in range(steps):
        yield
    return body


def _run(steps: Generator[None, None, bytes]) -> tuple[int, bytes]:
    count = 0
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return count, done.value
        count += 1


def test_the_body_gzipped_a_chunk_per_step() -> None:
    rng = random.Random(19)
    lines = [f'kafka_log_log_logendoffset{{partition="{p}",topic="t{p % 7}"}} {rng.randrange(10**9)}.0\n'
             for p in range(3000)]
    body = "".join(lines).encode()
    assert len(body) > 3 * CHUNK
    steps, gzipped = _run(gzip_steps(_body_steps(body, 5)))
    assert gzip.decompress(gzipped) == body
    assert steps == 5 + -(-len(body) // CHUNK)  # the body's own steps, then one per chunk
    assert len(gzipped) < len(body) / 3
    assert gzipped[:2] == b"\x1f\x8b" and gzipped[4:8] == b"\x00\x00\x00\x00"  # gzip, no mtime
    assert _run(gzip_steps(_body_steps(body, 0)))[1] == gzipped  # the same body, the same bytes


def test_an_empty_body_is_a_valid_gzip_member() -> None:
    steps, gzipped = _run(gzip_steps(_body_steps(b"", 1)))
    assert steps == 1
    assert gzip.decompress(gzipped) == b""
