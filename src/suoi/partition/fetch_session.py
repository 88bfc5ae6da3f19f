"""KIP-227 incremental fetch sessions: Kafka's FetchSession, FetchSessionCache and FetchManager.

A fetcher with many partitions would otherwise name every one of them in every Fetch and get
every one back (high watermark, log start, ...) even when nothing moved. With a session the
broker remembers the partitions and their fetch positions: the client sends only what changed
(new fetch offsets, added partitions, `forgotten_topics_data`) and the broker answers only the
partitions that have something to say (records, a moved high watermark, last stable offset or
log start, an error, a preferred read replica, a diverging epoch).

Sans-IO: no asyncio, sockets or clock; `now_ms` is passed in and randomness (session ids) is
injected, so the cache is tested with seeds. `api/fetch.py` drives it around
`PartitionDirectory.fetch_messages`.

Request metadata (session_id, session_epoch), as KIP-227 defines it:
  (0, -1)   sessionless full fetch (also every Fetch before v7): no session, answer all
  (0, 0)    full fetch that asks for a new session (the answer carries its id, or 0 if the cache
            declined)
  (id, 0)   close session `id`, then as (0, 0)
  (id, -1)  close session `id`, sessionless full fetch
  (id, n>0) incremental fetch in session `id`; n must be the session's next epoch

Cache rules (Kafka's FetchSessionCache, `max.incremental.fetch.session.cache.slots` entries):
a new session takes a free slot; in a full cache it evicts, in this order, a *stale* session
(unused for EVICTION_MS), else the least valuable *evictable* session if the newcomer is worth
more. Worth is (privileged, partition count, id): follower sessions (privileged) beat consumer
ones, bigger beats smaller. A session is evictable by anyone once it has lived EVICTION_MS; a
consumer session is evictable by a follower at any time. Kafka 3.6+ shards the cache by
session id across its request handler threads; suoi's node runs on one loop, so one shard.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from suoi.model import ErrorCode

if TYPE_CHECKING:
    from suoi.partition.fetch import FetchTopic, PartitionFetch, TopicReads
    from suoi.partition.partition import ReadResult

INVALID_SESSION_ID = 0
INITIAL_EPOCH = 0
FINAL_EPOCH = -1
#: Kafka's MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS (a constant there too)
EVICTION_MS = 120_000
_MAX_EPOCH = 2**31 - 1

#: a session partition: (topic name, or in a v13+ session the topic id's int; partition index).
#: The int, not the UUID: every partition of every incremental fetch is looked up by this key,
#: and a UUID hashes and compares in Python (`__hash__`, `__eq__`) where an int does in C.
PartitionKey = tuple[Any, int]


def next_epoch(epoch: int) -> int:
    """The epoch after `epoch` (wraps to 1, never back to INITIAL_EPOCH)."""
    if epoch < 0:
        return FINAL_EPOCH
    return 1 if epoch == _MAX_EPOCH else epoch + 1


class CachedPartition:
    """One session partition: the fetch parameters the client last sent (`fetch`, read again at
    every incremental fetch) and what the client was last told, to answer only changes."""

    __slots__ = ("fetch", "high_watermark", "last_stable_offset", "log_start_offset", "topic", "topic_id")

    def __init__(self, topic: str | None, topic_id: uuid.UUID | None, fetch: PartitionFetch) -> None:
        self.topic = topic
        self.topic_id = topic_id
        self.fetch = fetch
        self.high_watermark = -1
        self.last_stable_offset = -1
        self.log_start_offset = -1

    def must_respond(self, r: ReadResult) -> bool:
        """Does the client need this partition in the answer? Records the values it is told.
        An error sets the cached HW to -1 so the partition is sent again once the error clears."""
        respond = bool(r.records) or r.preferred_read_replica >= 0 or r.diverging_epoch is not None
        if r.high_watermark != self.high_watermark:
            self.high_watermark = r.high_watermark
            respond = True
        if r.last_stable_offset != self.last_stable_offset:
            self.last_stable_offset = r.last_stable_offset
            respond = True
        if r.log_start_offset != self.log_start_offset:
            self.log_start_offset = r.log_start_offset
            respond = True
        if r.error:
            self.high_watermark = -1
            respond = True
        return respond


@dataclass(eq=False)
class FetchSession:
    id: int
    privileged: bool  # a follower's session (replica id >= 0)
    uses_topic_ids: bool  # created by a Fetch v13+ (topics named by id)
    creation_ms: int
    last_used_ms: int
    epoch: int  # the epoch the next incremental request must carry
    #: in fetch order; a partition that returned records moves to the end (fairness under max_bytes)
    partitions: dict[PartitionKey, CachedPartition] = field(default_factory=dict)
    cached_size: int = -1  # partition count at the last touch (what the cache accounts)

    def update(self, requested: list[FetchTopic], forgotten: Iterable[PartitionKey]) -> bool:
        """Apply an incremental request: new or changed partitions, then forgotten ones; True if
        the session's partitions changed (some added or removed), not only their fetch positions.
        A partition already in the session takes the request's entity in place: no new
        `CachedPartition` (a follower names its partitions again at every fetch that moved)."""
        parts = self.partitions
        by_id = self.uses_topic_ids
        changed = False
        for name, topic_id, fetches in requested:
            key_topic = topic_id.int if by_id and topic_id is not None else name
            for p in fetches:
                key = (key_topic, p.partition)
                cached = parts.get(key)
                if cached is None:
                    parts[key] = CachedPartition(name, topic_id, p)
                    changed = True
                else:
                    cached.fetch = p
                    if name is not None:
                        cached.topic = name
        for key in forgotten:
            if parts.pop(key, None) is not None:
                changed = True
        return changed

    def eviction_key(self) -> tuple[bool, int, int]:
        return (self.privileged, self.cached_size, self.id)


class FetchSessionCache:
    """Sessions by id, bounded by `max_entries` (module doc for the eviction rules)."""

    def __init__(self, max_entries: int, eviction_ms: int = EVICTION_MS, rng: random.Random | None = None) -> None:
        self.max_entries = max_entries
        self.eviction_ms = eviction_ms
        self._rng = rng or random.Random()
        self.sessions: dict[int, FetchSession] = {}
        #: sum of the sessions' partition counts (Kafka's NumIncrementalFetchPartitionsCached)
        self.num_partitions = 0
        #: sessions evicted to make room (Kafka's IncrementalFetchSessionEvictionsPerSec count)
        self.evictions = 0

    def __len__(self) -> int:
        return len(self.sessions)

    def get(self, session_id: int) -> FetchSession | None:
        return self.sessions.get(session_id)

    def maybe_create(self, now_ms: int, privileged: bool, partitions: dict[PartitionKey, CachedPartition],
                     uses_topic_ids: bool) -> int:
        """A new session holding `partitions`: its id, or INVALID_SESSION_ID if there is no room."""
        if self.max_entries <= 0:
            return INVALID_SESSION_ID
        if len(self.sessions) >= self.max_entries and not self._try_evict(privileged, len(partitions), now_ms):
            return INVALID_SESSION_ID
        session_id = self._new_id()
        session = FetchSession(session_id, privileged, uses_topic_ids, now_ms, now_ms, next_epoch(INITIAL_EPOCH),
                               partitions)
        self.sessions[session_id] = session
        self.touch(session, now_ms)
        return session_id

    def touch(self, session: FetchSession, now_ms: int) -> None:
        """The session was used at `now_ms` (after any change to its partitions)."""
        session.last_used_ms = now_ms
        if session.cached_size >= 0:
            self.num_partitions -= session.cached_size
        session.cached_size = len(session.partitions)
        self.num_partitions += session.cached_size

    def remove(self, session_id: int) -> FetchSession | None:
        session = self.sessions.pop(session_id, None)
        if session is not None and session.cached_size >= 0:
            self.num_partitions -= session.cached_size
        return session

    def _new_id(self) -> int:
        while True:
            candidate = self._rng.randint(1, _MAX_EPOCH)
            if candidate not in self.sessions:
                return candidate

    def _try_evict(self, privileged: bool, size: int, now_ms: int) -> bool:
        """Kafka's tryEvict: the stalest session if unused for eviction_ms, else the least valuable
        evictable one if it is worth less than the newcomer (a full scan: it runs only when the
        cache is full, at most max_entries sessions)."""
        stalest = min(self.sessions.values(), key=lambda s: (s.last_used_ms, s.id))
        if now_ms - stalest.last_used_ms > self.eviction_ms:
            return self._evict(stalest)
        # evictability is decided as of the last touch, as Kafka's evictable maps are
        candidates = [s for s in self.sessions.values()
                      if s.last_used_ms - s.creation_ms > self.eviction_ms or (privileged and not s.privileged)]
        if not candidates:
            return False
        victim = min(candidates, key=FetchSession.eviction_key)
        if (privileged, size, 0) < victim.eviction_key():
            return False
        return self._evict(victim)

    def _evict(self, session: FetchSession) -> bool:
        self.remove(session.id)
        self.evictions += 1
        return True


# -- one request's context (Kafka's FetchManager.newContext and the FetchContext classes) -------
@dataclass(eq=False)
class FetchContext:
    """What one Fetch reads and how its answer is cut. `error`: a session error, answered at the
    top level with no partitions and session id 0. Otherwise read `topics`, then `respond`."""

    cache: FetchSessionCache | None
    error: ErrorCode = ErrorCode.none
    topics: list[FetchTopic] = field(default_factory=list)
    session: FetchSession | None = None  # incremental
    create: dict[PartitionKey, CachedPartition] | None = None  # full fetch asking for a session
    privileged: bool = False
    uses_topic_ids: bool = False
    session_id: int = INVALID_SESSION_ID
    now_ms: int = 0  # the request's arrival (a session created by its answer is that old)

    def respond(self, reads: TopicReads) -> TopicReads:
        """The answer's partitions (all of them, or an incremental session's changes); sets
        `session_id` to what the response must carry."""
        if self.session is not None:
            return self._incremental(reads)
        if self.create is not None and self.cache is not None:
            created = self.create
            for name, topic_id, results in reads:
                key_topic = topic_id.int if self.uses_topic_ids and topic_id is not None else name
                for index, r in results:
                    cached = created.get((key_topic, index))
                    if cached is not None:
                        cached.must_respond(r)
            self.session_id = self.cache.maybe_create(self.now_ms, self.privileged, created, self.uses_topic_ids)
        return reads

    def _incremental(self, reads: TopicReads) -> TopicReads:
        session = self.session
        assert session is not None
        parts = session.partitions
        out: TopicReads = []
        moved: list[PartitionKey] = []
        for name, topic_id, results in reads:
            key_topic = topic_id.int if session.uses_topic_ids and topic_id is not None else name
            kept = []
            for index, r in results:
                key = (key_topic, index)
                cached = parts.get(key)
                if cached is not None and not r.records and not r.error and r.preferred_read_replica < 0 and (
                        r.high_watermark == cached.high_watermark and r.diverging_epoch is None
                        and r.last_stable_offset == cached.last_stable_offset
                        and r.log_start_offset == cached.log_start_offset):
                    continue  # what `must_respond` would say, without a call: most partitions of most polls
                if cached is None or cached.must_respond(r):
                    kept.append((index, r))
                    if r.records:
                        moved.append(key)
            if kept:
                out.append((name, topic_id, kept))
        for key in moved:  # Kafka: a partition that returned data goes to the back of the queue
            cached = parts.pop(key, None)
            if cached is not None:
                parts[key] = cached
        self.session_id = session.id
        return out


def session_topics(session: FetchSession) -> list[FetchTopic]:
    """The session's partitions as `fetch_messages` reads them: runs of one topic, in session order."""
    topics: list[FetchTopic] = []
    last: Any = object()
    current: list[PartitionFetch] = []
    for (key_topic, _), cached in session.partitions.items():
        if key_topic != last:
            last = key_topic
            current = []
            topics.append((cached.topic, cached.topic_id, current))
        current.append(cached.fetch)
    return topics


def new_context(cache: FetchSessionCache | None, session_id: int, epoch: int, *, privileged: bool,
                uses_topic_ids: bool, requested: list[FetchTopic], forgotten: list[PartitionKey],
                now_ms: int) -> FetchContext:
    """Kafka's FetchManager.newContext for one request (module doc for the metadata cases).
    `requested` names topics by name (v < 13) or by id (v13+, name None); `forgotten` uses the
    same topic (by id or by name). A node without a cache answers every fetch sessionless."""
    if cache is None:
        return FetchContext(None, topics=requested)
    if epoch in (INITIAL_EPOCH, FINAL_EPOCH):  # a full fetch
        if session_id != INVALID_SESSION_ID:
            cache.remove(session_id)
        context = FetchContext(cache, topics=requested, now_ms=now_ms)
        if epoch == INITIAL_EPOCH:
            context.create = dict(_entries(requested, uses_topic_ids))
            context.privileged = privileged
            context.uses_topic_ids = uses_topic_ids
        return context
    session = cache.get(session_id)
    if session is None:
        return FetchContext(cache, ErrorCode.fetch_session_id_not_found)
    if session.epoch != epoch:
        return FetchContext(cache, ErrorCode.invalid_fetch_session_epoch)
    if session.uses_topic_ids != uses_topic_ids:
        return FetchContext(cache, ErrorCode.fetch_session_topic_id_error)
    changed = session.update(requested, _forgotten_keys(forgotten, uses_topic_ids))
    if not session.partitions:  # Kafka closes an emptied session and answers sessionless
        cache.remove(session.id)
        return FetchContext(cache)
    if changed:
        cache.touch(session, now_ms)
    else:  # the same partitions: only the use time moves (what `touch` would do)
        session.last_used_ms = now_ms
    session.epoch = next_epoch(session.epoch)
    return FetchContext(cache, topics=session_topics(session), session=session, now_ms=now_ms)


def _entries(requested: list[FetchTopic], uses_topic_ids: bool) -> Iterable[tuple[PartitionKey, CachedPartition]]:
    for name, topic_id, parts in requested:
        key_topic = topic_id.int if uses_topic_ids and topic_id is not None else name
        for p in parts:
            yield (key_topic, p.partition), CachedPartition(name, topic_id, p)



def _forgotten_keys(forgotten: list[tuple[Any, int]], uses_topic_ids: bool) -> list[PartitionKey]:
    """A request's forgotten partitions as session keys (a topic id by its int)."""
    if not uses_topic_ids or not forgotten:
        return forgotten
    return [(t.int if isinstance(t, uuid.UUID) else t, index) for t, index in forgotten]
