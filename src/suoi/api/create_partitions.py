"""CreatePartitions (key 37): grow a topic's partition count (never shrink it).

validate_only checks everything and changes nothing. Manual assignments must name this
node only (one replica each), one per new partition. A request adding more than
MAX_PARTITIONS_PER_REQUEST partitions is refused whole with POLICY_VIOLATION (Kafka's
controller limit, see `suoi.controller.topics`).
"""

from __future__ import annotations

import logging
from typing import Any

from suoi.api.cluster_metadata import create_partitions_response
from suoi.api.registry import RequestContext, api
from suoi.cluster.pacing import open_missing_logs
from suoi.controller.topics import EXCESSIVE_BATCH_MESSAGE, MAX_PARTITIONS_PER_REQUEST
from suoi.log.errors import LogError
from suoi.model import ErrorCode

log = logging.getLogger("suoi.api")


def _result(name: str, error: ErrorCode = ErrorCode.none, message: str | None = None) -> dict[str, Any]:
    if error != ErrorCode.none:
        log.warning("CreatePartitions %r refused (%s): %s", name, error.name, message)
    return {"name": name, "error_code": error, "error_message": message}


@api(37, "CreatePartitions", 0, 3)
def handle_create_partitions(ctx: RequestContext, request: Any) -> Any:
    if ctx.services.kraft is not None:
        return create_partitions_response(ctx.services, request)
    return _create_standalone(ctx.services, request)


async def _create_standalone(broker: Any, request: Any) -> dict[str, Any]:
    """A standalone node grows the topics itself, new logs a slice at a time (`open_missing_logs`)."""
    names = [t.name for t in request.topics]
    existing = broker.logs.topics()
    added = sum(max(t.count - existing[t.name].partitions, 0) for t in request.topics if t.name in existing)
    if added > MAX_PARTITIONS_PER_REQUEST:
        return {"throttle_time": 0, "results": [_result(t.name, ErrorCode.policy_violation, EXCESSIVE_BATCH_MESSAGE)
                                                for t in request.topics]}
    results = []
    for t in request.topics:
        name, count = t.name, t.count
        if names.count(name) > 1:
            results.append(_result(name, ErrorCode.invalid_request, "Duplicate topic in request."))
            continue
        info = broker.logs.topics().get(name)
        if info is None:
            results.append(_result(name, ErrorCode.unknown_topic_or_partition, f"Topic '{name}' does not exist."))
            continue
        if count == info.partitions:
            results.append(_result(name, ErrorCode.invalid_partitions, f"Topic already has {count} partitions."))
            continue
        if count < info.partitions:
            results.append(_result(name, ErrorCode.invalid_partitions,
                                   f"Topic currently has {info.partitions} partitions, which is higher than "
                                   f"the requested {count}."))
            continue
        if t.assignments is not None:
            if len(t.assignments) != count - info.partitions:
                results.append(_result(name, ErrorCode.invalid_replica_assignment,
                                       f"Increasing the number of partitions by {count - info.partitions} but "
                                       f"{len(t.assignments)} assignments provided."))
                continue
            if any(list(a.broker_ids) != [broker.node_id] for a in t.assignments):
                results.append(_result(name, ErrorCode.invalid_replica_assignment,
                                       f"Assignments must name broker {broker.node_id} only (a one-node cluster)."))
                continue
        if request.validate_only:
            results.append(_result(name))
            continue
        try:
            broker.logs.create_partitions(name, count, open_logs=False)
            await open_missing_logs(broker.logs, name)
        except LogError as exc:
            results.append(_result(name, ErrorCode(exc.error_code), str(exc)))
            continue
        log.info("topic %s now has %d partitions (was %d)", name, count, info.partitions)
        results.append(_result(name))
    return {"throttle_time": 0, "results": results}
