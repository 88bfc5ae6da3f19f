"""Fetch from a follower (replica id >= 0, Fetch v12+): the leader's half of replication.

Moved out of `fetch.py`'s handler: at RF=3 every acks=all message costs its leader two
follower fetches, each read twice (on arrival, caught up, then parked; again when the append
wakes it), so this path runs more often than any consumer's. It keeps every check, where it
was: CLUSTER_ACTION (a follower without it gets every partition refused) and quotas are
dispatch's, before this handler; leader epochs (KIP-320), diverging epochs (KIP-595), offsets
out of range, the follower's position, ISR and high watermark are `Partition.read`'s
(`_read_for_follower`); the long-poll is `fetch_messages`' (`ParkedFetch`); KIP-227 sessions are
`fetch_session`'s (a follower's session is privileged). What it drops is what a follower never
uses: the consumer's optional fields (a rack for KIP-392 redirection, which only consumers
get), the copy of each partition a Fetch older than v12 needs (those stay in `fetch.py`), and
the `getattr`s for fields a v12+ request always has.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from suoi.api.topics import partitions_of
from suoi.model import ErrorCode
from suoi.partition.fetch import FetchParams, FetchTopic, TopicReads, fetch_messages
from suoi.partition.fetch_session import FetchContext, new_context
from suoi.protocol.codec import ms

if TYPE_CHECKING:
    from suoi.api.registry import RequestContext
    from suoi.pending import Pending

READ_COMMITTED = 1
#: the first Fetch version whose partitions carry every field the read takes (no copy), and the
#: first to name topics by id
FIRST_VERSION = 12
_BY_ID = 13


def handle_replica_fetch(ctx: RequestContext, request: Any, replica_id: int) -> dict[str, Any] | Pending[Any]:
    """A follower's Fetch v12+ (`fetch.handle_fetch` sends it here once it is not the metadata quorum's)."""
    by_id = ctx.api_version >= _BY_ID
    params = FetchParams(request.max_bytes, request.min_bytes, ms(request.max_wait), replica_id,
                         request.isolation_level == READ_COMMITTED, "", True)
    topics: list[FetchTopic]
    if by_id:  # kio's partitions carry every field the read takes, under the same names: no copy
        topics = [(None, t.topic_id, t.partitions) for t in request.topics]
    else:
        topics = [(t.topic, None, t.partitions) for t in request.topics]
    directory = partitions_of(ctx.services)
    cache = directory.fetch_sessions
    session_id, epoch = request.session_id, request.session_epoch
    context: FetchContext | None = None
    if cache is not None and (session_id != 0 or epoch != -1):
        forgotten = [(f.topic_id if by_id else f.topic, int(p)) for f in request.forgotten_topics_data
                     for p in f.partitions]
        context = new_context(cache, session_id, epoch, privileged=True, uses_topic_ids=by_id, requested=topics,
                              forgotten=forgotten, now_ms=ctx.services.now_ms())
        if context.error:
            return {"throttle_time": 0, "error_code": context.error, "session_id": 0, "responses": []}
        topics = context.topics
    answer = _Answer(ctx, context, params.read_committed)
    reads = fetch_messages(directory, params, topics)
    return answer(reads) if isinstance(reads, list) else reads.then(answer)


class _Answer:
    """The answer to one follower fetch, from its reads: the session's cut (only partitions
    with something new), then the response dict. One object, called once, now or when the
    parked fetch is answered (no closure per request)."""

    __slots__ = ("ctx", "context", "read_committed")

    def __init__(self, ctx: RequestContext, context: FetchContext | None, read_committed: bool) -> None:
        self.ctx, self.context, self.read_committed = ctx, context, read_committed

    def __call__(self, reads: TopicReads) -> dict[str, Any]:
        context = self.context
        session_id = 0
        if context is not None:
            reads = context.respond(reads)
            session_id = context.session_id
        no_aborted: list[Any] | None = [] if self.read_committed else None  # (a follower's read has none)
        responses = [{"topic": name, "topic_id": topic_id, "partitions": [
            {"partition_index": index, "error_code": r.error, "high_watermark": r.high_watermark,
             "last_stable_offset": r.last_stable_offset, "log_start_offset": r.log_start_offset,
             "aborted_transactions": no_aborted, "preferred_read_replica": -1, "records": r.records}
            if r.diverging_epoch is None else _diverging(index, r, no_aborted) for index, r in results]}
            for name, topic_id, results in reads]
        self.ctx.services.metrics.fetched(responses, True)  # replication bytes out, failed fetches
        return {"throttle_time": 0, "error_code": ErrorCode.none, "session_id": session_id, "responses": responses}


def _diverging(index: int, r: Any, no_aborted: list[Any] | None) -> dict[str, Any]:
    """A partition the follower must truncate (KIP-595): no records, the epoch and end offset to go back to."""
    return {"partition_index": index, "error_code": r.error, "high_watermark": r.high_watermark,
            "last_stable_offset": r.last_stable_offset, "log_start_offset": r.log_start_offset,
            "aborted_transactions": no_aborted, "preferred_read_replica": -1, "records": r.records,
            "diverging_epoch": r.diverging_epoch}
