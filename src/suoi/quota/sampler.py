"""A rate over sliding sample windows: Kafka's SampledStat ``Rate`` (org.apache.kafka.common.metrics), sans-IO.

``num_samples`` windows of ``window_ms`` each; `record(value, now)` adds to the current window
(starting a new one, and dropping the oldest, when it has run out). `rate(now)` is the sum of the
retained windows over the time they span, counted as at least ``num_samples - 1`` full windows, so
a client's first burst is measured against the whole quota window rather than its first
millisecond (what Kafka's Rate.windowSize does). `throttle_ms(quota, now)` is Kafka's delay for a
rate above its bound: ``(rate - quota) / quota * window size`` — how long the client must stay
silent for the rate to come back down to the quota.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

__all__ = ["Rate", "TokenBucket"]


@dataclass(slots=True)
class _Sample:
    start_ms: int
    value: float = 0.0


@dataclass(slots=True)
class Rate:
    num_samples: int = 11  # quota.window.num
    window_ms: int = 1000  # quota.window.size.seconds * 1000
    _samples: deque[_Sample] = field(default_factory=deque)
    last_record_ms: int = 0

    def record(self, value: float, now_ms: int) -> None:
        self._purge(now_ms)
        if not self._samples or now_ms - self._samples[-1].start_ms >= self.window_ms:
            self._samples.append(_Sample(now_ms))
            while len(self._samples) > self.num_samples:
                self._samples.popleft()
        self._samples[-1].value += value
        self.last_record_ms = now_ms

    def window_size_ms(self, now_ms: int) -> int:
        self._purge(now_ms)
        oldest = self._samples[0].start_ms if self._samples else now_ms
        elapsed = now_ms - oldest
        full = elapsed // self.window_ms
        if full < self.num_samples - 1:
            elapsed += (self.num_samples - 1 - full) * self.window_ms
        return max(elapsed, 1)

    def rate(self, now_ms: int) -> float:
        """Per second."""
        total = sum(s.value for s in self._samples) if self._samples else 0.0
        return total * 1000.0 / self.window_size_ms(now_ms)

    def throttle_ms(self, quota_per_s: float, now_ms: int) -> int:
        observed = self.rate(now_ms)
        if observed <= quota_per_s:
            return 0
        return round((observed - quota_per_s) / quota_per_s * self.window_size_ms(now_ms))

    def _purge(self, now_ms: int) -> None:
        horizon = self.num_samples * self.window_ms
        while self._samples and now_ms - self._samples[0].start_ms >= horizon:
            self._samples.popleft()


@dataclass(slots=True)
class TokenBucket:
    """Kafka's ``TokenBucket`` stat, which KIP-599 measures controller mutations with: a bucket
    of ``quota * num_samples * window`` tokens (the burst), refilled at ``quota`` per second,
    full at first; a mutation takes one token per partition and may drive it below zero. The
    quota is exceeded while it is below zero, and the throttle time is how long the refill
    takes to bring it back to zero: ``-tokens / quota`` seconds."""

    num_samples: int = 11
    window_ms: int = 1000
    tokens: float | None = None  # None: not used yet (full)
    last_ms: int = 0

    @property
    def last_record_ms(self) -> int:
        return self.last_ms

    def _refill(self, quota: float, now_ms: int) -> float:
        burst = quota * self.num_samples * self.window_ms / 1000
        tokens = burst if self.tokens is None else min(burst, self.tokens + quota * max(now_ms - self.last_ms, 0) / 1000)
        self.tokens, self.last_ms = tokens, now_ms
        return tokens

    def exceeded(self, quota: float, now_ms: int) -> bool:
        return self._refill(quota, now_ms) < 0

    def record(self, quota: float, value: float, now_ms: int) -> None:
        self.tokens = self._refill(quota, now_ms) - value

    def throttle_ms(self, quota: float, now_ms: int) -> int:
        tokens = self._refill(quota, now_ms)
        return 0 if tokens >= 0 else math.ceil(-tokens / quota * 1000)
