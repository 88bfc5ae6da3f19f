"""Keyed deadlines: schedule/cancel by key, pop the due ones in deadline order.

A heap with lazy deletion; `_live` holds each key's current deadline, so a rescheduled or
cancelled key's old heap entry is skipped when it surfaces.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable
from itertools import count


class Timers:
    def __init__(self) -> None:
        self._live: dict[Hashable, int] = {}
        self._heap: list[tuple[int, int, Hashable]] = []
        self._seq = count()

    def schedule(self, key: Hashable, deadline_ms: int) -> None:
        self._live[key] = deadline_ms
        heapq.heappush(self._heap, (deadline_ms, next(self._seq), key))

    def cancel(self, key: Hashable) -> None:
        self._live.pop(key, None)

    def deadline(self, key: Hashable) -> int | None:
        return self._live.get(key)

    def _prune(self) -> None:
        while self._heap:
            deadline, _, key = self._heap[0]
            if self._live.get(key) == deadline:
                return
            heapq.heappop(self._heap)

    def next_deadline(self) -> int | None:
        self._prune()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now_ms: int) -> Hashable | None:
        """The earliest key due at `now_ms` (removed from the timers), or None."""
        self._prune()
        if self._heap and self._heap[0][0] <= now_ms:
            _, _, key = heapq.heappop(self._heap)
            del self._live[key]
            return key
        return None

    def __len__(self) -> int:
        return len(self._live)
