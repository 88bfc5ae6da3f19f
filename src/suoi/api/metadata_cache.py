"""Each topic's encoded Metadata answer, kept until the topic or the live brokers change.

Clients send Metadata all the time (librdkafka every `topic.metadata.refresh.interval.ms` and
on every leader change, admin tools before each call), and with 1,000 partitions building and
encoding one topic's answer with kio costs ~25 ms of the event loop. The answer for a topic
depends only on its `TopicImage` (replaced by the image builder whenever a partition of it
changes, shared between images otherwise), on which brokers are live (a partition's leader is
reported only when live), on the request's version and on its authorized operations. Entries
are keyed by those and checked against the `TopicImage` they were made from, so a stale one is
never served; `protocol.splice` puts them in the answer.
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Callable
from typing import Any

METADATA_KEY = 3

_Key = tuple[uuid.UUID, int, frozenset[int], int]


class TopicEncodings:
    """One node's cache: (topic id, api version, live broker ids, authorized ops) ->
    (the TopicImage encoded, its bytes). Bounded: entries of deleted topics go when it grows
    past twice the topics it was last trimmed to."""

    def __init__(self) -> None:
        self._entries: dict[_Key, tuple[Any, bytes]] = {}
        self._limit = 256

    def encoded(self, topic: Any, version: int, live: frozenset[int], authorized_operations: int,
                render: Callable[[], bytes], existing: Callable[[uuid.UUID], bool]) -> bytes:
        """`topic`'s encoding at `version`; `render` encodes it on a miss, `existing` says
        whether a topic id still exists (for trimming)."""
        key = (topic.topic_id, version, live, authorized_operations)
        hit = self._entries.get(key)
        if hit is not None and hit[0] is topic:
            return hit[1]
        data = render()
        if len(self._entries) >= self._limit:
            self._trim(existing)
        self._entries[key] = (topic, data)
        return data

    def _trim(self, existing: Callable[[uuid.UUID], bool]) -> None:
        self._entries = {k: v for k, v in self._entries.items() if existing(k[0])}
        if len(self._entries) >= self._limit:  # all of existing topics (versions, live sets): oldest half
            self._entries = dict(list(self._entries.items())[len(self._entries) // 2:])
        self._limit = max(256, 2 * len(self._entries))

    def __len__(self) -> int:
        return len(self._entries)


_CACHES: weakref.WeakKeyDictionary[Any, TopicEncodings] = weakref.WeakKeyDictionary()


def topic_encodings(owner: Any) -> TopicEncodings:
    """The cache of one node (`owner`: its KRaft services; several nodes may share a process)."""
    cache = _CACHES.get(owner)
    if cache is None:
        cache = _CACHES[owner] = TopicEncodings()
    return cache
