"""On-disk side of log compaction: the cleaner checkpoint and the segment swap.

Crash-safe replacement of a group of segments ``[s1 .. sn]`` (bases ``B = b1 <
... < bn``, covering offsets ``[B, E)``) by one cleaned segment, Kafka-style
(`LocalLog.replaceSegments`). Only renames run on the event loop; every fsync (and unlink) runs
on a thread, and each step starts only once the one before it is durable (`cleaner_swap`):

1. on the cleaner's worker threads: ``<B>.log.cleaned`` (+ ``.index.cleaned``,
   ``.timeindex.cleaned``, and ``.txnindex.cleaned`` holding the old segments' abort index
   entries, if any) written and fsynced, then the directory - a crash now leaves stray
   ``.cleaned`` files, which recovery deletes;
2. loop: `rename_group` renames them to ``.swap``, the log last. **The log's ``.swap`` rename is
   the commit point**: from then on recovery finishes the replacement. A thread fsyncs the
   directory before anything old goes (an OS crash before it may keep the old names: the old
   segments come back, whole);
3. loop: `retire` renames the old segments' files to ``.deleted`` (recovery deletes those: the
   swap that replaces them is durable); a thread fsyncs the directory, then unlinks them;
4. loop: `rename_group` renames the ``.swap`` files to their final names (log last); a thread
   fsyncs the directory before the log's next cleaning commits.

``complete_swaps`` (run by ``PartitionLog.open`` before segments are loaded) takes a committed
swap's files still under ``.cleaned`` names (their renames lost by an OS crash: nothing orders
them before the log's; they were fsynced, and the directory, before it), deletes other
``.cleaned`` and ``.deleted`` files and the index ``.swap`` files of an uncommitted swap (its
``.log.cleaned`` is there), installs those of a swap whose log was installed (step 4's other
renames lost), and for each ``<B>.log.swap`` deletes every segment file whose base offset is
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
from suoi.log.segment import segment_file_name
from suoi.log.txn_index import AbortedTxn
from suoi.protocol.records import HEADER_SIZE, parse_batch_header

__all__ = [
    "CHECKPOINT_FILE",
    "CLEANED",
    "SWAP",
    "CleanerCheckpoint",
    "DELETED",
    "complete_swaps",
    "read_checkpoint",
    "remove_cleaned",
    "rename_group",
    "retire",
    "unlink_all",
    "write_checkpoint",
    "write_txn_index",
]

logger = logging.getLogger("suoi.log")

CHECKPOINT_FILE = "cleaner-offset-checkpoint"
CLEANED = ".cleaned"
SWAP = ".swap"
#: An old segment's file once its replacement is durable (`retire`): recovery deletes it.
DELETED = ".deleted"
_SEGMENT_FILE = re.compile(r"(\d{20})\.(log|index|timeindex|txnindex)")
#: What a swap installs, in rename order (the log last): the cleaner's three files and the moved
#: abort index (if any entry).
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
    for kind in _INSTALLED:
        _name(directory, base, kind, CLEANED).unlink(missing_ok=True)


def write_txn_index(directory: Path, base: int, entries: Sequence[AbortedTxn]) -> None:
    """Any thread: the abort index entries of a group's old segments as ``<base>.txnindex.cleaned``,
    fsynced (none: no file), so that they are durable before the swap's commit point - the
    cleaner keeps aborted records and their markers, so their entries move with them."""
    if not entries:
        return
    with open(_name(directory, base, ".txnindex", CLEANED), "wb") as f:
        f.write(b"".join(t.encode() for t in entries))
        f.flush()
        os.fsync(f.fileno())


def rename_group(directory: Path, base: int, src: str, dst: str, step: str) -> None:
    """Event loop: rename a group's files from suffix ``src`` to ``dst`` (no fsync: the caller has
    a thread sync the directory), the log last - the ``.cleaned`` -> ``.swap`` rename of the log is
    the commit point. A ``.txnindex`` is there only if the old segments had abort entries."""
    for kind in _INSTALLED:
        source = _name(directory, base, kind, src)
        if kind == ".txnindex" and not source.exists():
            continue
        os.rename(source, _name(directory, base, kind, dst))
        crash_hook(f"{step}{kind}")


def retire(paths: Sequence[Path], step: int) -> list[Path]:
    """Event loop, once the swap replacing them is durable: rename an old segment's files (those
    that exist) to ``.deleted``; returns the new names (a thread unlinks them)."""
    retired = []
    for path in paths:
        target = path.with_name(path.name + DELETED)
        try:
            os.rename(path, target)
        except FileNotFoundError:  # an index never materialized, no abort index
            continue
        retired.append(target)
    crash_hook(f"deleted-{step}")
    return retired


def unlink_all(paths: Sequence[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def complete_swaps(directory: Path) -> None:
    """Start-up recovery: finish committed swaps, drop uncommitted cleaner output."""
    if not directory.is_dir():
        return
    names = sorted(p.name for p in directory.iterdir())
    changed = False
    for name in names:  # a committed swap whose other renames an OS crash lost: they are whole
        if name.endswith(".log" + SWAP) and name[:20].isdigit():
            for kind in _INSTALLED[:-1]:
                base = int(name[:20])
                cleaned, swap = _name(directory, base, kind, CLEANED), _name(directory, base, kind, SWAP)
                if cleaned.exists() and not swap.exists():
                    os.rename(cleaned, swap)
    names = sorted(p.name for p in directory.iterdir())
    uncommitted = {n[:20] for n in names if n.endswith(".log" + CLEANED)}
    for name in names:
        if name.endswith((CLEANED, DELETED)):
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
        if p.name.endswith(SWAP):
            if p.name[:20] in uncommitted:  # index swaps whose log never reached .swap
                p.unlink()
            else:  # a swap installed but for this rename, lost by an OS crash (the log's was not)
                os.rename(p, p.with_name(p.name[: -len(SWAP)]))
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
