"""The cleaner's commit with its fsyncs on a thread (`cleaner_swap`): crash-safe at every step.

`test_cleaner_crash` crashes the process (every rename kept). Here the machine crashes: each
directory change (rename, unlink) made since the partition directory's last fsync may be lost.
A journal records them; at every point of a commit (each rename and each thread step) the
commit stops, and for every prefix of the unsynced changes (an ordered file system keeps a
prefix; none and all included) the directory is rebuilt as the disk would hold it, reopened and
checked: every offset range old or new, never lost, never twice, no leftover.
"""

from __future__ import annotations

import os
import pathlib
import random
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from suoi.log import cleaner_files, cleaner_swap
from suoi.log.cleaner import LogCleaner
from suoi.log.cleaner_swap import CommitSteps, Step, commit_steps
from suoi.log.config import LogConfig
from suoi.log.partition_log import PartitionLog
from tests.unit.log.log_helpers import Clock
from tests.unit.log.test_cleaner import C, contents, fill, latest, put
from tests.unit.log.test_txn_recovery import two_aborts_to_clean

_real_rename, _real_replace, _real_unlink = os.rename, os.replace, pathlib.Path.unlink


Records = list[tuple[int, bytes | None, bytes | None]]


class Crash(Exception):
    pass


class Journal:
    """Directory changes in ``directory`` since its last fsync (unlinked files kept aside)."""

    def __init__(self, directory: Path, trash: Path) -> None:
        self.directory, self.trash = directory, trash
        self.ops: list[tuple[str, str, str | None]] = []  # (source name, target name | "", saved copy)
        trash.mkdir()

    def _save(self, path: Path) -> str | None:
        if not path.exists():
            return None
        saved = self.trash / f"{len(list(self.trash.iterdir()))}-{path.name}"
        shutil.copy2(path, saved)
        return str(saved)

    def rename(self, src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        s, d = Path(src), Path(dst)
        if s.parent != self.directory:
            _real_rename(src, dst)
            return
        saved = self._save(d)
        _real_rename(src, dst)
        self.ops.append((s.name, d.name, saved))

    def unlink(self, path: pathlib.Path, missing_ok: bool = False) -> None:
        if path.parent == self.directory and path.exists():
            self.ops.append((path.name, "", self._save(path)))
        _real_unlink(path, missing_ok=missing_ok)

    def synced(self, path: str | os.PathLike[str]) -> None:
        if Path(path) == self.directory:
            self.ops.clear()

    def kept_sets(self, rng: random.Random, samples: int) -> list[set[int]]:
        """Which unsynced changes an OS crash may keep: each prefix (an ordered file system), and
        random subsets (POSIX orders nothing) in which a change is kept only with every earlier
        change of the same names (a rename of a file whose creation or rename was lost cannot)."""
        n = len(self.ops)
        sets = [set(range(k)) for k in range(n + 1)]
        for _ in range(samples if n > 1 else 0):
            kept: set[int] = set()
            for i, (src, dst, _) in enumerate(self.ops):
                names = {src, dst} - {""}
                earlier = [j for j in range(i) if names & ({self.ops[j][0], self.ops[j][1]} - {""})]
                if rng.random() < 0.5 and all(j in kept for j in earlier):
                    kept.add(i)
            sets.append(kept)
        return sets

    def lose(self, copy: Path, kept: set[int]) -> None:
        """In ``copy`` (of the directory), undo every change not ``kept``, the last first."""
        for i in reversed(range(len(self.ops))):
            if i in kept:
                continue
            src, dst, saved = self.ops[i]
            if dst:  # a rename: back, and what it replaced (if anything) back too
                if (copy / dst).exists():
                    _real_rename(copy / dst, copy / src)
                if saved:
                    shutil.copy2(saved, copy / dst)
            elif saved:  # an unlink: the file comes back
                shutil.copy2(saved, copy / src)


def _drive(log: PartitionLog, crash_at: int) -> int:
    """Clean ``log`` (all steps on this thread), raising Crash at the ``crash_at``-th event (a
    rename's hook or a thread step's end); returns how many events a whole commit has."""
    cleaner = LogCleaner()
    plan = cleaner.plan(log, 10**12, force=True)
    assert plan is not None
    result = cleaner.build(plan)
    events = 0

    def event() -> None:
        nonlocal events
        events += 1
        if events == crash_at:
            raise Crash(events)

    cleaner_files.crash_hook = lambda name: event()
    steps = commit_steps(log, result)
    try:
        step = next(steps)
        while True:
            step()
            event()
            step = steps.send(None)
    except StopIteration as done:
        assert done.value is True
    return events


@pytest.fixture
def fs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Journal], None]]:
    monkeypatch.setattr(cleaner_files, "crash_hook", cleaner_files.crash_hook)  # put back at the end

    def install(journal: Journal) -> None:
        monkeypatch.setattr(os, "rename", journal.rename)
        monkeypatch.setattr(os, "replace", journal.rename)
        monkeypatch.setattr(pathlib.Path, "unlink", lambda path, missing_ok=False: journal.unlink(path, missing_ok))
        monkeypatch.setattr(cleaner_swap, "fsync_dir", journal.synced)

    yield install
    monkeypatch.undo()


def _crashes(tmp_path: Path, fs: Callable[[Journal], None], make: Callable[[PartitionLog], None],
             config: dict[str, object], check: Callable[[PartitionLog, Records, Records], None]
             ) -> int:
    """For every crash point and every kept prefix: rebuild, reopen, ``check``; returns the cases."""
    src = tmp_path / "src"
    log = PartitionLog.open(src / "t-0", "t", 0, LogConfig(**config), now_ms=Clock())  # type: ignore[arg-type]
    make(log)
    log.close()
    shutil.copytree(src, tmp_path / "ref")
    ref = PartitionLog.open(tmp_path / "ref" / "t-0", "t", 0, LogConfig(**config), now_ms=Clock())  # type: ignore[arg-type]
    LogCleaner().clean(ref, 10**12, force=True)
    after = contents(ref)
    ref.close()
    cases, crash_at, total = 0, 1, None
    rng = random.Random(19)
    while total is None or crash_at <= total:
        work = tmp_path / f"w{crash_at}"
        shutil.copytree(src, work)
        log = PartitionLog.open(work / "t-0", "t", 0, LogConfig(**config), now_ms=Clock())  # type: ignore[arg-type]
        before = contents(log)
        journal = Journal(work / "t-0", tmp_path / f"trash{crash_at}")
        fs(journal)
        try:
            total = _drive(log, crash_at)
            crashed = False
        except Crash:
            crashed = True
        finally:
            cleaner_files.crash_hook = lambda name: None
            os.rename, os.replace, pathlib.Path.unlink = _real_rename, _real_replace, _real_unlink  # type: ignore[method-assign]
        for seg in log.segments:  # the process is gone: only its descriptors go with it
            seg.file.release_fd()
        if not crashed:
            break
        for n, kept in enumerate(journal.kept_sets(rng, 12)):
            disk = tmp_path / f"disk{crash_at}-{n}"
            shutil.copytree(work, disk)
            journal.lose(disk / "t-0", kept)
            again = PartitionLog.open(disk / "t-0", "t", 0, LogConfig(**config), now_ms=Clock())  # type: ignore[arg-type]
            names = [p.name for p in (disk / "t-0").iterdir()]
            assert not [n for n in names if n.endswith((".cleaned", ".swap", ".deleted"))], (crash_at, kept, names)
            check(again, before, after)
            again.close()
            shutil.rmtree(disk)
            cases += 1
        crash_at += 1
    return cases


def test_an_os_crash_at_any_step_of_the_commit_keeps_old_or_new_data(tmp_path: Path, fs: Callable[[Journal], None]
                                                                      ) -> None:
    config = C(segment_bytes=300)  # 6 sealed segments, 2 groups of 3

    def make(log: PartitionLog) -> None:
        fill(log, rounds=6, keys=3)
        put(log, (b"k0", b"active"))

    def check(log: PartitionLog, before: Records, after: Records) -> None:
        got = contents(log)
        assert set(after) <= set(got) <= set(before)
        old = {o: (k, v) for o, k, v in before}
        offsets = [o for o, _, _ in got]
        assert offsets == sorted(set(offsets))  # none twice, in order
        assert all(old[o] == (k, v) for o, k, v in got)
        assert latest(got) == latest(before)
        assert log.log_end_offset == 19 and log.log_start_offset == 0

    assert _crashes(tmp_path, fs, make, config, check) > 30


def test_an_os_crash_at_any_step_keeps_the_moved_abort_index(tmp_path: Path, fs: Callable[[Journal], None]) -> None:
    config = {"cleanup_policy": "compact", "min_cleanable_dirty_ratio": 0.01, "segment_bytes": 1 << 20}
    aborted: list[object] = []

    def make(log: PartitionLog) -> None:
        aborted.extend(two_aborts_to_clean(log))

    def check(log: PartitionLog, before: Records, after: Records) -> None:
        assert log.aborted_transactions(0, log.log_end_offset) == aborted
        assert contents(log) in (before, after)  # one group: all cleaned or nothing

    assert _crashes(tmp_path, fs, make, config, check) > 10


def _steps_until_retire(log: PartitionLog) -> tuple[CommitSteps, list[Step]]:
    """A commit driven by hand up to the thread step after step 1 (the swap's renames)."""
    cleaner = LogCleaner()
    plan = cleaner.plan(log, 10**12, force=True)
    assert plan is not None
    steps = commit_steps(log, cleaner.build(plan))
    ran = [next(steps)]  # step 0: the moved abort index (none here)
    ran[0]()
    ran.append(steps.send(None))  # step 1 done on the loop: its directory fsync is next
    return steps, ran


def _finish(steps: CommitSteps) -> bool:
    try:
        while True:
            steps.send(None)()
    except StopIteration as done:
        return bool(done.value)


def test_a_log_closed_between_the_steps_is_finished_by_its_next_open(tmp_path: Path) -> None:
    config = LogConfig(**C(segment_bytes=300))  # type: ignore[arg-type]
    log = PartitionLog.open(tmp_path / "t-0", "t", 0, config, now_ms=Clock())
    fill(log, rounds=6, keys=3)
    put(log, (b"k0", b"active"))
    before = contents(log)
    steps, ran = _steps_until_retire(log)
    assert [p.name for p in (tmp_path / "t-0").iterdir() if p.name.endswith(".log.swap")]
    assert contents(log) == contents(log, 0) and latest(contents(log)) == latest(before)  # served from .swap
    log.close()  # a stop, a replica move, a topic deletion...
    ran[-1]()
    assert _finish(steps) is True  # the steps left are dropped
    again = PartitionLog.open(tmp_path / "t-0", "t", 0, config, now_ms=Clock())
    assert latest(contents(again)) == latest(before) and len(again.segments) == 3
    assert not [p.name for p in (tmp_path / "t-0").iterdir() if p.name.endswith((".swap", ".deleted", ".cleaned"))]
    again.close()


def test_a_cleaned_segment_deleted_by_retention_between_the_steps_is_not_installed(tmp_path: Path) -> None:
    config = LogConfig(**C(segment_bytes=300, cleanup_policy=("compact", "delete"), retention_ms=1000))  # type: ignore[arg-type]
    clock = Clock()
    log = PartitionLog.open(tmp_path / "t-0", "t", 0, config, now_ms=clock)
    fill(log, rounds=6, keys=3)
    put(log, (b"k0", b"active"), ts=clock.now)
    steps, ran = _steps_until_retire(log)
    assert log.apply_retention(clock.now) == 2  # both cleaned (.swap) segments expire meanwhile
    ran[-1]()
    assert _finish(steps) is True
    names = sorted(p.name for p in (tmp_path / "t-0").iterdir())
    assert not [n for n in names if n.endswith((".swap", ".deleted", ".cleaned"))], names
    assert [n for n in names if n.endswith(".log")] == [f"{log.segments[0].base_offset:020d}.log"]  # the old went too
    assert contents(log) == [(18, b"k0", b"active")]
    log.close()
