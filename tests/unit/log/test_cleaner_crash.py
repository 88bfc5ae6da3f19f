"""Crash at every step of a cleaning pass, reopen, and check the log is whole.

Before the commit point (the log file's rename to ``.swap``) the old data must
come back; from it on, the cleaned data.  Never a mix, never a lost record.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from suoi.log import cleaner_files
from suoi.log.cleaner import LogCleaner
from suoi.log.cleaner_files import read_checkpoint
from suoi.log.partition_log import PartitionLog
from tests.unit.log.log_helpers import Clock, OpenLog
from tests.unit.log.test_cleaner import C, contents, fill, latest, put

SEGMENT_BYTES = 300  # sealed segments of 100 bytes: 2 groups of 3

BEFORE_COMMIT = ["built", "swap.index", "swap.timeindex"]
AFTER_COMMIT = ["swap.log", "deleted-0", "deleted-1", "deleted-2", "installed.index",
                "installed.timeindex", "installed.log", "checkpoint"]


class Crash(Exception):
    pass


@pytest.mark.parametrize("step", BEFORE_COMMIT + AFTER_COMMIT)
@pytest.mark.parametrize("crash_group", [0, 1])
def test_crash_at_each_step_leaves_old_or_new_data(open_log: OpenLog, clock: Clock, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch, step: str,
                                                   crash_group: int) -> None:
    cfg = C(segment_bytes=SEGMENT_BYTES)
    log = open_log(**cfg)
    fill(log, rounds=6, keys=3)
    put(log, (b"k0", b"active"))
    before = contents(log)
    assert len(log.segments) == 7

    # the expected result, from a clean run on a copy of the data
    ref_dir = tmp_path / "ref"
    shutil.copytree(tmp_path / "t-0", ref_dir / "t-0")
    ref = PartitionLog.open(ref_dir / "t-0", "t", 0, log.config, now_ms=clock)
    LogCleaner().clean(ref, clock.now)
    after = contents(ref)
    assert len(ref.segments) == 3  # two cleaned groups + active
    ref.close()

    seen: dict[str, int] = {}

    def hook(name: str) -> None:
        seen[name] = seen.get(name, 0) + 1
        groups_done = seen[name] - 1
        if name == step and (groups_done == crash_group or step in ("built", "checkpoint")):
            raise Crash(name)

    monkeypatch.setattr(cleaner_files, "crash_hook", hook)
    with pytest.raises(Crash):
        LogCleaner().clean(log, clock.now)
    monkeypatch.setattr(cleaner_files, "crash_hook", lambda name: None)
    log.close()

    reopened = open_log(**cfg)
    got = contents(reopened)
    names = [p.name for p in (tmp_path / "t-0").iterdir()]
    assert not [n for n in names if n.endswith((".cleaned", ".swap"))], names
    if step in BEFORE_COMMIT and crash_group == 0:
        assert got == before
    elif step in ("built", "checkpoint"):
        assert got == (before if step == "built" else after)
    else:
        # group-by-group: every offset range is either entirely old or entirely new
        old_by_off = {o: (k, v) for o, k, v in before}
        for o, k, v in got:
            assert old_by_off[o] == (k, v)
        assert set(after) <= set(got)
        if step in AFTER_COMMIT and crash_group == 1:
            assert got == after
    assert latest(got) == latest(before)
    assert reopened.log_end_offset == 19 and reopened.log_start_offset == 0
    # every offset still readable, and the next pass converges on the reference
    for off in range(19):
        assert contents(reopened, off)
    LogCleaner().clean(reopened, clock.now, force=True)
    assert contents(reopened) == after
    assert read_checkpoint(tmp_path / "t-0").first_dirty_offset == 18
