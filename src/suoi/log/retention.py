"""Pure retention policy: how many of the oldest segments may be deleted.

Kept apart from ``PartitionLog`` so the rules (which mirror Kafka's
``retention.ms`` / ``retention.bytes`` semantics) can be read and tested
without any file handling.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

__all__ = ["expired_by_size", "expired_by_time"]


class _Segment(Protocol):
    @property
    def size(self) -> int: ...

    @property
    def largest_timestamp(self) -> int: ...


def expired_by_time(segments: Sequence[_Segment], now_ms: int, retention_ms: int) -> int:
    """Count of leading segments whose newest record is older than retention.ms.

    Like Kafka, deletion stops at the first segment that must be kept, even if
    a later one (with out-of-order timestamps) looks older.  Empty segments
    are never counted; the count may include the active segment, which the
    caller must roll before deleting it.
    """
    if retention_ms < 0:
        return 0
    count = 0
    for seg in segments:
        if seg.size == 0 or now_ms - seg.largest_timestamp <= retention_ms:
            break
        count += 1
    return count


def expired_by_size(segments: Sequence[_Segment], retention_bytes: int) -> int:
    """Count of leading non-active segments to drop to get under retention.bytes.

    A segment is only deleted if the log stays at or above the limit without
    it, so the log never shrinks below retention.bytes (Kafka semantics).
    """
    if retention_bytes < 0:
        return 0
    excess = sum(s.size for s in segments) - retention_bytes
    count = 0
    for seg in segments[:-1]:
        if excess - seg.size < 0:
            break
        excess -= seg.size
        count += 1
    return count
