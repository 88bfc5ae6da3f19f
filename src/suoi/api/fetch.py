"""Fetch (key 1): decode, read through the partition layer (with long-poll), encode.

Everything about what a partition answers - leader-epoch checks, follower fetches that move
the ISR and high watermark, KIP-392 redirection and reads from a follower, read_committed
(LSO and aborted transactions), waiting for min_bytes - is `suoi.partition`'s
(`Partition.read`, `fetch.fetch_messages`). Bytes go from the segment file to the socket
without being decoded.

A follower's Fetch (replica id >= 0, v12+) has its own handler, `replica_fetch.py`.

Fetch sessions (KIP-227): `suoi.partition.fetch_session` decides from the request's session
id and epoch what to read (the request's partitions, or an incremental session's) and which
partitions the answer carries; a session error is answered at the top level, no partitions.

A fetch that must wait comes back from the partition layer as a `ParkedFetch`: the answer is
built by a step added to it (`Pending.then`), run when it is woken or times out; no coroutine.

A sessionless Fetch names every assigned partition each time (librdkafka, kafka-python), most of
them caught up: their partitions are resolved as for the last Fetch naming the same set
(`partition.fetch_resolve`), and a caught-up partition's read is the partition's reused empty
`ReadResult`, whose answer entry is kept encoded (`compiled_writer.Encoded`, per version's entry
writer) from its second answer on: the same bytes the dict would be written as.
"""

from __future__ import annotations

import sys
from functools import partial
from typing import Any

from suoi.api import raft_apis, replica_fetch
from suoi.api.registry import RequestContext, api
from suoi.api.topics import partitions_of
from suoi.model import ErrorCode
from suoi.partition.fetch import FetchParams, FetchPartition, FetchTopic, TopicReads, fetch_messages
from suoi.partition.fetch_session import FetchContext, new_context
from suoi.protocol.codec import GatherBuffer, ms, response_class
from suoi.protocol.compiled_dict_writer import dict_writer
from suoi.protocol.compiled_writer import Encoded

READ_COMMITTED = 1
API_KEY = 1


@api(1, "Fetch", 4, 18)
def handle_fetch(ctx: RequestContext, request: Any) -> Any:
    # KRaft replicates the metadata log with plain Fetch on __cluster_metadata-0 (by name, or
    # by topic id from v13). That partition is the Raft quorum's, not a LogManager log: hand
    # the request to the quorum driver (api/raft_apis.py), which long-polls on its own.
    if raft_apis.is_metadata_fetch(request):
        return raft_apis.handle_metadata_fetch(ctx, request)
    version = ctx.api_version
    state = getattr(request, "replica_state", None)  # v15+: the follower's id moved here
    replica_id = int(state.replica_id if state is not None else getattr(request, "replica_id", -1))
    if replica_id >= 0 and version >= replica_fetch.FIRST_VERSION:  # a follower: the leader's side of replication
        return replica_fetch.handle_replica_fetch(ctx, request, replica_id)
    # (positional: a dataclass's keyword arguments cost more than the fields' order does)
    params = FetchParams(
        request.max_bytes, request.min_bytes, ms(request.max_wait),
        replica_id, getattr(request, "isolation_level", 0) == READ_COMMITTED, str(getattr(request, "rack_id", "") or ""),
        version >= 11)
    topics: list[FetchTopic]
    if version >= 12:  # kio's partitions carry every field the read takes, under the same names: no copy
        topics = [(getattr(t, "topic", None), getattr(t, "topic_id", None), t.partitions) for t in request.topics]
    else:
        topics = [(t.topic, None, [
            FetchPartition(p.partition, p.fetch_offset, p.partition_max_bytes, getattr(p, "current_leader_epoch", -1),
                           -1, getattr(p, "log_start_offset", -1))
            for p in t.partitions]) for t in request.topics]
    directory = ctx.services.kraft.replicas or partitions_of(ctx.services)  # (a call only on a controller-only node)
    session_id = getattr(request, "session_id", 0)
    epoch = getattr(request, "session_epoch", -1)
    if (session_id == 0 and epoch == -1) or directory.fetch_sessions is None:
        # sessionless (librdkafka, aiokafka, kafkajs, Fetch < v7): no session work at all, and the
        # partitions it names (every assigned one, each time) resolved as for its last Fetch
        reads = fetch_messages(directory, params, topics, remember=True)
        if isinstance(reads, list):
            return _response(ctx, reads, params, 0)
        return reads.then(partial(_response, ctx, params=params, session_id=0))  # no lambda frame per answer
    session = _session(directory, request, topics, params, session_id, epoch, version >= 13)
    if session.error:
        return {"throttle_time": 0, "error_code": session.error, "session_id": 0, "responses": []}
    reads = fetch_messages(directory, params, session.topics)
    if isinstance(reads, list):
        return _response(ctx, session.respond(reads), params, session.session_id)
    return reads.then(lambda done: _response(ctx, session.respond(done), params, session.session_id))


def _session(directory: Any, request: Any, topics: list[FetchTopic], params: FetchParams, session_id: int,
             epoch: int, uses_ids: bool) -> FetchContext:
    """The request's fetch session context (Kafka's FetchManager.newContext)."""
    forgotten = [(f.topic_id if uses_ids else f.topic, int(p))
                 for f in request.forgotten_topics_data for p in f.partitions]
    return new_context(directory.fetch_sessions, session_id, epoch, privileged=params.replica_id >= 0,
                       uses_topic_ids=uses_ids, requested=topics, forgotten=forgotten, now_ms=directory.now_ms())


def _response(ctx: RequestContext, reads: TopicReads, params: FetchParams, session_id: int) -> dict[str, Any]:
    read_committed = params.read_committed
    no_aborted: list[Any] | None = [] if read_committed else None
    metrics = ctx.services.metrics
    replica = params.replica_id >= 0  # (a follower's Fetch older than v12: replication bytes out, as before)
    version = ctx.api_version
    writer = None if replica else _ENTRY_WRITERS.get(version) or _entry_writer(version)
    responses = []
    for name, topic_id, results in reads:
        partitions: list[Any] = []
        nbytes = failed = 0
        for index, r in results:
            answer = r.answer
            if answer is not None and answer.__class__ is tuple and answer[0] is writer:
                partitions.append(answer[1])  # a caught-up partition answered as before
                continue
            part: dict[str, Any] = {"partition_index": index, "error_code": r.error, "high_watermark": r.high_watermark,
                    "last_stable_offset": r.last_stable_offset, "log_start_offset": r.log_start_offset,
                    "aborted_transactions": r.aborted if r.aborted is not None else no_aborted,
                    "preferred_read_replica": r.preferred_read_replica, "records": r.records}
            if r.diverging_epoch is not None:
                part["diverging_epoch"] = r.diverging_epoch
            if r.reused and writer is not None:  # no records, no error: its bytes serve every read until it changes
                if answer is writer:  # its second answer: kept from then on (a result answered once costs nothing more)
                    pieces = GatherBuffer()
                    writer(pieces, part)
                    encoded = Encoded(b"".join(pieces))
                    r.answer = (writer, encoded)
                    partitions.append(encoded)
                    continue
                r.answer = writer
            partitions.append(part)
            if r.records:
                nbytes += len(r.records)
            if r.error and metrics.fetch_failed(r.error):
                failed += 1
        responses.append({"topic": name, "topic_id": topic_id, "partitions": partitions})
        if not replica:
            metrics.fetched_topic(name or topic_id, len(partitions), nbytes, failed)
    if replica:
        metrics.fetched(responses, True)
    return {"throttle_time": 0, "error_code": ErrorCode.none, "session_id": session_id,
            "responses": responses}


#: the dict writer of a partition's answer (kio's `PartitionData`) per Fetch version
_ENTRY_WRITERS: dict[int, Any] = {}


def _entry_writer(version: int) -> Any:
    """(kio defines a version's nested entities in its response class's module.)"""
    module = sys.modules[response_class(API_KEY, version).__module__]
    writer = _ENTRY_WRITERS[version] = dict_writer(module.PartitionData)
    return writer
