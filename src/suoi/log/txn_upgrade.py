"""One-time repair of transaction indexes (``.txnindex``) written before the follower fix.

Before the fix of ``LogAppend._place`` (a follower's fetched chunk of many batches had its
COMMIT/ABORT markers applied after all of its batches), a replica could merge a producer's next
transaction into the one before it: a later ABORT found no open transaction and wrote no abort
index entry, and an open transaction at a chunk's end was dropped from the producer state (and
from the producer snapshots written after). Recovery replays only the log above the newest
producer snapshot, so those holes stayed; once such a replica led, read_committed consumers
were served aborted records.

The mark: producer snapshots written by a fixed version say ``"version": 3`` (older ones say 2;
the format is otherwise unchanged and older versions read it). A snapshot at offset N written by
a fixed version vouches for the producer state at N and for every abort index entry of a marker
below N (the log above N is replayed at every open anyway). Every snapshot this version writes
is version 3, because a log is repaired when it is opened, before anything is appended. The mark
lives in the snapshot rather than in a file of its own so that a downgrade takes it away: an
older version's next roll or close writes a version-2 snapshot, and the next upgrade checks again.

At open (`check`), a log whose newest usable snapshot is older than version 3:

* holds no transactional batch below the snapshot's offset (found from the batch headers'
  attributes alone, `_transactional_below`: a hop from header to header over a read-only
  mmap, ~0.3 us a batch, no `BatchHeader` built, no record read): nothing was built wrong; the
  snapshot is used as it is;
* holds one: the snapshot is not trusted, and the producer state and every segment's abort
  index are rebuilt from the log start, from the batch headers and the control batches' markers
  (what recovery does when no snapshot exists).

Either way the caller then writes a version-3 snapshot at the log end, so the next start trusts
it and reads nothing more. A log with no snapshot is replayed from its start as always, and a
never-written directory is not looked at.

Why at open and not lazily, on the first read_committed fetch: the log is single-threaded (the
event loop's), so a lazy rebuild would stall the loop in the middle of serving, or race appends;
and the producer state is part of the damage (a dropped open transaction moves the LSO past
uncommitted data, and the next ABORT written computes its entry from it), so it must be right
before the first append or Fetch, not only before the first read_committed one.
"""

from __future__ import annotations

import enum
import mmap
import struct
from collections.abc import Sequence

from suoi.log.producer_state import SNAPSHOT_VERSION
from suoi.log.segment import LogSegment
from suoi.protocol.record_batch import CONTROL_BIT, HEADER_SIZE, TRANSACTIONAL_BIT

__all__ = ["FIXED_SNAPSHOT_VERSION", "TxnIndexCheck", "check"]

#: Producer snapshots written since the follower fix: the abort indexes below them are whole.
FIXED_SNAPSHOT_VERSION = 3
assert SNAPSHOT_VERSION >= FIXED_SNAPSHOT_VERSION

#: base offset, batch length, attributes of a batch header (bytes 0-22)
_BASE_LEN_ATTRS = struct.Struct(">qi9xh")
_MIN_BATCH_LENGTH = HEADER_SIZE - 12
_TXN_BITS = TRANSACTIONAL_BIT | CONTROL_BIT


class TxnIndexCheck(enum.Enum):
    """What opening a log did about its abort indexes (`PartitionLog.txn_index_check`)."""

    NEW = "new"  #: a never-written log: nothing to check
    TRUSTED = "trusted"  #: its snapshot was written by a fixed version
    REPLAYED = "replayed"  #: no snapshot: the whole log was replayed, as always
    CHECKED = "checked"  #: an older snapshot, no transactional batch below it: nothing to repair
    REBUILT = "rebuilt"  #: an older snapshot over transactional batches: rebuilt from the log start


def check(segments: Sequence[LogSegment], snapshot_offset: int, snapshot_version: int) -> TxnIndexCheck:
    """How to treat a log whose newest usable snapshot is at ``snapshot_offset`` (version
    ``snapshot_version``, 0 if none was loaded)."""
    if snapshot_version == 0:
        return TxnIndexCheck.REPLAYED
    if snapshot_version >= FIXED_SNAPSHOT_VERSION:
        return TxnIndexCheck.TRUSTED
    if _transactional_below(segments, snapshot_offset):
        return TxnIndexCheck.REBUILT
    return TxnIndexCheck.CHECKED


def _transactional_below(segments: Sequence[LogSegment], end_offset: int) -> bool:
    """Whether any batch below ``end_offset`` is transactional (data or marker)."""
    for seg in segments:
        if seg.base_offset >= end_offset:
            break
        if _segment_transactional(seg, end_offset):
            return True
    return False


def _segment_transactional(seg: LogSegment, end_offset: int) -> bool:
    size = seg.size
    if size < HEADER_SIZE:
        return False
    unpack = _BASE_LEN_ATTRS.unpack_from
    last = size - HEADER_SIZE
    with mmap.mmap(seg.fd, size, prot=mmap.PROT_READ) as view:
        pos = 0
        while pos <= last:
            base, length, attributes = unpack(view, pos)
            if base >= end_offset:
                return False
            if attributes & _TXN_BITS:
                return True
            if length < _MIN_BATCH_LENGTH:
                return False  # junk: recovery and the reads deal with it; nothing readable after it
            pos += length + 12
    return False
