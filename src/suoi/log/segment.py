"""One log segment: a ``.log`` file of record batches plus its indexes - `LogSegment`, and
the one place a segment's bytes are written (`LogSegment.append_parts`, one ``writev``).

`LogSegment` is the top of a chain of classes, one module each (split for size, by
responsibility): `SegmentState` (``segment_state.py``: files, in-memory state, index
bookkeeping), `SegmentLocate` (``segment_locate.py``: finding a batch for a read, read hints),
`SegmentRecovery` (``segment_recovery.py``: load, recover, truncate). This module keeps the
write path and the life cycle (create, roll criteria, flush, close, delete), and with them the
fault-injection seam `_writev` that tests patch as ``suoi.log.segment._writev``: the append
looks it up in this module's globals on every call, so a patch takes effect at once.

Batches are located with the sparse offset index and then a forward scan that only reads
61-byte headers - record payloads are never decoded here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from suoi.log.errors import KafkaStorageError
from suoi.log.segment_recovery import SegmentRecovery
from suoi.log.segment_state import segment_file_name
from suoi.log.sync_jobs import CallSync, FileSync, SyncJob

__all__ = ["BatchPlacement", "LogSegment", "segment_file_name"]

logger = logging.getLogger("suoi.log")

#: Fault-injection seam: tests replace this to simulate ENOSPC/EIO (every `.log` write goes
#: through it: a leader's append writes each batch as its stamped prefix + the bytes received).
_writev = os.writev
#: Most buffers one writev takes (Linux: 1024).
_IOV_MAX = os.sysconf("SC_IOV_MAX") if "SC_IOV_MAX" in os.sysconf_names else 16

_INT32_MAX = 2**31 - 1
#: `LogSegment._recent_*`: trimmed to the last _RECENT_KEEP batches once over _RECENT_MAX
_RECENT_MAX = 256
_RECENT_KEEP = 128

#: (position relative to the appended chunk, base offset, last offset, max timestamp, size)
BatchPlacement = tuple[int, int, int, int, int]


def _write_rest(fd: int, parts: Sequence[bytes | bytearray | memoryview], size: int, written: int) -> None:
    """After a short ``writev`` (rare), or none (more parts than one writev takes: hundreds of
    batches in one produce), write the rest of ``parts`` from one joined buffer."""
    rest = memoryview(b"".join(parts))
    while written < size:
        written += _writev(fd, [rest[written:]])


class LogSegment(SegmentRecovery):
    """Files and in-memory state of a single segment."""

    # ------------------------------------------------------------------ life cycle

    @classmethod
    def create(
        cls, directory: Path, base_offset: int, *, index_interval_bytes: int, suffix: str = ""
    ) -> LogSegment:
        """A fresh, empty segment (stale files with the same name are cleared)."""
        seg = cls(directory, base_offset, index_interval_bytes=index_interval_bytes, suffix=suffix)
        if seg.size:
            os.ftruncate(seg._file.fd, 0)
            seg._file.dirty = True
            seg.size = 0
        seg.offset_index.reset()
        seg.time_index.reset()
        seg.txn_index.reset()
        return seg

    @classmethod
    def fresh_segment(cls, directory: Path, base_offset: int, *, index_interval_bytes: int) -> LogSegment:
        """The first segment of a partition whose directory was just created: no file is made
        until something is written (creating a topic of thousands of partitions costs one
        ``mkdir`` each). A restart finds no ``.log`` there and starts an empty segment again."""
        return cls(directory, base_offset, index_interval_bytes=index_interval_bytes, fresh=True)

    def flush(self) -> None:
        self._file.fsync()
        self.offset_index.flush()
        self.time_index.flush()
        self.txn_index.flush()

    def sync_jobs(self) -> list[SyncJob]:
        """`flush` as fsyncs another thread may run (`suoi.log.flushing`): the indexes' pending
        entries are written now, then each file written since its last fsync is one job."""
        self.offset_index.write_pending()
        self.time_index.write_pending()
        jobs: list[SyncJob] = [FileSync(f) for f in (self._file, self.offset_index.file, self.time_index.file)
                               if (f.dirty or f.syncing) and not f.closed]  # syncing: another flush's, in flight
        if self.txn_index.dirty:
            jobs.append(CallSync(self.txn_index.flush))
        return jobs

    def close(self) -> None:
        if self.size and not self._file.closed:  # a segment with data leaves its index files behind
            try:
                self.offset_index.materialize()
                self.time_index.materialize()
            except OSError as e:  # rebuilt from the log at the next start
                logger.warning("%s: index files not created at close: %s", self.log_path, e)
        self._file.close()
        self.offset_index.close()
        self.time_index.close()

    def discard(self) -> None:
        """`close` without writing: the segment's directory is about to be removed."""
        self.offset_index.discard()
        self.time_index.discard()
        self._file.close()

    def delete(self) -> None:
        self.close()
        self.log_path.unlink(missing_ok=True)
        self.offset_index.delete()
        self.time_index.delete()
        self.txn_index.delete()

    def should_roll(
        self, incoming_bytes: int, last_offset: int, now_ms: int, segment_bytes: int, segment_ms: int
    ) -> bool:
        """Roll criteria; an empty segment is never rolled (it would stay empty)."""
        if self.size == 0:
            return False
        if self.size + incoming_bytes > segment_bytes:
            return True
        if self.rolling_base_ms is not None and now_ms - self.rolling_base_ms > segment_ms:
            return True
        # Relative offsets in the index are int32.
        return last_offset - self.base_offset > _INT32_MAX

    # ------------------------------------------------------------------ writes

    def append(self, data: bytes | bytearray | memoryview, batches: list[BatchPlacement], now_ms: int) -> None:
        """Write already-offset-assigned batches with one write and index them (`append_parts`)."""
        self.append_parts([data], len(data), batches, now_ms)

    def append_parts(self, parts: Sequence[bytes | bytearray | memoryview], size: int, batches: list[BatchPlacement],
                     now_ms: int) -> None:
        """Write the batches whose bytes are ``parts`` (``size`` in all; a leader's append passes
        each batch as its stamped prefix and a view of the rest as received, so no payload is
        copied in Python) with one ``writev``, then index them.

        On any OSError the file is cut back to its previous size and nothing else has changed
        (the bookkeeping below runs only after the write), so a failed append is invisible.
        """
        pos0 = self.size
        file = self._file
        try:
            file.dirty = True
            fd = file.fd
            written = _writev(fd, parts) if len(parts) <= _IOV_MAX else 0
            if written < size:
                _write_rest(fd, parts, size, written)
        except OSError as e:
            try:
                if file.is_open:  # else the file could not even be opened: nothing was written
                    os.ftruncate(file.fd, pos0)
            except OSError:
                logger.exception("could not roll back failed append to %s", self.log_path)
            raise KafkaStorageError(e.errno, f"append to {self.log_path} failed: {e.strerror}") from e
        self.size = pos0 + size
        self.verified.add(pos0, self.size)  # checked on produce / replica fetch
        recent_base, recent_last, recent_pos = self._recent_base, self._recent_last, self._recent_pos
        for rel, base, last, max_ts, batch_size in batches:
            self._index_batch(pos0 + rel, base, last, max_ts, batch_size)
            recent_base.append(base)
            recent_last.append(last)
            recent_pos.append(pos0 + rel)
        if len(recent_base) > _RECENT_MAX:
            del recent_base[:-_RECENT_KEEP], recent_last[:-_RECENT_KEEP], recent_pos[:-_RECENT_KEEP]
        if self.rolling_base_ms is None:
            self.rolling_base_ms = now_ms
