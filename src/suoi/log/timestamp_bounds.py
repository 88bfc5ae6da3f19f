"""The CreateTime bounds of a produced batch: ``message.timestamp.before.max.ms`` and
``message.timestamp.after.max.ms`` (KIP-937), checked on a leader's append as Kafka's
LogValidator does, so a record stamped days in the past or hours ahead (a producer with a
wrong clock, a replayed backlog) is refused with INVALID_TIMESTAMP instead of skewing
time-based retention, segment rolling and offsetsForTimes.

The broker never decodes records on the produce path, so the bounds are checked on the batch
header: its maxTimestamp against ``now + after`` (exact: it is the largest record timestamp)
and its baseTimestamp (the first record's, the smallest as every client builds batches)
against ``now - before``. A batch whose later records carry negative timestamp deltas below
the bound is not caught (Kafka checks each record). LogAppendTime topics are not checked:
the broker's clock replaces the timestamps. NO_TIMESTAMP (-1) is not checked, as in Kafka.
"""

from __future__ import annotations

from collections.abc import Sequence

from suoi.model import ErrorCode
from suoi.protocol.records import BatchHeader, RecordValidationError

__all__ = ["InvalidTimestampError", "check_timestamp_bounds"]

_NO_TIMESTAMP = -1


class InvalidTimestampError(RecordValidationError):
    """A CreateTime timestamp outside [now - before.max.ms, now + after.max.ms] (INVALID_TIMESTAMP)."""

    error_code = ErrorCode.invalid_timestamp


def check_timestamp_bounds(headers: Sequence[BatchHeader], now: int, before_max_ms: int | None,
                           after_max_ms: int | None) -> None:
    """Raise `InvalidTimestampError` (Kafka's wording) for the first batch out of bounds;
    ``None`` for a bound is Kafka's Long.MAX_VALUE, no bound."""
    lowest = None if before_max_ms is None else now - before_max_ms
    highest = None if after_max_ms is None else now + after_max_ms
    for h in headers:
        for ts in (h.base_timestamp, h.max_timestamp):
            if ts == _NO_TIMESTAMP:
                continue
            if (lowest is not None and ts < lowest) or (highest is not None and ts > highest):
                low = "-inf" if lowest is None else lowest
                high = "+inf" if highest is None else highest
                raise InvalidTimestampError(
                    f"Timestamp {ts} of message is out of range. The timestamp should be within [{low}, {high}]")
