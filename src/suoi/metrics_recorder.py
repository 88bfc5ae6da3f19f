"""The hot-path half of the node's metrics: plain ints in plain objects, no I/O, no locks.

The broker owns one `MetricsRecorder` and request handlers bump it as they go (`produced`,
`fetched`, `request_done`). Nothing here calls prometheus-client: turning the counts into
families happens at scrape time (`suoi.http.admin.collector`), so a Produce pays a dict
lookup and a few integer additions, not a labelled-metric lookup behind a lock. The node
runs on one event loop thread, so plain `+=` is safe.

Counts are cumulative since the node started, as Kafka's JMX meters' `Count` attribute is.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from time import perf_counter
from typing import Any

from suoi.model import ErrorCode

#: Upper bounds (ms) of the request-time histograms' buckets; the last bucket is +Inf.
LATENCY_BUCKETS_MS: tuple[float, ...] = (0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)

#: Fetch partition errors Kafka does not count as failed fetches (ReplicaManager.readFromLog:
#: the client just refreshes its metadata and retries elsewhere).
_EXPECTED_FETCH_ERRORS = frozenset(int(code) for code in (
    ErrorCode.none, ErrorCode.not_leader_or_follower, ErrorCode.replica_not_available, ErrorCode.kafka_storage_error,
    ErrorCode.unknown_topic_or_partition, ErrorCode.fenced_leader_epoch, ErrorCode.unknown_leader_epoch,
    ErrorCode.inconsistent_topic_id, ErrorCode.unknown_topic_id))


class TopicCounters:
    """Kafka's BrokerTopicMetrics for one topic (the all-topics series is their sum)."""

    __slots__ = ("bytes_in", "bytes_out", "failed_fetch", "failed_produce", "fetch_requests", "messages_in",
                 "produce_requests", "replication_bytes_out")

    def __init__(self) -> None:
        self.messages_in = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.replication_bytes_out = 0
        self.produce_requests = 0
        self.fetch_requests = 0
        self.failed_produce = 0
        self.failed_fetch = 0


class RequestTimes:
    """Kafka's RequestMetrics for one API: a count, a histogram of total time, and the sum of the
    remote time (the wait after the handler returned: acks=all replication, a long-poll Fetch, a
    quorum commit, Kafka's RemoteTimeMs); local time (LocalTimeMs) is total minus remote. One
    histogram, not three, keeps the per-request cost to one bisect."""

    __slots__ = ("count", "errors", "remote_sum", "total", "total_sum")

    def __init__(self) -> None:
        self.count = 0
        self.errors = 0
        self.total = [0] * (len(LATENCY_BUCKETS_MS) + 1)
        self.total_sum = 0.0
        self.remote_sum = 0.0


class MetricsRecorder:
    """Counters the request path increments; read (never reset) by the collector at scrape time."""

    def __init__(self) -> None:
        #: topic name (or topic id, for a Fetch v13+ that named none) -> counters
        self.topics: dict[Any, TopicCounters] = {}
        #: counts of topics gone from this node (folded in at scrape time), for the all-topics sums
        self.retired = TopicCounters()
        #: API name (Kafka's: Produce, Fetch, ...) -> request times
        self.requests: dict[str, RequestTimes] = {}
        self.isr_shrinks = 0
        self.isr_expands = 0
        #: KRaft: leaders this node saw elected, and the active controller's commit waits (count, sum s, max s)
        self.raft_leader_changes = 0
        self.raft_commits = 0
        self.raft_commit_seconds = 0.0
        self.raft_commit_max_seconds = 0.0
        #: the node's KIP-227 session cache (`suoi.partition.fetch_session.FetchSessionCache`), read at scrape time
        self.fetch_sessions: Any = None

    def _topic(self, topic: Any) -> TopicCounters:
        counters = self.topics.get(topic)
        if counters is None:
            counters = self.topics[topic] = TopicCounters()
        return counters

    # -- produce / fetch (per partition or per response) ---------------------------
    def produced(self, topic: str, messages: int, nbytes: int) -> None:
        """A leader appended `messages` records (`nbytes` of batches) for a producer."""
        counters = self.topics.get(topic) or self._topic(topic)
        counters.messages_in += messages
        counters.bytes_in += nbytes
        counters.produce_requests += 1

    def appended(self, topic: str, results: Iterable[tuple[int, int, int]]) -> None:
        """One Produce's partitions of `topic`: (error code, records appended, bytes) each."""
        for error, messages, nbytes in results:
            if error:
                self.produce_failed(topic)
            else:
                self.produced(topic, messages, nbytes)

    def produce_failed(self, topic: str) -> None:
        counters = self.topics.get(topic) or self._topic(topic)
        counters.produce_requests += 1
        counters.failed_produce += 1

    def fetched_topic(self, topic: Any, partitions: int, nbytes: int, failed: int) -> None:
        """A consumer Fetch answer's partitions of `topic` (its name, or its id): `partitions`
        answered, `nbytes` of records in them, `failed` with an unexpected error (`fetch_failed`)."""
        counters = self.topics.get(topic) or self._topic(topic)
        counters.fetch_requests += partitions
        counters.bytes_out += nbytes
        counters.failed_fetch += failed

    @staticmethod
    def fetch_failed(error_code: int) -> bool:
        """An error a consumer Fetch's partition counts as a failed fetch (not an expected one
        such as a leadership change, as in Kafka's FailedFetchRequestsPerSec)."""
        return error_code not in _EXPECTED_FETCH_ERRORS

    def fetched(self, responses: Iterable[Mapping[str, Any]], replica: bool) -> None:
        """A Fetch answer (the response dicts `api.fetch` builds): bytes out per topic, failures.
        A follower's fetch counts as replication bytes out, as in Kafka."""
        for topic in responses:
            key = topic["topic"] or topic["topic_id"]
            counters = self.topics.get(key) or self._topic(key)
            for part in topic["partitions"]:
                counters.fetch_requests += 1
                if replica:
                    counters.replication_bytes_out += len(part["records"])
                else:
                    counters.bytes_out += len(part["records"])
                if part["error_code"] not in _EXPECTED_FETCH_ERRORS:
                    counters.failed_fetch += 1

    # -- every request ---------------------------------------------------------------
    def request_done(self, api: str, started: float, handled: float | None = None, failed: bool = False) -> None:
        """One request answered: `started` when dispatch began, `handled` when the handler
        returned an awaitable (None: it answered at once), both `time.perf_counter()`; now is
        when the answer was ready."""
        now = perf_counter()
        times = self.requests.get(api)
        if times is None:
            times = self.requests[api] = RequestTimes()
        total_ms = (now - started) * 1000.0
        times.count += 1
        times.total[bisect_left(LATENCY_BUCKETS_MS, total_ms)] += 1
        times.total_sum += total_ms
        if handled is not None:
            times.remote_sum += (now - handled) * 1000.0
        if failed:
            times.errors += 1

    def isr_changed(self, before: frozenset[int], after: frozenset[int]) -> None:
        """The ISR of a partition led here changed (its AlterPartition answered, or the controller
        rewrote it, e.g. fencing a follower): Kafka's IsrShrinksPerSec / IsrExpandsPerSec."""
        if before - after:
            self.isr_shrinks += 1
        if after - before:
            self.isr_expands += 1

    def raft_committed(self, seconds: float) -> None:
        """The active controller's metadata records committed `seconds` after it appended them."""
        self.raft_commits += 1
        self.raft_commit_seconds += seconds
        self.raft_commit_max_seconds = max(self.raft_commit_max_seconds, seconds)
