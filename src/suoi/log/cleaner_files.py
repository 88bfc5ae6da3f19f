"""On-disk side of log compaction: the cleaner checkpoint and the segment swap.

Crash-safe replacement of a group of segments ``[s1 .. sn]`` (bases ``B = b1 <
... < bn``, covering offsets ``[B, E)``) by one cleaned segment, Kafka-style:

1. the cleaner writes ``<B>.log.cleaned`` (+ ``.index.cleaned``,
   ``.timeindex.cleaned``) and fsyncs them - a crash now leaves stray
   ``.cleaned`` files, which recovery deletes;
2. ``install_group`` writes the old segments' abort index entries to
   ``<B>.txnindex.swap`` (if any), renames the indexes, then the log, to ``.swap`` and
   fsyncs the directory.  **The log's ``.swap`` rename is the commit point**:
   from then on recovery finishes the replacement;
3. it deletes the old segments' files, then renames the ``.swap`` files to
   their final names (log last).

``complete_swaps`` (run by ``PartitionLog.open`` before segments are loaded)
deletes ``.cleaned`` files and index ``.swap`` files without a log ``.swap``,
and for each ``<B>.log.swap`` deletes every segment file whose base offset is
in ``[B, E)`` - E being the offset after the swap's last batch - and renames
the swap into place.  The cleaner always keeps (header-only if need be) the
last batch of each group, so a cleaned segment ends exactly at ``E`` and the
old segments to remove are known from the swap file alone.

The checkpoint (``cleaner-offset-checkpoint``, JSON, temp+rename) holds the
first dirty offset and the earliest delete horizon still pending in the
cleaned part of the log.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from suoi.atomic_file import fsync_dir, write_atomically
from suoi.log.errors import KafkaStorageError
from suoi.log.segment import LogSegment, segment_file_name
from suoi.protocol.records import HEADER_SIZE, parse_batch_header

__all__ = [
    "CHECKPOINT_FILE",
    "CLEANED",
    "SWAP",
    "CleanerCheckpoint",
    "complete_swaps",
    "install_group",
    "read_checkpoint",
    "remove_cleaned",
    "write_checkpoint",
]

logger = logging.getLogger("suoi.log")

CHECKPOINT_FILE = "cleaner-offset-checkpoint"
CLEANED = ".cleaned"
SWAP = ".swap"
_SEGMENT_FILE = re.compile(r"(\d{20})\.(log|index|timeindex|txnindex)")
_KINDS = (".index", ".timeindex", ".log")  # rename order: the log last
#: What a swap installs: the cleaner's three files and the moved abort index (if any entry).
_INSTALLED = (".index", ".timeindex", ".txnindex", ".log")


def _no_crash(step: str) -> None:
    return None


#: Fault-injection seam: tests replace it to raise at a named step of the swap.
crash_hook: Callable[[str], None] = _no_crash


@dataclass(frozen=True, slots=True)
class CleanerCheckpoint:
    first_dirty_offset: int = 0
    #: Earliest delete horizon of a batch still holding tombstones; -1 if none.
    delete_horizon_ms: int = -1


def read_checkpoint(directory: Path) -> CleanerCheckpoint:
    try:
        doc = json.loads((directory / CHECKPOINT_FILE).read_text())
        return CleanerCheckpoint(int(doc["first_dirty_offset"]), int(doc.get("delete_horizon_ms", -1)))
    except FileNotFoundError:
        return CleanerCheckpoint()
    except (ValueError, KeyError, TypeError):
        logger.warning("ignoring malformed %s in %s", CHECKPOINT_FILE, directory)
        return CleanerCheckpoint()


def write_checkpoint(directory: Path, cp: CleanerCheckpoint, *, durable: bool = True) -> Path:
    """fsynced if ``durable``, the directory not; returns the path. The cleaner's commit (on the
    event loop) writes it unsynced and has the log sync it off the loop (`LogState.state_written`):
    an OS crash before that brings back an older first dirty offset (or none), cleaned again."""
    path = directory / CHECKPOINT_FILE
    doc = {"version": 1, "first_dirty_offset": cp.first_dirty_offset, "delete_horizon_ms": cp.delete_horizon_ms}
    try:
        write_atomically(path, json.dumps(doc), fsync=durable, sync_dir=False)
    except OSError as e:
        raise KafkaStorageError(e.errno, f"cannot write {path}: {e.strerror}") from e
    return path


def _name(directory: Path, base: int, kind: str, suffix: str = "") -> Path:
    return directory / segment_file_name(base, kind + suffix)


def remove_cleaned(directory: Path, base: int) -> None:
    """Drop one group's ``.cleaned`` output (a discarded cleaning)."""
    for kind in _KINDS:
        _name(directory, base, kind, CLEANED).unlink(missing_ok=True)


def install_group(directory: Path, base: int, old: Sequence[LogSegment]) -> None:
    """Replace the segments ``old`` by the cleaned segment ``<base>.*.cleaned``; their abort
    index entries go with it (``<base>.txnindex.swap``, written before the commit point, so a
    crash after it loses none: the cleaner keeps aborted records and their markers)."""
    _write_txn_index_swap(directory, base, old)
    for kind in _KINDS:
        os.rename(_name(directory, base, kind, CLEANED), _name(directory, base, kind, SWAP))
        crash_hook(f"swap{kind}")
    fsync_dir(directory)
    for i, seg in enumerate(old):
        seg.delete()
        crash_hook(f"deleted-{i}")
    fsync_dir(directory)
    for kind in _INSTALLED:
        swap = _name(directory, base, kind, SWAP)
        if kind == ".txnindex" and not swap.exists():
            continue
        os.rename(swap, _name(directory, base, kind))
        crash_hook(f"installed{kind}")
    fsync_dir(directory)


def _write_txn_index_swap(directory: Path, base: int, old: Sequence[LogSegment]) -> None:
    entries = [t for seg in old for t in seg.txn_index.entries]
    if not entries:
        return
    with open(_name(directory, base, ".txnindex", SWAP), "wb") as f:
        f.write(b"".join(t.encode() for t in entries))
        f.flush()
        os.fsync(f.fileno())


def complete_swaps(directory: Path) -> None:
    """Start-up recovery: finish committed swaps, drop uncommitted cleaner output."""
    if not directory.is_dir():
        return
    names = sorted(p.name for p in directory.iterdir())
    changed = False
    for name in names:
        if name.endswith(CLEANED):
            (directory / name).unlink(missing_ok=True)
            changed = True
    for name in names:
        if not name.endswith(".log" + SWAP) or not name[:20].isdigit():
            continue
        base = int(name[:20])
        end = _swap_end(directory / name, base)
        logger.warning("%s: completing interrupted cleaner swap of offsets [%d, %d)", directory, base, end)
        moved_txns = _name(directory, base, ".txnindex", SWAP).exists()
        for p in list(directory.iterdir()):
            m = _SEGMENT_FILE.fullmatch(p.name)
            if m and (base <= int(m.group(1)) < end or int(m.group(1)) == base):
                if m.group(2) == "txnindex" and int(m.group(1)) == base and not moved_txns:
                    continue  # the moved abort index, installed already (the old one went before it)
                p.unlink()
        for kind in _INSTALLED:
            swap = _name(directory, base, kind, SWAP)
            if swap.exists():
                os.rename(swap, _name(directory, base, kind))
        changed = True
    for p in list(directory.iterdir()):
        if p.name.endswith(SWAP):  # index swaps whose log never reached .swap
            p.unlink()
            changed = True
    if changed:
        fsync_dir(directory)


def _swap_end(path: Path, base: int) -> int:
    """Offset after the last complete batch of a (fully written) swap file."""
    end = base
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        pos = 0
        while size - pos >= HEADER_SIZE:
            h = parse_batch_header(os.pread(f.fileno(), HEADER_SIZE, pos))
            if h.size < HEADER_SIZE or pos + h.size > size:
                break
            end = h.next_offset
            pos += h.size
    return end
