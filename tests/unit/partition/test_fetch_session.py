"""KIP-227 fetch sessions (suoi.partition.fetch_session): contexts, epochs, what an incremental
answer carries, and Kafka's cache eviction rules, with a seeded random walk over the cache."""

from __future__ import annotations

import random
import uuid

import pytest

from suoi.model import ErrorCode
from suoi.partition.fetch import FetchPartition, FetchTopic, TopicReads
from suoi.partition.fetch_session import (
    EVICTION_MS,
    FINAL_EPOCH,
    INITIAL_EPOCH,
    INVALID_SESSION_ID,
    CachedPartition,
    FetchContext,
    FetchSessionCache,
    new_context,
    next_epoch,
)
from suoi.partition.partition import ReadResult


def topics(spec: dict[str, list[int]], offset: int = 0) -> list[FetchTopic]:
    return [(name, None, [FetchPartition(p, offset, 1024) for p in parts]) for name, parts in spec.items()]


def answer(context: FetchContext, data: dict[tuple[str, int], ReadResult] | None = None, hw: int = 10) -> TopicReads:
    """What the log would return for the context's partitions: `data` where given, else nothing new at `hw`."""
    data = data or {}
    reads: TopicReads = [(name, tid, [(p.partition, data.get((str(name), p.partition)) or
                                       ReadResult(ErrorCode.none, hw, hw, 0)) for p in parts])
                         for name, tid, parts in context.topics]
    return context.respond(reads)


def names(reads: TopicReads) -> list[tuple[str, int]]:
    return [(str(name), index) for name, _, results in reads for index, _ in results]


def open_session(cache: FetchSessionCache, spec: dict[str, list[int]], now: int = 0, **kw: bool) -> tuple[int, int]:
    context = new_context(cache, 0, INITIAL_EPOCH, privileged=kw.get("privileged", False),
                          uses_topic_ids=kw.get("ids", False), requested=topics(spec), forgotten=[], now_ms=now)
    answer(context)
    return context.session_id, 1


def incremental(cache: FetchSessionCache, sid: int, epoch: int, spec: dict[str, list[int]] | None = None,
                forgotten: list[tuple[str, int]] | None = None, now: int = 1, offset: int = 0) -> FetchContext:
    return new_context(cache, sid, epoch, privileged=False, uses_topic_ids=False, requested=topics(spec or {}, offset),
                       forgotten=forgotten or [], now_ms=now)


def test_epochs_wrap_to_one_and_final_stays_final() -> None:
    assert next_epoch(INITIAL_EPOCH) == 1
    assert next_epoch(2**31 - 1) == 1
    assert next_epoch(FINAL_EPOCH) == FINAL_EPOCH


def test_sessionless_fetch_creates_nothing_and_answers_everything() -> None:
    cache = FetchSessionCache(10)
    context = new_context(cache, 0, FINAL_EPOCH, privileged=False, uses_topic_ids=False,
                          requested=topics({"a": [0, 1]}), forgotten=[], now_ms=0)
    assert names(answer(context)) == [("a", 0), ("a", 1)]
    assert context.session_id == INVALID_SESSION_ID and len(cache) == 0


def test_incremental_answers_only_partitions_with_something_new() -> None:
    cache = FetchSessionCache(10)
    sid, epoch = open_session(cache, {"a": [0, 1, 2], "b": [0]})
    assert sid != INVALID_SESSION_ID and cache.num_partitions == 4
    # nothing new anywhere: an empty answer, same session
    context = incremental(cache, sid, epoch)
    assert [p.partition for _, _, ps in context.topics for p in ps] == [0, 1, 2, 0]  # every session partition is read
    assert answer(context) == [] and context.session_id == sid
    # records on a-1, a moved HW on b-0, an error on a-2
    context = incremental(cache, sid, 2)
    got = answer(context, {("a", 1): ReadResult(ErrorCode.none, 12, 12, 0, records=b"x"),
                           ("b", 0): ReadResult(ErrorCode.none, 11, 11, 0),
                           ("a", 2): ReadResult(ErrorCode.not_leader_or_follower, -1, -1, -1)})
    assert names(got) == [("a", 1), ("a", 2), ("b", 0)]
    # a-1 returned data: it moved to the back of the session (fairness under max_bytes)
    context = incremental(cache, sid, 3)
    assert [(n, p.partition) for n, _, ps in context.topics for p in ps] == [("a", 0), ("a", 2), ("b", 0), ("a", 1)]
    # the error cleared: a-2 is sent again (its cached HW was reset), the others are quiet at their new HW
    got = answer(context, {("b", 0): ReadResult(ErrorCode.none, 11, 11, 0), ("a", 1): ReadResult(ErrorCode.none, 12, 12, 0)})
    assert names(got) == [("a", 2)]
    # a changed log start or last stable offset is news too
    context = incremental(cache, sid, 4)
    got = answer(context, {("a", 0): ReadResult(ErrorCode.none, 10, 10, 5), ("b", 0): ReadResult(ErrorCode.none, 11, 9, 0),
                           ("a", 1): ReadResult(ErrorCode.none, 12, 12, 0)})
    assert names(got) == [("a", 0), ("b", 0)]


def test_incremental_request_updates_offsets_and_forgets_partitions() -> None:
    cache = FetchSessionCache(10)
    sid, _ = open_session(cache, {"a": [0, 1]})
    context = incremental(cache, sid, 1, {"a": [1], "c": [3]}, forgotten=[("a", 0)], offset=7)
    read = {(n, p.partition): p.fetch_offset for n, _, ps in context.topics for p in ps}
    assert read == {("a", 1): 7, ("c", 3): 7}
    assert cache.num_partitions == 2
    # forgetting the rest closes the session: the answer is sessionless
    context = incremental(cache, sid, 2, forgotten=[("a", 1), ("c", 3)])
    assert context.error == ErrorCode.none and context.topics == [] and answer(context) == []
    assert context.session_id == INVALID_SESSION_ID and cache.get(sid) is None and cache.num_partitions == 0


@pytest.mark.parametrize(("sid_delta", "epoch", "ids", "error"), [
    (1, 1, False, ErrorCode.fetch_session_id_not_found),
    (0, 2, False, ErrorCode.invalid_fetch_session_epoch),
    (0, 1, True, ErrorCode.fetch_session_topic_id_error),
])
def test_session_errors(sid_delta: int, epoch: int, ids: bool, error: ErrorCode) -> None:
    cache = FetchSessionCache(10)
    sid, _ = open_session(cache, {"a": [0]})
    context = new_context(cache, sid + sid_delta, epoch, privileged=False, uses_topic_ids=ids, requested=[],
                          forgotten=[], now_ms=1)
    assert context.error == error and context.topics == []
    assert cache.get(sid) is not None and cache.get(sid).epoch == 1  # the session itself is untouched


def test_full_fetch_with_a_session_id_closes_it() -> None:
    cache = FetchSessionCache(10)
    sid, _ = open_session(cache, {"a": [0]})
    context = new_context(cache, sid, FINAL_EPOCH, privileged=False, uses_topic_ids=False,
                          requested=topics({"a": [0]}), forgotten=[], now_ms=1)
    assert names(answer(context)) == [("a", 0)] and context.session_id == INVALID_SESSION_ID and len(cache) == 0
    sid, _ = open_session(cache, {"a": [0]})
    context = new_context(cache, sid, INITIAL_EPOCH, privileged=False, uses_topic_ids=False,
                          requested=topics({"b": [0]}), forgotten=[], now_ms=1)
    answer(context)
    assert cache.get(sid) is None and len(cache) == 1 and context.session_id not in (sid, INVALID_SESSION_ID)


def test_topic_id_sessions_key_partitions_by_id() -> None:
    cache = FetchSessionCache(10)
    tid = uuid.uuid4()
    context = new_context(cache, 0, INITIAL_EPOCH, privileged=False, uses_topic_ids=True,
                          requested=[(None, tid, [FetchPartition(0, 0, 100)])], forgotten=[], now_ms=0)
    context.respond([(None, tid, [(0, ReadResult(ErrorCode.unknown_topic_id, answer_now=True))])])
    sid = context.session_id
    context = new_context(cache, sid, 1, privileged=False, uses_topic_ids=True, requested=[], forgotten=[], now_ms=1)
    assert context.topics == [(None, tid, [context.session.partitions[(tid.int, 0)].fetch])]  # type: ignore[union-attr]
    got = context.respond([(None, tid, [(0, ReadResult(ErrorCode.unknown_topic_id, answer_now=True))])])
    assert got and got[0][2][0][1].error == ErrorCode.unknown_topic_id  # an error is always answered
    same = uuid.UUID(bytes=tid.bytes)  # an equal id decoded from the next request: the same session partition
    context = new_context(cache, sid, 2, privileged=False, uses_topic_ids=True,
                          requested=[(None, same, [FetchPartition(0, 5, 100)])], forgotten=[], now_ms=2)
    assert context.topics == [(None, tid, [FetchPartition(0, 5, 100)])] and cache.num_partitions == 1
    context = new_context(cache, sid, 3, privileged=False, uses_topic_ids=True, requested=[],
                          forgotten=[(same, 0)], now_ms=2)
    assert context.session_id == INVALID_SESSION_ID and len(cache) == 0


def _fill(cache: FetchSessionCache, n: int, now: int, size: int = 1, privileged: bool = False) -> list[int]:
    return [cache.maybe_create(now, privileged, _parts(size), False) for _ in range(n)]


def _parts(size: int) -> dict[tuple[str, int], CachedPartition]:
    return {("t", i): CachedPartition("t", None, FetchPartition(i, 0, 1)) for i in range(size)}


def test_a_full_cache_refuses_young_sessions_of_equal_worth() -> None:
    cache = FetchSessionCache(2)
    first, second = _fill(cache, 2, now=0, size=3)
    assert cache.maybe_create(10, False, _parts(3), False) == INVALID_SESSION_ID
    assert cache.maybe_create(10, False, _parts(100), False) == INVALID_SESSION_ID  # young: not evictable by size
    assert set(cache.sessions) == {first, second} and cache.evictions == 0


def test_stale_sessions_go_first() -> None:
    cache = FetchSessionCache(2)
    first, second = _fill(cache, 2, now=0, size=5, privileged=True)
    cache.touch(cache.sessions[second], EVICTION_MS)
    new = cache.maybe_create(EVICTION_MS + 1, False, _parts(1), False)
    assert new != INVALID_SESSION_ID and first not in cache.sessions and cache.evictions == 1
    assert cache.num_partitions == 6


def test_followers_evict_consumers_and_not_the_other_way_round() -> None:
    cache = FetchSessionCache(2)
    small, big = _fill(cache, 1, now=0, size=1)[0], _fill(cache, 1, now=0, size=50)[0]
    follower = cache.maybe_create(5, True, _parts(1), False)
    assert follower != INVALID_SESSION_ID and small not in cache.sessions and big in cache.sessions  # the least worth
    assert cache.maybe_create(6, False, _parts(1000), False) == INVALID_SESSION_ID  # a consumer cannot
    follower2 = cache.maybe_create(7, True, _parts(1), False)
    assert follower2 != INVALID_SESSION_ID and big not in cache.sessions
    assert cache.maybe_create(8, True, _parts(1000), False) == INVALID_SESSION_ID  # young followers stay
    assert cache.evictions == 2


def test_old_sessions_are_evicted_by_bigger_ones() -> None:
    cache = FetchSessionCache(2)
    a, b = _fill(cache, 2, now=0, size=10)
    for sid in (a, b):  # both used recently, both older than EVICTION_MS
        cache.touch(cache.sessions[sid], EVICTION_MS + 1)
    assert cache.maybe_create(EVICTION_MS + 2, False, _parts(5), False) == INVALID_SESSION_ID  # smaller: worth less
    bigger = cache.maybe_create(EVICTION_MS + 2, False, _parts(20), False)
    assert bigger != INVALID_SESSION_ID and len(cache) == 2 and cache.evictions == 1


def test_no_slots_no_sessions() -> None:
    cache = FetchSessionCache(0)
    sid, _ = open_session(cache, {"a": [0]})
    assert sid == INVALID_SESSION_ID and len(cache) == 0


@pytest.mark.parametrize("seed", range(20))
def test_random_walk_keeps_the_books(seed: int) -> None:
    """Creating, using and closing sessions in random order: never more than max_entries, the
    partition count is the sum of the sessions' sizes, and a young follower session is only
    ever evicted as stale."""
    rng = random.Random(seed)
    cache = FetchSessionCache(rng.randint(1, 6), eviction_ms=100, rng=random.Random(seed))
    now = 0
    for _ in range(300):
        now += rng.randint(0, 40)
        op = rng.random()
        before = dict(cache.sessions)
        if op < 0.5:
            privileged = rng.random() < 0.3
            sid = cache.maybe_create(now, privileged, _parts(rng.randint(0, 8)), False)
            gone = set(before) - set(cache.sessions)
            assert len(gone) <= 1 and (sid != INVALID_SESSION_ID or not gone)
            for victim in (before[g] for g in gone):
                stale = now - victim.last_used_ms > 100
                old = victim.last_used_ms - victim.creation_ms > 100
                assert stale or old or (privileged and not victim.privileged)
        elif op < 0.8 and cache.sessions:
            session = cache.sessions[rng.choice(sorted(cache.sessions))]
            context = new_context(cache, session.id, session.epoch, privileged=session.privileged, uses_topic_ids=False,
                                  requested=topics({"t": [rng.randint(0, 10)]}),
                                  forgotten=[("t", rng.randint(0, 10))], now_ms=now)
            assert context.error == ErrorCode.none
        elif cache.sessions:
            cache.remove(rng.choice(sorted(cache.sessions)))
        assert len(cache) <= cache.max_entries
        assert cache.num_partitions == sum(len(s.partitions) for s in cache.sessions.values())


def test_incremental_fetch_moves_positions_in_place_and_accounts_membership_changes() -> None:
    """A partition named again takes the new fetch position in its cached entry (the same object);
    only added or forgotten partitions change the cache's partition count; the use time moves
    either way; a session emptied by forgotten partitions is closed (answered sessionless)."""
    cache = FetchSessionCache(10)
    sid, epoch = open_session(cache, {"a": [0, 1]})
    session = cache.get(sid)
    assert session is not None and cache.num_partitions == 2
    entry = session.partitions[("a", 0)]
    context = incremental(cache, sid, epoch, {"a": [0]}, now=50, offset=7)
    assert session.partitions[("a", 0)] is entry and entry.fetch.fetch_offset == 7
    assert [(p.partition, p.fetch_offset) for _, _, ps in context.topics for p in ps] == [(0, 7), (1, 0)]
    assert cache.num_partitions == 2 and session.last_used_ms == 50 and session.epoch == 2
    incremental(cache, sid, 2, {"b": [0]}, now=60)
    assert cache.num_partitions == 3 and session.cached_size == 3 and session.last_used_ms == 60
    incremental(cache, sid, 3, forgotten=[("a", 1), ("zz", 9)], now=70)
    assert cache.num_partitions == 2 and list(session.partitions) == [("a", 0), ("b", 0)]
    context = incremental(cache, sid, 4, forgotten=[("a", 0), ("b", 0)], now=80)
    assert context.session is None and context.topics == [] and cache.get(sid) is None and cache.num_partitions == 0
