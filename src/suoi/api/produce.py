"""Produce (key 0): decode, append each partition's batches through the partition layer, encode.

The records are never decoded: `Partition.append_records` checks batch headers and CRC32C and
appends the bytes as received, stamped with the leader epoch. acks=0 sends no response at all;
acks=1 answers after the leader's append; acks=-1 answers once every ISR member has the batch,
or NOT_ENOUGH_REPLICAS / REQUEST_TIMED_OUT (`suoi.partition.append`). A single node is the
whole ISR. v0-v2 are advertised but rejected (see `legacy_produce`). A client's records for an
internal topic (__consumer_offsets, __transaction_state) are INVALID_TOPIC_EXCEPTION, as in Kafka:
the coordinators append there themselves.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from suoi.api.registry import RequestContext, api
from suoi.api.topic_names import INTERNAL_TOPICS, log_refusal_once
from suoi.api.topics import partitions_of, resolve_or_create
from suoi.model import ErrorCode
from suoi.partition.append import DelayedProduce, Failures
from suoi.protocol.codec import ms

#: Kafka lets a Produce whose client.id is this append to its internal topics (KafkaApis).
ADMIN_CLIENT_ID = "__admin_client"


@api(0, "Produce", 3, 13, advertised_min=0)
def handle_produce(ctx: RequestContext, request: Any) -> Any:
    """One pass: each partition's append result goes straight into its answer dict (and the
    node's counters); acks=-1 partitions the ISR does not have yet join one `DelayedProduce`."""
    acks = request.acks
    services = ctx.services
    partitions = services.kraft.replicas or partitions_of(services)  # (a call only on a controller-only node)
    metrics = services.metrics
    origin = ctx.client_host
    delayed: DelayedProduce | None = None
    responses = []
    for topic in request.topic_data:
        name, topic_id = getattr(topic, "name", None), getattr(topic, "topic_id", None)
        if acks in (-1, 0, 1):
            info, error = resolve_or_create(services, name, topic_id, allow_create=True)
            if info is not None and info.name in INTERNAL_TOPICS and ctx.client_id != ADMIN_CLIENT_ID:
                # Kafka's appendRecords: only the coordinators (and "__admin_client") write there
                log_refusal_once(info.name, "Cannot append to internal topic (a client's Produce)")
                info, error = None, ErrorCode.invalid_topic_exception
        else:
            info, error = None, ErrorCode.invalid_required_acks
        if info is None:
            error = error or ErrorCode.unknown_topic_or_partition
            answers = [{"index": p.index, "error_code": error, "base_offset": -1, "log_append_time": -1,
                        "log_start_offset": -1, "record_errors": [], "error_message": None}
                       for p in topic.partition_data]
        else:
            topic_name = info.name
            answers = []
            for p in topic.partition_data:
                records = p.records
                r = partitions.append_records(topic_name, p.index, records, acks, origin)
                if r.error:  # messages/bytes in and failed produces per topic (suoi.metrics_recorder)
                    metrics.produce_failed(topic_name)
                else:
                    metrics.produced(topic_name, r.record_count, len(records))
                if not acks:
                    continue  # no answer is sent: none is built
                answer = {"index": p.index, "error_code": r.error, "base_offset": r.base_offset,
                          "log_append_time": r.log_append_time_ms, "log_start_offset": r.log_start_offset,
                          "record_errors": [], "error_message": r.message}
                if r.partition is not None:  # acks=-1, not on the ISR yet
                    if delayed is None:
                        delayed = DelayedProduce()
                    delayed.add(r.partition, r.required_offset, answer)
                answers.append(answer)
        responses.append({"name": name, "topic_id": topic_id, "partition_responses": answers})
    if acks == 0:
        return None
    response = {"throttle_time": 0, "responses": responses}
    if delayed is None:
        return response
    _clear_partition_records(request)
    return delayed.start(ms(request.timeout) / 1000).then(partial(_with_failures, response))


def _clear_partition_records(request: Any) -> None:
    """Drop the request's records once they are in the log, before the acks=-1 wait (Kafka's
    `produceRequest.clearPartitionRecords()` in handleProduceRequest). The request stays
    referenced until it is answered (dispatch encodes the answer, or an error answer, from it),
    and under load dozens of acks=-1 Produces per partition wait for the followers at once:
    their 256 KiB record blobs, kept, made every new request's copy land in cold memory
    (the leader's CPU per MB at RF=3: benchmarks/README.md, "Replication CPU by role, sixth
    session"). No answer reads them: Produce's answers mirror topics and partitions, never records. kio's
    entities are frozen dataclasses; this decoded request is the handler's own."""
    clear = object.__setattr__
    for topic in request.topic_data:
        for p in topic.partition_data:
            clear(p, "records", None)


def _with_failures(response: dict[str, Any], failed: Failures) -> dict[str, Any]:
    """The acks=-1 partitions whose wait failed answer its error, with no offsets (as Kafka's
    DelayedProduce: the batch is in the leader's log, but the client must not count on it)."""
    for answer, error in failed:
        answer["error_code"] = error
        answer["base_offset"] = answer["log_append_time"] = answer["log_start_offset"] = -1
    return response
