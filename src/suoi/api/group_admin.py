"""DescribeGroups (15), ListGroups (16), DeleteGroups (42): what admin clients and
`suoi consumer-groups` use to see and remove groups."""

from __future__ import annotations

from typing import Any

from suoi.api.authorized_operations import unchecked
from suoi.api.registry import RequestContext, api
from suoi.authorizer import ResourceType
from suoi.model import ErrorCode


@api(15, "DescribeGroups", 0, 5)
def handle_describe_groups(ctx: RequestContext, request: Any) -> dict[str, Any]:
    coordinator = ctx.services.groups
    groups = []
    operations = unchecked(getattr(request, "include_authorized_operations", False), ResourceType.GROUP)
    for group_id in request.groups:
        error = coordinator.check_group_id(group_id)
        if error != ErrorCode.none:
            groups.append({"error_code": error, "group_id": group_id, "group_state": "", "protocol_type": "",
                           "protocol_data": "", "members": [], "authorized_operations": operations})
            continue
        d = coordinator.machine.describe(group_id)
        groups.append({
            "error_code": d.error_code, "group_id": group_id, "group_state": d.state,
            "protocol_type": d.protocol_type, "protocol_data": d.protocol_data,
            "members": [{"member_id": m.member_id, "group_instance_id": m.group_instance_id,
                         "client_id": m.client_id, "client_host": m.client_host,
                         "member_metadata": m.metadata, "member_assignment": m.assignment} for m in d.members],
            "authorized_operations": operations,
        })
    return {"throttle_time": 0, "groups": groups}


@api(16, "ListGroups", 0, 5)
def handle_list_groups(ctx: RequestContext, request: Any) -> dict[str, Any]:
    coordinator = ctx.services.groups
    if coordinator.loading:
        return {"throttle_time": 0, "error_code": ErrorCode.coordinator_load_in_progress, "groups": []}
    states = {s.lower() for s in getattr(request, "states_filter", ())}
    types = {t.lower() for t in getattr(request, "types_filter", ())}
    if types and "classic" not in types:
        # every group here is a classic one (no KIP-848 ConsumerGroupHeartbeat), offset-only
        # groups included: a filter without "classic" matches none, as Kafka's by group type
        return {"throttle_time": 0, "error_code": ErrorCode.none, "groups": []}
    listed = coordinator.machine.list_groups()
    known = {g.group_id for g in listed}
    # Groups that only have committed offsets (simple consumers) are listed as Empty, as in Kafka.
    extra = [(group_id, "", "Empty") for group_id in coordinator.offsets if group_id not in known]
    rows = [(g.group_id, g.protocol_type, g.state) for g in listed] + extra
    return {"throttle_time": 0, "error_code": ErrorCode.none, "groups": [
        {"group_id": gid, "protocol_type": ptype, "group_state": state, "group_type": "classic"}
        for gid, ptype, state in sorted(rows) if not states or state.lower() in states]}


@api(42, "DeleteGroups", 0, 2)
async def handle_delete_groups(ctx: RequestContext, request: Any) -> dict[str, Any]:
    ids = list(request.groups_names)
    errors = await ctx.services.groups.delete_groups(ids)
    return {"throttle_time": 0, "results": [{"group_id": gid, "error_code": e} for gid, e in zip(ids, errors, strict=True)]}
