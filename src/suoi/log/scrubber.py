"""Background scrubbing: re-check the batches of cold (sealed) segments at a bounded rate.

Reads check what they serve, but data nobody reads can rot unnoticed until the one replica
that still has it good is gone. The scrubber walks every segment of every log - the active one
too, up to its size when the pass began (after a clean shutdown it is loaded from its indexes,
not re-scanned, so rot in it would otherwise wait for a read) - one slice (``budget`` bytes)
per ``step``, with the same checks as the fetch path
(``batch_check``: framing, offsets, CRC32C) - re-checking bytes already verified too, since
rot comes after a first check. A bad batch is remembered by its segment (reads then refuse
it at once) and handed to the log's ``on_corrupt`` hook: in a replicated partition the
replica manager repairs it from another replica.

Sans-IO in time: the caller (the broker's scrubber task) decides when to step and how many
bytes a step may read (``log.scrubber.bytes.per.second``). Not thread-safe: event loop only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from suoi.log.batch_check import CorruptBatch, scan_batches
from suoi.log.partition_log import PartitionLog
from suoi.log.segment import LogSegment

__all__ = ["CorruptionStats", "LogScrubber"]


@dataclass
class CorruptionStats:
    """Counters a metrics endpoint can read (one object per node, ``LogManager.corruption``)."""

    #: batches the scrubber checked, and their bytes
    batches_checked: int = 0
    bytes_checked: int = 0
    #: full passes over every sealed segment
    passes: int = 0
    #: distinct bad batches the scrubber found (``LogManager.known_corrupt_batches`` counts
    #: those reads and recovery found too, while they are not repaired)
    corrupt_found: int = 0
    #: bad batches a replica dropped to refetch from another replica
    repaired: int = 0


@dataclass
class _Cursor:
    plog: PartitionLog
    segment: LogSegment
    position: int
    expected_offset: int
    #: where this pass stops in the segment (its size when planned: appends after it wait for
    #: the next pass) and the segment's `truncations` then (a cut segment is dropped from the pass)
    limit: int
    truncations: int


class LogScrubber:
    def __init__(self, logs: Callable[[], Iterable[PartitionLog]], stats: CorruptionStats) -> None:
        self._logs = logs
        self.stats = stats
        self._todo: list[_Cursor] = []

    def step(self, budget: int) -> int:
        """Check up to about ``budget`` bytes (whole batches); returns the bytes checked."""
        done = 0
        while done < budget:
            if not self._todo:
                self._todo = self._plan()
                if not self._todo:
                    return done
            cur = self._todo[-1]
            if not self._still_there(cur):
                self._todo.pop()
                continue
            done += self._scan(cur, budget - done)
            if cur.position >= cur.limit:
                self._todo.pop()
                if not self._todo:
                    self.stats.passes += 1
                    return done  # a new pass starts with the next step
        return done

    def _plan(self) -> list[_Cursor]:
        """Every segment of every log, first log's first segment last (popped first)."""
        todo = [_Cursor(plog, seg, 0, seg.base_offset, seg.size, seg.truncations)
                for plog in self._logs() for seg in plog.segments]
        todo.reverse()
        return todo

    @staticmethod
    def _still_there(cur: _Cursor) -> bool:
        seg = cur.segment
        return (seg.fd >= 0 and seg.truncations == cur.truncations and cur.limit <= seg.size
                and any(s is seg for s in cur.plog.segments))

    def _scan(self, cur: _Cursor, budget: int) -> int:
        seg = cur.segment
        start = cur.position
        for pos, h, problem in scan_batches(seg.fd, start, cur.limit, cur.expected_offset, strict=seg.contiguous,
                                            end_offset=seg.next_offset, chunk=max(budget, 64 * 1024)):
            if problem is not None or h is None:
                self._found(cur.plog, seg, CorruptBatch(seg.log_path, pos, cur.expected_offset,
                                                        problem or "not a batch"))
                cur.position = cur.limit  # the rest of this segment waits for the repair
                return pos - start
            seg.verified.add(pos, pos + h.size)
            self.stats.batches_checked += 1
            self.stats.bytes_checked += h.size
            cur.position = pos + h.size
            cur.expected_offset = h.next_offset
            if cur.position - start >= budget:
                break
        return cur.position - start

    def _found(self, plog: PartitionLog, seg: LogSegment, bad: CorruptBatch) -> None:
        if seg.note_corrupt(bad):
            self.stats.corrupt_found += 1
        plog.report_corrupt(bad)
