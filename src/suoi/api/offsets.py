"""OffsetCommit (8), OffsetFetch (9), OffsetDelete (47): committed consumer positions,
stored as records in __consumer_offsets by the group coordinator."""

from __future__ import annotations

from typing import Any

from suoi.api.registry import RequestContext, api
from suoi.model import ErrorCode
from suoi.protocol.codec import ms


@api(8, "OffsetCommit", 2, 9)
async def handle_offset_commit(ctx: RequestContext, request: Any) -> dict[str, Any]:
    coordinator = ctx.services.groups
    wanted = [(t.name, p.partition_index, p.committed_offset, getattr(p, "committed_leader_epoch", -1),
               p.committed_metadata) for t in request.topics for p in t.partitions]
    _, errors = await coordinator.commit_offsets(
        request.group_id, request.generation_id_or_member_epoch, request.member_id,
        getattr(request, "group_instance_id", None), wanted,
        retention_ms=ms(getattr(request, "retention_time", None)) if ctx.api_version <= 4 else -1)
    it = iter(errors)
    return {"throttle_time": 0, "topics": [
        {"name": t.name, "partitions": [{"partition_index": p.partition_index, "error_code": next(it)}
                                        for p in t.partitions]} for t in request.topics]}


def _fetch_group(ctx: RequestContext, group_id: str, topics: Any, require_stable: bool) -> dict[str, Any]:
    """One group's committed offsets; with `require_stable` (v7+), a partition whose offsets an
    open transaction holds answers UNSTABLE_OFFSET_COMMIT (the client retries), as Kafka."""
    coordinator = ctx.services.groups
    wanted = None if topics is None else [(t.name, p) for t in topics for p in t.partition_indexes]
    error, found = coordinator.fetch_offsets(group_id, wanted)
    by_topic: dict[str, list[dict[str, Any]]] = {}
    if error == ErrorCode.none:
        unstable = coordinator.unstable_offsets(group_id) if require_stable else set()
        items = list(found.items() if wanted is None else ((tp, found.get(tp)) for tp in wanted))
        if wanted is None:  # every partition of the group: those only a transaction holds too
            items += [(tp, None) for tp in sorted(unstable) if tp not in found]
        for (topic, partition), oam in items:
            if (topic, partition) in unstable:
                oam = None
            by_topic.setdefault(topic, []).append({
                "partition_index": partition,
                "committed_offset": oam.offset if oam else -1,
                "committed_leader_epoch": oam.leader_epoch if oam else -1,
                "metadata": (oam.metadata if oam and oam.metadata is not None else ""),
                "error_code": ErrorCode.unstable_offset_commit if (topic, partition) in unstable else ErrorCode.none,
            })
    elif wanted is not None:
        for topic, partition in wanted:
            by_topic.setdefault(topic, []).append({"partition_index": partition, "committed_offset": -1,
                                                   "committed_leader_epoch": -1, "metadata": "",
                                                   "error_code": error})
    return {"group_id": group_id, "error_code": error,
            "topics": [{"name": name, "partitions": parts} for name, parts in sorted(by_topic.items())]}


@api(9, "OffsetFetch", 1, 9)
def handle_offset_fetch(ctx: RequestContext, request: Any) -> dict[str, Any]:
    require_stable = bool(getattr(request, "require_stable", False))
    if ctx.api_version >= 8:
        return {"throttle_time": 0, "groups": [_fetch_group(ctx, grp.group_id, grp.topics, require_stable)
                                               for grp in request.groups]}
    one = _fetch_group(ctx, request.group_id, request.topics, require_stable)
    return {"throttle_time": 0, "error_code": one["error_code"], "topics": one["topics"]}


@api(47, "OffsetDelete", 0, 0)
async def handle_offset_delete(ctx: RequestContext, request: Any) -> dict[str, Any]:
    wanted = [(t.name, p.partition_index) for t in request.topics for p in t.partitions]
    error, errors = await ctx.services.groups.delete_offsets(request.group_id, wanted)
    if error != ErrorCode.none:
        return {"error_code": error, "throttle_time": 0, "topics": []}
    it = iter(errors)
    return {"error_code": ErrorCode.none, "throttle_time": 0, "topics": [
        {"name": t.name, "partitions": [{"partition_index": p.partition_index, "error_code": next(it)}
                                        for p in t.partitions]} for t in request.topics]}
