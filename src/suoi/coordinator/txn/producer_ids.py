"""Allocation of producer ids that are never handed out twice, even across restarts.

Ids are reserved in blocks: the end of the current block is written to disk (atomically)
before any id from it is used, so after a crash the next block starts past every id
that might have been given out. This mirrors Kafka's AllocateProducerIds blocks, with
the block owned by this node's data directory.
"""

from __future__ import annotations

import os
from pathlib import Path

BLOCK_SIZE = 1000
FILE_NAME = "producer-id-block"


class ProducerIdManager:
    """`stride`/`offset` keep several nodes' ids disjoint without coordination: node n hands
    out offset + k*stride (a cluster uses stride MAX_NODES and offset node.id)."""

    MAX_NODES = 1024

    def __init__(self, directory: Path, *, stride: int = 1, offset: int = 0) -> None:
        if not 0 <= offset < stride:
            raise ValueError(f"producer id offset {offset} must be in [0, {stride})")
        self._stride = stride
        self._offset = offset
        self._path = directory / FILE_NAME
        self._next = 0
        self._block_end = 0  # exclusive
        try:
            self._next = self._block_end = int(self._path.read_text().strip())
        except FileNotFoundError:
            pass
        except ValueError as exc:
            raise RuntimeError(f"corrupt {self._path}: {exc}") from None

    def next_id(self) -> int:
        if self._next >= self._block_end:
            self._reserve(self._next + BLOCK_SIZE)
        pid = self._next * self._stride + self._offset
        self._next += 1
        return pid

    def _reserve(self, end: int) -> None:
        tmp = self._path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            f.write(f"{end}\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._path)
        self._block_end = end
