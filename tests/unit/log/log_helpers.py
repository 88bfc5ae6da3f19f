"""Helpers shared by the storage tests (a uniquely named module, so it cannot
clash with other test packages' ``conftest`` on ``sys.path``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from suoi.log.partition_log import PartitionLog
from suoi.protocol.records import build_batch, parse_batch_header


class Clock:
    """Manually advanced milliseconds clock, so no test ever sleeps."""

    def __init__(self, now: int = 1_700_000_000_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> int:
        self.now += ms
        return self.now


def batch(n: int = 3, ts: int = 1000, payload: int = 10, tag: int = 0) -> bytes:
    """A v2 batch of ``n`` records with ``payload``-byte values."""
    return build_batch(
        [(b"k%d" % i, (b"%d-%d-" % (tag, i)).ljust(payload, b"x")) for i in range(n)], timestamp_ms=ts
    )


OpenLog = Callable[..., PartitionLog]


def batch_bytes(log: object) -> bytes:
    """What the first segment of `log` holds (read back from its file)."""
    return (log.directory / "00000000000000000000.log").read_bytes()  # type: ignore[attr-defined]


def batch_positions(path: Path) -> list[tuple[int, int]]:
    """(position, base offset) of every batch of a .log file."""
    data = path.read_bytes()
    out, pos = [], 0
    while pos < len(data):
        h = parse_batch_header(data, pos)
        out.append((pos, h.base_offset))
        pos += h.size
    return out


def flip(path: Path, at: int, mask: int = 0x01) -> None:
    """Flip the bits ``mask`` of the byte at ``at`` of a file (bit rot)."""
    data = bytearray(path.read_bytes())
    data[at] ^= mask
    path.write_bytes(bytes(data))
