"""The cleaner's commit as steps: renames on the event loop, fsyncs and unlinks on a thread.

An fsync on a busy disk takes 5-100+ ms and every client of the node waits behind one run on the
event loop; the commit of a cleaning used to run four there (the moved abort index and three of
the partition directory). `commit_steps` is a generator: the code between its ``yield``s runs on
the event loop (it touches the `PartitionLog`: renames, the segments swapped in memory), and each
value it yields is a thread step - a callable the caller runs wherever it likes and resumes the
generator after: `suoi.log_cleaning` awaits it on a thread, `run_steps` (tests, tools,
`LogCleaner.commit`) calls it in line. Each step begins only once the one before it is durable,
which keeps `cleaner_files`' crash protocol (Kafka's `LocalLog.replaceSegments` does the same on
the cleaner thread while holding the log's lock):

0. thread: the old segments' abort index entries written and fsynced as ``.txnindex.cleaned``
   (from the plan's copy; the commit checks they are still the segments' own), the directory
   fsynced (the ``.cleaned`` names durable);
1. loop: the result checked (else discarded); each group's ``.cleaned`` files renamed to
   ``.swap`` (the commit point), the old segments closed and replaced in memory by the cleaned
   one, read from its ``.swap`` names; thread: directory fsync;
2. loop: the old segments' files renamed to ``.deleted``; thread: directory fsync, unlinks;
3. loop: ``.swap`` renamed to the final names, the segment reopened under them, the cleaner
   checkpoint written (synced off the loop, `LogState.state_written`); thread: directory fsync,
   so the log's next commit never overtakes it.

Between the steps the loop serves as usual: a log closed meanwhile (stop, topic deletion, a
replica moved or reopened, a failed log dir) is left as it is on disk, which the next open
finishes (`cleaner_files.complete_swaps`); a cleaned segment removed meanwhile (retention,
DeleteRecords) is not installed, its old files go all the same. A segment still under a
``.swap`` name (a step failed) is never cleaned again over itself: such a result is discarded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from contextlib import suppress
from functools import partial
from pathlib import Path

from suoi.atomic_file import fsync_dir
from suoi.log import cleaner_files as files
from suoi.log.cleaner_files import CLEANED, SWAP, CleanerCheckpoint
from suoi.log.cleaner_plan import CleanResult
from suoi.log.partition_log import PartitionLog
from suoi.log.segment import LogSegment
from suoi.log.txn_index import AbortedTxn

__all__ = ["CommitSteps", "Step", "commit_steps", "run_steps"]

logger = logging.getLogger("suoi.log.cleaner")

#: A thread step: fsyncs, unlinks or writes of the cleaner's own files, no log state.
Step = Callable[[], None]
#: `commit_steps`: yields thread steps, returns whether the result was committed.
CommitSteps = Generator[Step, None, bool]


def run_steps(steps: CommitSteps) -> bool:
    """All of a commit on the caller's thread (tests, tools)."""
    try:
        step = next(steps)
        while True:
            step()
            step = steps.send(None)
    except StopIteration as done:
        return bool(done.value)


def write_moved_txns(result: CleanResult) -> None:
    """Thread step 0: each group's abort index entries (those of its old segments: their markers lie
    in the group's offset range) from the plan's copy, written and fsynced as ``.txnindex.cleaned``."""
    plan = result.plan
    ends = {id(p.segment): p.next_offset for p in plan.segments}
    moved: dict[int, list[AbortedTxn]] = {}
    for g in result.groups:
        lo, hi = g.base_offset, ends[id(g.old[-1])]
        moved[g.base_offset] = entries = [t for t in plan.aborted_txns if lo <= t.last_offset < hi]
        files.write_txn_index(plan.directory, g.base_offset, entries)
    fsync_dir(plan.directory)  # every .cleaned name durable before a rename of one to .swap
    result.moved_txns = moved


def _discard(log: PartitionLog, result: CleanResult) -> str | None:
    """Why the result cannot be committed, or None."""
    current = {id(s) for s in log.segments}
    if log.directory != result.plan.directory or not log.config.compacts or not all(
            id(seg) in current and not seg.closed for g in result.groups for seg in g.old):
        return "log changed during cleaning"
    if any(not seg.log_path.name.endswith(".log") for g in result.groups for seg in g.old):
        return "a swap of an earlier cleaning is unfinished"
    moved = result.moved_txns or {}
    if any(moved.get(g.base_offset, []) != [t for s in g.old for t in s.txn_index.entries] for g in result.groups):
        return "abort index changed during cleaning"
    return None


def _alive(log: PartitionLog, opened: object) -> bool:
    """The log is still open as it was at step 1: not closed (its segments are, then), not reopened
    in place (a replica moved: a new producer state, made once per open)."""
    return log.producer_state is opened and not log.segments[-1].closed


def _old_paths(seg: LogSegment) -> list[Path]:
    return [seg.offset_index.path, seg.time_index.path, seg.txn_index.path, seg.log_path]


def _sync(directory: Path) -> None:
    """A thread step's directory fsync; a directory gone meanwhile (topic deleted, replica moved:
    the log closed, so the steps left are dropped) needs none."""
    with suppress(FileNotFoundError):
        fsync_dir(directory)


def _sync_and_unlink(directory: Path, paths: list[Path]) -> None:
    _sync(directory)
    files.unlink_all(paths)


def _load(log: PartitionLog, base: int, suffix: str) -> LogSegment:
    seg = LogSegment(log.directory, base, index_interval_bytes=log.config.index_interval_bytes, suffix=suffix)
    seg.load()
    seg.seal_memory()
    return seg


def commit_steps(log: PartitionLog, result: CleanResult) -> CommitSteps:
    """Swap the cleaned segments in (see the module doc); returns False if the result was discarded
    (its files deleted): a segment it replaces left the log meanwhile (retention, DeleteRecords,
    topic deletion), or its abort index changed."""
    plan = result.plan
    if result.moved_txns is None:
        yield partial(write_moved_txns, result)
    why = _discard(log, result)
    if why is not None:
        logger.info("%s: %s, discarding the result", plan.name, why)
        for g in result.groups:
            files.remove_cleaned(plan.directory, g.base_offset)
        return False
    directory, opened = log.directory, log.producer_state
    swapped: list[tuple[LogSegment, list[list[Path]]]] = []
    for g in result.groups:  # step 1
        files.rename_group(directory, g.base_offset, CLEANED, SWAP, "swap")
        new = _load(log, g.base_offset, SWAP)
        for seg in g.old:
            seg.close()
        log.replace_segments(g.old, new)
        swapped.append((new, [_old_paths(seg) for seg in g.old]))
    yield partial(_sync, directory)  # the commit point durable before anything old goes
    if not _alive(log, opened):
        return True
    retired: list[Path] = []
    for _, old in swapped:  # step 2
        for i, paths in enumerate(old):
            retired += files.retire(paths, i)
    yield partial(_sync_and_unlink, directory, retired)
    if not _alive(log, opened):
        return True
    for new, _ in swapped:  # step 3
        if new in log.segments and not new.closed:
            new.close()
            files.rename_group(directory, new.base_offset, SWAP, "", "installed")
            log.replace_segments([new], _load(log, new.base_offset, ""))
    files.crash_hook("checkpoint")
    checkpoint = CleanerCheckpoint(result.end_offset, result.delete_horizon_ms)
    log.state_written(files.write_checkpoint(directory, checkpoint, durable=False))  # synced off the loop
    if result.groups:
        logger.info(
            "%s: cleaned offsets [%d, %d): %d -> %d bytes, %d records removed",
            plan.name, plan.segments[0].base_offset, result.end_offset,
            result.bytes_in, result.bytes_out, result.records_removed,
        )  # fmt: skip
    yield partial(_sync, directory)  # the final names durable before the next commit
    return True
