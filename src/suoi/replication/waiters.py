"""Parked acks=all produce waits of one partition (the partition half of Kafka's DelayedProduce).

`register(token, required_offset, deadline_ms)` parks a wait for HW >= required_offset (the
leader LEO right after the append); `deadline_ms=None` parks it without a deadline (the caller
times it out itself and `cancel`s it), so nothing is kept for `poll`. Completions come back as `(token, error)` pairs from
`check(...)` (call it after the HW advanced or the ISR changed), `poll(now)` (deadlines:
REQUEST_TIMED_OUT) and `fail_all(error)` (leadership lost: NOT_LEADER_OR_FOLLOWER).
A satisfied wait reports NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR is then below
min.insync.replicas, as Kafka's `checkEnoughReplicasReachOffset` does.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable
from typing import NamedTuple

from suoi.model import ErrorCode

from .partition_state import LeaderPartitionState


class _Wait(NamedTuple):
    required_offset: int
    deadline_ms: int | None


_new_wait = tuple.__new__  # a _Wait without NamedTuple's Python-level __new__ (one per acks=all append)


class AcksAllWaiters:
    def __init__(self) -> None:
        self._waits: dict[Hashable, _Wait] = {}
        self._by_offset: list[tuple[int, int, Hashable]] = []  # (required_offset, seq, token)
        self._by_deadline: list[tuple[int, int, Hashable]] = []  # (deadline_ms, seq, token)
        self._seq = 0

    def __len__(self) -> int:
        return len(self._waits)

    def __contains__(self, token: Hashable) -> bool:
        return token in self._waits

    def register(self, token: Hashable, required_offset: int, deadline_ms: int | None) -> None:
        if token in self._waits:
            raise ValueError(f"token {token!r} already waiting")
        self._waits[token] = _new_wait(_Wait, (required_offset, deadline_ms))
        self._seq += 1
        heapq.heappush(self._by_offset, (required_offset, self._seq, token))
        if deadline_ms is not None:  # else only check/cancel/fail_all end it: nothing to poll
            heapq.heappush(self._by_deadline, (deadline_ms, self._seq, token))

    def check(self, high_watermark: int, isr_size: int, min_insync_replicas: int) -> list[tuple[Hashable, ErrorCode]]:
        """Complete every wait with required_offset <= high_watermark, in offset order."""
        error = ErrorCode.not_enough_replicas_after_append if isr_size < min_insync_replicas else ErrorCode.none
        done: list[tuple[Hashable, ErrorCode]] = []
        while self._by_offset and self._by_offset[0][0] <= high_watermark:
            required, _, token = heapq.heappop(self._by_offset)
            wait = self._waits.get(token)
            if wait is not None and wait.required_offset == required:
                del self._waits[token]
                done.append((token, error))
        return done

    def check_state(self, state: LeaderPartitionState) -> list[tuple[Hashable, ErrorCode]]:
        return self.check(state.high_watermark, len(state.isr), state.min_insync_replicas)

    def poll(self, now_ms: int) -> list[tuple[Hashable, ErrorCode]]:
        """Time out every wait whose deadline is <= now_ms."""
        done: list[tuple[Hashable, ErrorCode]] = []
        while self._by_deadline and self._by_deadline[0][0] <= now_ms:
            deadline, _, token = heapq.heappop(self._by_deadline)
            wait = self._waits.get(token)
            if wait is not None and wait.deadline_ms == deadline:
                del self._waits[token]
                done.append((token, ErrorCode.request_timed_out))
        return done

    def next_deadline(self) -> int | None:
        while self._by_deadline:
            deadline, _, token = self._by_deadline[0]
            wait = self._waits.get(token)
            if wait is not None and wait.deadline_ms == deadline:
                return deadline
            heapq.heappop(self._by_deadline)
        return None

    def cancel(self, token: Hashable) -> bool:
        return self._waits.pop(token, None) is not None

    def fail_all(self, error: ErrorCode = ErrorCode.not_leader_or_follower) -> list[tuple[Hashable, ErrorCode]]:
        """Answer every wait with `error` (e.g. this broker stopped leading the partition)."""
        done = [(token, error) for token in self._waits]
        self._waits.clear()
        self._by_offset.clear()
        self._by_deadline.clear()
        return done
