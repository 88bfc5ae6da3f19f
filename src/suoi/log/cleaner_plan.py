"""What one cleaning of a log carries between its three steps (``cleaner``): the ``plan`` made on
the event loop, the ``build`` on a worker thread, the ``commit`` (``cleaner_swap``) back on the
loop. Kept apart from both so that the commit's steps and the cleaner share them without importing
each other."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from suoi.log.segment import LogSegment
from suoi.log.txn_index import AbortedTxn

__all__ = ["CleanGroup", "CleanPlan", "CleanResult", "PlannedSegment"]


@dataclass(frozen=True, slots=True)
class PlannedSegment:
    segment: LogSegment  # identity checked at commit; never touched by build
    base_offset: int
    next_offset: int
    size: int
    fd: int  # the cleaner's own read-only descriptor


@dataclass(slots=True)
class CleanPlan:
    """What one pass will clean; holds open descriptors until ``close``."""

    directory: Path
    name: str
    segments: list[PlannedSegment]  # log start .. first uncleanable offset
    first_dirty_offset: int
    now_ms: int
    delete_retention_ms: int
    segment_bytes: int
    index_interval_bytes: int
    producer_last_offsets: dict[int, int]  # pid -> last offset of its last batch
    aborted_txns: list[AbortedTxn]  # every abort index entry of the log (cleaner_txn)
    _closed: bool = False

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            for s in self.segments:
                os.close(s.fd)


@dataclass(slots=True)
class CleanGroup:
    base_offset: int
    old: list[LogSegment]
    bytes_in: int = 0
    bytes_out: int = 0


@dataclass(slots=True)
class CleanResult:
    plan: CleanPlan
    groups: list[CleanGroup]
    end_offset: int  # the new first dirty offset
    delete_horizon_ms: int
    records_removed: int = 0
    bytes_in: int = field(default=0)
    bytes_out: int = field(default=0)
    #: Each group's abort index entries, written as ``.txnindex.cleaned`` (`cleaner_swap`); None: not yet.
    moved_txns: dict[int, list[AbortedTxn]] | None = None
