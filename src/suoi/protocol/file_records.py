"""Record data to put on the wire straight from segment files (zero-copy Fetch answers).

A Fetch answer's records are whole, already checked batches of a segment file. Copying them
out of the page cache with ``os.pread`` was ~75 % of the consume path's CPU; Kafka sends
them with ``sendfile`` (its ``FileRecords`` slices) instead. Here the records field of a
Fetch answer may be a `FileRecords`: ``len()`` is its wire length (the encoder writes the
length prefix, budgets and metrics count it), and `codec.GatherBuffer` puts its chunks - bytes,
or `FileRegion`s ``(fd, offset, length)`` - between the encoded parts, so ``net`` sends the
regions with ``os.sendfile`` (``pread`` + write on TLS) in their place.

A region keeps its file's descriptor open (`PinnedFile.pin`, taken when it was read and
given back by `FileRegion.release`, at the latest when the region is garbage) even if the
segment is deleted or closed meanwhile: the bytes sent are the checked bytes of that inode.
A truncation of the file below the region's end after it was read (`PinnedFile.cut_since`)
makes `FileRegion.intact` false and the connection is closed instead of sending what the
check never saw - as Kafka's ``FileRecords.writeTo`` fails a send whose file shrank.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Protocol, TypeAlias


class PinnedFile(Protocol):
    """What a region needs of its file (``suoi.log.handles.LazyFile``)."""

    def unpin(self) -> None: ...

    def cut_since(self, cuts: int, end: int) -> bool: ...


class FileRegion:
    """``length`` bytes of file descriptor ``fd`` from ``offset``, checked when read."""

    __slots__ = ("_cuts", "_file", "fd", "length", "offset")

    def __init__(self, fd: int, offset: int, length: int, file: PinnedFile | None = None, cuts: int = 0) -> None:
        self.fd = fd
        self.offset = offset
        self.length = length
        self._file = file  # pinned by the reader; unpinned by `release`
        self._cuts = cuts

    def __len__(self) -> int:
        return self.length

    def __repr__(self) -> str:
        return f"FileRegion(fd={self.fd}, offset={self.offset}, length={self.length})"

    def intact(self) -> bool:
        """False once the file was cut below this region's end after it was read."""
        f = self._file
        return f is not None and not f.cut_since(self._cuts, self.offset + self.length)

    def read(self) -> bytes:
        """The region's bytes (the copy path: TLS, or where ``sendfile`` is refused).
        Raises ``EOFError`` if the file is shorter (truncated) or the region was released."""
        if not self.intact():
            raise EOFError(f"{self!r} was truncated or released before it was sent")
        data = os.pread(self.fd, self.length, self.offset)
        if len(data) != self.length:
            raise EOFError(f"{self!r}: the file ends {self.length - len(data)} bytes early")
        return data

    def release(self) -> None:
        """Give the file's descriptor back (idempotent)."""
        f, self._file = self._file, None
        if f is not None:
            f.unpin()

    def __del__(self) -> None:  # a region dropped unsent (connection closed, throttled answer)
        self.release()


class FileRecords:
    """The records of one partition's answer: bytes chunks and `FileRegion`s, in order."""

    __slots__ = ("chunks", "size")

    def __init__(self, chunks: Sequence[bytes | bytearray | memoryview | FileRegion]) -> None:
        self.chunks = list(chunks)
        self.size = sum(len(c) for c in self.chunks)

    def __len__(self) -> int:
        return self.size

    def __bytes__(self) -> bytes:
        """The records as bytes (copied; for in-process readers and tests)."""
        return b"".join(c.read() if isinstance(c, FileRegion) else bytes(c) for c in self.chunks)

    def release(self) -> None:
        for c in self.chunks:
            if isinstance(c, FileRegion):
                c.release()


def joined(parts: Sequence[bytes | bytearray | memoryview | FileRegion]) -> bytes:
    """Encoded parts as one bytes object, file regions read (and released): for an answer that
    is not sent by a connection (forwarded in an Envelope, decoded in-process)."""
    out = []
    for p in parts:
        if isinstance(p, FileRegion):
            out.append(p.read())
            p.release()
        else:
            out.append(bytes(p))
    return b"".join(out)


#: A Fetch answer's records field: checked bytes, or `FileRecords`.
Records: TypeAlias = bytes | bytearray | memoryview | FileRecords
