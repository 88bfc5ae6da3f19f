"""ElectLeaders (key 43, KIP-183/KIP-460): preferred or unclean leader elections.

Decided by the active controller (`QuorumController.elect_leaders`): other nodes forward
the request. v0 has no election type (preferred). A null
``topic_partitions`` means every partition; then only partitions an election was tried for are
listed (as in Kafka), so an already balanced cluster answers with no results.
"""

from __future__ import annotations

from typing import Any

from suoi.api.controller_ops import controller_call
from suoi.api.registry import RequestContext, api
from suoi.controller.messages import ElectionResult, ElectionType
from suoi.model import ErrorCode


@api(43, "ElectLeaders", 0, 2)
def handle_elect_leaders(ctx: RequestContext, request: Any) -> Any:
    partitions = _requested(request)
    raw_type = int(getattr(request, "election_type", ElectionType.PREFERRED))
    if raw_type not in (ElectionType.PREFERRED, ElectionType.UNCLEAN):
        return _failed(partitions, ErrorCode.invalid_request, f"Unknown election type {raw_type}.")
    election = ElectionType(raw_type)
    return controller_call(ctx.services, request, lambda c: c.elect_leaders(election, partitions), _response,
                           lambda code, message: _failed(partitions, code, message))


def _requested(request: Any) -> list[tuple[str, int]] | None:
    if request.topic_partitions is None:
        return None
    wanted = [(str(tp.topic), int(p)) for tp in request.topic_partitions for p in tp.partitions]
    return list(dict.fromkeys(wanted))  # Kafka takes a set


def _response(results: list[ElectionResult]) -> dict[str, Any]:
    return _results([(r.topic, r.partition, int(r.error), r.message) for r in results])


def _results(results: list[tuple[str, int, int, str | None]], code: int = 0) -> dict[str, Any]:
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for topic, partition, error, message in results:
        by_topic.setdefault(topic, []).append({"partition_id": partition, "error_code": error, "error_message": message})
    return {"throttle_time": 0, "error_code": code, "replica_election_results": [
        {"topic": topic, "partition_result": parts} for topic, parts in by_topic.items()]}


def _failed(partitions: list[tuple[str, int]] | None, code: ErrorCode, message: str) -> dict[str, Any]:
    """Kafka's error response: the top-level code (v1+) and the same for every asked partition (v0)."""
    return _results([(t, p, int(code), message) for t, p in partitions or []], int(code))
