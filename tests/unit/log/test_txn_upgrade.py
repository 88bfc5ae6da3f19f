"""Abort indexes left incomplete by versions before the follower fix are rebuilt once, at open
(`suoi.log.txn_upgrade`), and the log is then marked (a version-3 producer snapshot) so later
starts read nothing more; logs without transactional batches are only hopped over.

The old bug's output is made by hand on a real on-disk log: .txnindex entries removed and the
producer snapshot stripped of an open transaction, written as version 2 (what old versions wrote).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from suoi.log.config import LogConfig
from suoi.log.partition_log import PartitionLog
from suoi.log.producer_state import SNAPSHOT_SUFFIX, snapshot_offsets
from suoi.log.txn_index import AbortedTxn
from suoi.log.txn_upgrade import TxnIndexCheck
from tests.unit.log.log_helpers import Clock, OpenLog
from tests.unit.log.test_txn_recovery import build_history, crash, plain, state, txn


def age(directory: Path, *, drop_open: int | None = None) -> None:
    """Make a closed log look written by an old replica: every .txnindex emptied (the ABORTs found
    no open transaction), the producer snapshots written as version 2, ``drop_open``'s open
    transaction missing from them (dropped at a chunk's end)."""
    for index in directory.glob("*.txnindex"):
        index.unlink()
    for offset in snapshot_offsets(directory):
        path = directory / f"{offset:020d}{SNAPSHOT_SUFFIX}"
        snap = json.loads(path.read_text())
        snap["version"] = 2
        for producer in snap["producers"]:
            if producer["pid"] == drop_open:
                producer["txn"] = -1
        path.write_text(json.dumps(snap))


def newest_snapshot_version(directory: Path) -> int:
    newest = snapshot_offsets(directory)[-1]
    return int(json.loads((directory / f"{newest:020d}{SNAPSHOT_SUFFIX}").read_text())["version"])


def reopen(log: PartitionLog, clock: Clock) -> PartitionLog:
    return PartitionLog.open(log.directory, log.topic, log.partition, log.config, now_ms=clock)


def test_an_old_replicas_abort_index_is_rebuilt_once_at_open(open_log: OpenLog, clock: Clock, tmp_path: Path) -> None:
    log = open_log()
    build_history(log)
    expected = state(log)
    assert expected[3] == [AbortedTxn(1, 0, 2, 3), AbortedTxn(3, 6, 8, 3)] and expected[1] == {2: 3, 4: 9}
    log.close()
    age(log.directory, drop_open=2)

    # control: the same files vouched for by a current snapshot are served as they are, which
    # is what the old versions did: no aborted transaction, and the LSO past producer 2's data
    trusted_copy = tmp_path / "trusted-0"
    shutil.copytree(log.directory, trusted_copy)
    for offset in snapshot_offsets(trusted_copy):
        path = trusted_copy / f"{offset:020d}{SNAPSHOT_SUFFIX}"
        path.write_text(path.read_text().replace('"version": 2', '"version": 3'))
    trusted = PartitionLog.open(trusted_copy, "trusted", 0, LogConfig(), now_ms=clock)
    assert trusted.txn_index_check is TxnIndexCheck.TRUSTED
    assert trusted.aborted_transactions(0, trusted.log_end_offset) == []
    assert trusted.last_stable_offset == 9 and dict(trusted.producer_state.ongoing_txns) == {4: 9}
    trusted.close()

    upgraded = reopen(log, clock)
    assert upgraded.txn_index_check is TxnIndexCheck.REBUILT
    assert state(upgraded) == expected  # entries in their segments, open transactions, LSO
    assert newest_snapshot_version(log.directory) == 3  # marked at once: a crash now does not rescan
    assert plain(upgraded) == 13
    crash(upgraded)  # leaves the snapshot written at open (13), not one at the log end

    after_crash = reopen(log, clock)
    assert after_crash.txn_index_check is TxnIndexCheck.TRUSTED
    lso, ongoing, _, aborted = state(after_crash)
    assert (lso, ongoing, aborted) == (expected[0], expected[1], expected[3])
    after_crash.append_control(2, 0, False, 0)  # the open transaction aborts: its entry is right
    assert after_crash.aborted_transactions(0, after_crash.log_end_offset)[-1] == AbortedTxn(2, 3, 14, 9)
    after_crash.close()

    again = reopen(log, clock)
    assert again.txn_index_check is TxnIndexCheck.TRUSTED
    again.close()


def test_a_log_without_transactions_is_checked_once_and_left_as_it_is(open_log: OpenLog, clock: Clock) -> None:
    log = open_log()
    for _ in range(3):
        for _ in range(5):
            plain(log)
        log.roll()
    plain(log)
    log.close()
    age(log.directory)
    files = {p.name: p.read_bytes() for p in log.directory.iterdir() if not p.name.endswith(SNAPSHOT_SUFFIX)}

    checked = reopen(log, clock)
    assert checked.txn_index_check is TxnIndexCheck.CHECKED
    assert checked.log_end_offset == 16 and checked.aborted_transactions(0, 16) == []
    assert newest_snapshot_version(log.directory) == 3
    assert {p.name: p.read_bytes() for p in log.directory.iterdir()
            if not p.name.endswith(SNAPSHOT_SUFFIX)} == files  # nothing rewritten
    plain(checked)
    crash(checked)

    assert reopen(log, clock).txn_index_check is TxnIndexCheck.TRUSTED


def test_transactions_only_above_an_old_snapshot_are_replayed_as_always(open_log: OpenLog, clock: Clock) -> None:
    """Batches above the snapshot are replayed at every open (with their markers), and the state
    at the snapshot cannot hold a transaction when none began below it: nothing to rebuild."""
    log = open_log()
    plain(log)
    log.roll()  # snapshot at 1
    txn(log, 7, 0)  # 1-2
    log.append_control(7, 0, False, 0)  # 3
    expected = state(log)
    crash(log)  # no snapshot at the log end: the one at 1 is the newest
    age(log.directory)

    reopened = reopen(log, clock)
    assert reopened.txn_index_check is TxnIndexCheck.CHECKED
    assert state(reopened) == expected and expected[3] == [AbortedTxn(7, 1, 3, 4)]
    reopened.close()


def test_a_log_with_no_snapshot_is_replayed_whole_and_a_new_one_is_not_looked_at(
        open_log: OpenLog, clock: Clock) -> None:
    log = open_log()
    assert log.txn_index_check is TxnIndexCheck.NEW
    txn(log, 5, 0)
    log.append_control(5, 0, False, 0)
    expected = state(log)
    crash(log)
    for index in log.directory.glob("*.txnindex"):
        index.unlink()
    replayed = reopen(log, clock)
    assert replayed.txn_index_check is TxnIndexCheck.REPLAYED
    assert state(replayed) == expected
    replayed.close()
