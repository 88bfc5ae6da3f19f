"""Cooperative pacing for long jobs on the event loop (reconciling thousands of partitions).

Work that touches many partitions runs in slices: after `slice_s` of work the job yields to
the event loop, so Metadata/Produce/Fetch of other clients are served between slices and the
job finishes later rather than freezing the node.
"""

from __future__ import annotations

import asyncio
import time

__all__ = ["Pacer"]

#: Longest stretch of reconciliation work between two chances for other clients to be served.
DEFAULT_SLICE_S = 0.005


class Pacer:
    def __init__(self, slice_s: float = DEFAULT_SLICE_S) -> None:
        self.slice_s = slice_s
        self._since = time.perf_counter()

    async def tick(self) -> None:
        """Yield to the event loop if this slice has run for `slice_s`."""
        if time.perf_counter() - self._since >= self.slice_s:
            await asyncio.sleep(0)
            self._since = time.perf_counter()

