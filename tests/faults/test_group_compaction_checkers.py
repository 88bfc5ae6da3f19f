"""The consumer-group and compaction checkers (tests/faults/groups.py, compaction.py) on hand-made
histories: each anomaly they exist for is reported, and legal histories (a concurrent commit, a
deleted key, a write of unknown outcome) are not."""

from __future__ import annotations

from tests.faults.checker import Received, Sent
from tests.faults.compaction import KeyedRecord, KeyedWorkload, check_compacted
from tests.faults.groups import Commit, Fetch, check_group


def commit(offset: int, start: float, end: float, status: str = "acked", partition: int = 0, who: str = "c0") -> Commit:
    return Commit(who, partition, offset, start, end, status)  # type: ignore[arg-type]


def fetch(offset: int | None, start: float, end: float, partition: int = 0) -> Fetch:
    return Fetch("c1", partition, offset, start, end)


def test_fetch_after_an_acked_commit_must_see_it_or_newer() -> None:
    commits = [commit(0, 0, 1), commit(10, 2, 3), commit(20, 4, 5)]
    ok = check_group([], [], [], commits, [fetch(20, 6, 7), fetch(10, 2.5, 4.5)], {})
    assert ok.ok, ok.summary()
    stale = check_group([], [], [], commits, [fetch(10, 6, 7)], {})  # 20 was acked before the fetch: went back
    assert stale.stale == [(0, 10, 20, "c0")]
    assert not stale.ok


def test_commits_of_unknown_outcome_may_or_may_not_be_seen() -> None:
    commits = [commit(0, 0, 1), commit(10, 2, float("inf"), "unknown")]
    assert check_group([], [], [], commits, [fetch(10, 6, 7), fetch(0, 8, 9)], {}).ok
    fenced = [commit(0, 0, 1), commit(10, 2, 3, "failed")]
    assert check_group([], [], [], fenced, [fetch(10, 6, 7)], {}).unexpected == [(0, 10)]


def test_a_commit_sent_after_the_fetch_answered_explains_nothing() -> None:
    r = check_group([], [], [], [commit(0, 0, 1), commit(10, 5, 6)], [fetch(10, 2, 3)], {})
    assert r.unexpected == [(0, 10)]


def test_missing_commit_and_skipped_records() -> None:
    sent = [Sent("p", i, f"p-{i}", 0, "acked", i) for i in range(4)]
    final = [Received(0, i, f"p-{i}") for i in range(4)]
    consumed = [final[0], final[1], final[3]]  # p-2 skipped, below the committed end
    r = check_group(sent, final, consumed, [commit(0, 0, 1)], [fetch(None, 2, 3)], {0: 4})
    assert r.lost == ["p-2"] and r.missing == [("c1", 0)]
    phantom = check_group(sent, final, [*final, Received(0, 9, "x")], [commit(0, 0, 1)], [], {0: 4})
    assert phantom.phantom == [(0, 9, "x", None)] and not phantom.lost


def keyed_history(statuses: list[str]) -> tuple[KeyedWorkload, list[Sent]]:
    """One producer, one key (keys=1), every 3rd write a tombstone (seq 2, 5, ...)."""
    w = KeyedWorkload("unused:0", "t", producers=1, keys=1, tombstone_every=3)
    return w, [Sent("p0", i, f"p0-{i}", 0, s, i) for i, s in enumerate(statuses)]  # type: ignore[arg-type]


def kr(offset: int, seq: int, tombstone: bool = False) -> KeyedRecord:
    return KeyedRecord(0, offset, "p0-k0", f"p0-{seq}", tombstone)


def test_compacted_latest_value_per_key() -> None:
    w, sent = keyed_history(["acked", "acked"])
    assert check_compacted(w, sent, [kr(1, 1)]).ok
    assert check_compacted(w, sent, [kr(0, 0)]).stale_key == [("p0-k0", "p0-1", "p0-0")]
    assert check_compacted(w, sent, []).lost_key == ["p0-k0"]
    assert check_compacted(w, sent, [kr(5, 1)]).moved == [("p0-1", (0, 1), (0, 5))]
    assert check_compacted(w, sent, [kr(0, 0), kr(0, 1)]).misordered == [(0, 0, 0)]


def test_compacted_tombstones_and_unknown_writes() -> None:
    w, sent = keyed_history(["acked", "acked", "acked"])  # seq 2 is a tombstone
    assert check_compacted(w, sent, []).ok  # deleted, tombstone gone after delete.retention.ms
    assert check_compacted(w, sent, [kr(2, 2, tombstone=True)]).ok
    assert not check_compacted(w, sent, [kr(1, 1)]).ok  # the delete was lost
    w, sent = keyed_history(["acked", "unknown"])
    assert check_compacted(w, sent, [kr(0, 0)]).ok and check_compacted(w, sent, [kr(1, 1)]).ok
