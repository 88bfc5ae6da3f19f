"""AlterPartitionReassignments (key 45) and ListPartitionReassignments (key 46), KIP-455.

Decided by the active controller (`QuorumController.alter_partition_reassignments` /
`list_partition_reassignments`, see controller/reassignments.py): other nodes forward the
request. The brokers named by a
reassignment create, fill and drop their replicas by following the metadata image.
"""

from __future__ import annotations

from typing import Any

from suoi.api.controller_ops import controller_call
from suoi.api.registry import RequestContext, api
from suoi.controller.messages import OngoingReassignment, ReassignmentResult
from suoi.model import ErrorCode


@api(45, "AlterPartitionReassignments", 0, 0)
def handle_alter_partition_reassignments(ctx: RequestContext, request: Any) -> Any:
    wanted = [(str(t.name), int(p.partition_index), None if p.replicas is None else [int(b) for b in p.replicas])
              for t in request.topics for p in t.partitions]

    def response(results: list[tuple[str, int, int, str | None]], code: int = 0,
                 message: str | None = None) -> dict[str, Any]:
        responses: list[dict[str, Any]] = []
        for topic, partition, error, text in results:  # request order: a topic's run of partitions is one entry
            if not responses or responses[-1]["name"] != topic:
                responses.append({"name": topic, "partitions": []})
            responses[-1]["partitions"].append(
                {"partition_index": partition, "error_code": error, "error_message": text})
        return {"throttle_time": 0, "error_code": code, "error_message": message, "responses": responses}

    def render(results: list[ReassignmentResult]) -> dict[str, Any]:
        return response([(r.topic, r.partition, int(r.error), r.message) for r in results])

    def failed(code: ErrorCode, message: str) -> dict[str, Any]:
        return response([(t, p, int(code), message) for t, p, _ in wanted], int(code), message)

    return controller_call(ctx.services, request, lambda c: c.alter_partition_reassignments(wanted), render, failed)


@api(46, "ListPartitionReassignments", 0, 0)
def handle_list_partition_reassignments(ctx: RequestContext, request: Any) -> Any:
    wanted = (None if request.topics is None
              else [(str(t.name), int(p)) for t in request.topics for p in t.partition_indexes])

    def render(ongoing: list[OngoingReassignment]) -> dict[str, Any]:
        topics: list[dict[str, Any]] = []
        for r in ongoing:  # sorted by topic, partition
            if not topics or topics[-1]["name"] != r.topic:
                topics.append({"name": r.topic, "partitions": []})
            topics[-1]["partitions"].append({
                "partition_index": r.partition, "replicas": list(r.replicas),
                "adding_replicas": list(r.adding_replicas), "removing_replicas": list(r.removing_replicas)})
        return {"throttle_time": 0, "error_code": ErrorCode.none, "error_message": None, "topics": topics}

    def failed(code: ErrorCode, message: str) -> dict[str, Any]:
        return {"throttle_time": 0, "error_code": code, "error_message": message, "topics": []}

    return controller_call(ctx.services, request, lambda c: c.list_partition_reassignments(wanted), render, failed)
