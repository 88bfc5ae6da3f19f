"""JoinGroup (11), SyncGroup (14), Heartbeat (12), LeaveGroup (13): the classic group
protocol. Requests become plain inputs of the sans-IO group machine; JoinGroup and
SyncGroup answers may arrive much later (when the rebalance completes).

A member's client host is what Kafka records and DescribeGroups answers: Java's
InetAddress.toString of the client's address, "/127.0.0.1" (`inet_text`)."""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Any

from suoi.api.registry import RequestContext, api
from suoi.coordinator.group import types as g
from suoi.model import ErrorCode
from suoi.protocol.codec import ms


def inet_text(peer: str) -> str:
    """Java's InetAddress.toString of a connection's "host:port": "/" and the address, an IPv6
    one written out in full without leading zeros ("/0:0:0:0:0:0:0:1"), as Kafka's clients see it."""
    host = peer.rsplit(":", 1)[0] if ":" in peer else peer
    try:
        address = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return host  # not an address (a test's connection without a peer): as is
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # Java hands these out as Inet4Address
            return f"/{address.ipv4_mapped}"
        return "/" + ":".join(f"{int(group, 16):x}" for group in address.exploded.split(":"))
    return f"/{address}"


def _fields(result: Any) -> dict[str, Any]:
    return {f.name: getattr(result, f.name) for f in dataclasses.fields(result)}


@api(11, "JoinGroup", 0, 9)
def handle_join_group(ctx: RequestContext, request: Any) -> Any:
    coordinator = ctx.services.groups
    error = coordinator.check_group_id(request.group_id)
    if error != ErrorCode.none:
        return {"throttle_time": 0, "error_code": error, "generation_id": -1, "protocol_name": None,
                "leader": "", "member_id": request.member_id, "members": []}
    instance_id = getattr(request, "group_instance_id", None)
    join = g.JoinGroupRequest(
        token=None, group_id=request.group_id, member_id=request.member_id, group_instance_id=instance_id,
        protocol_type=request.protocol_type,
        protocols=tuple(g.Protocol(p.name, bytes(p.metadata)) for p in request.protocols),
        session_timeout_ms=ms(request.session_timeout),
        rebalance_timeout_ms=ms(request.rebalance_timeout) if hasattr(request, "rebalance_timeout") else -1,
        client_id=ctx.client_id or "", client_host=inet_text(ctx.client_host),
        require_known_member_id=ctx.api_version >= 4 and instance_id is None,
        supports_skip_assignment=ctx.api_version >= 9, reason=getattr(request, "reason", None),
    )
    return _join(coordinator, join)


async def _join(coordinator: Any, join: g.JoinGroupRequest) -> dict[str, Any]:
    result: g.JoinGroupResult = await coordinator.join(join)
    data = _fields(result)
    data["members"] = [{"member_id": m.member_id, "group_instance_id": m.group_instance_id, "metadata": m.metadata}
                       for m in result.members]
    return {"throttle_time": 0, **data}


@api(14, "SyncGroup", 0, 5)
def handle_sync_group(ctx: RequestContext, request: Any) -> Any:
    coordinator = ctx.services.groups
    error = coordinator.check_group_id(request.group_id)
    if error != ErrorCode.none:
        return {"throttle_time": 0, "error_code": error, "assignment": b""}
    sync = g.SyncGroupRequest(
        token=None, group_id=request.group_id, generation_id=request.generation_id, member_id=request.member_id,
        group_instance_id=getattr(request, "group_instance_id", None),
        protocol_type=getattr(request, "protocol_type", None), protocol_name=getattr(request, "protocol_name", None),
        assignments=tuple(g.SyncAssignment(a.member_id, bytes(a.assignment)) for a in request.assignments),
    )
    return _sync(coordinator, sync)


async def _sync(coordinator: Any, sync: g.SyncGroupRequest) -> dict[str, Any]:
    result: g.SyncGroupResult = await coordinator.sync(sync)
    return {"throttle_time": 0, **_fields(result)}


@api(12, "Heartbeat", 0, 4)
def handle_heartbeat(ctx: RequestContext, request: Any) -> Any:
    coordinator = ctx.services.groups
    error = coordinator.check_group_id(request.group_id)
    if error != ErrorCode.none:
        return {"throttle_time": 0, "error_code": error}
    beat = g.HeartbeatRequest(token=None, group_id=request.group_id, generation_id=request.generation_id,
                              member_id=request.member_id,
                              group_instance_id=getattr(request, "group_instance_id", None))
    return _heartbeat(coordinator, beat)


async def _heartbeat(coordinator: Any, beat: g.HeartbeatRequest) -> dict[str, Any]:
    result: g.HeartbeatResult = await coordinator.heartbeat(beat)
    return {"throttle_time": 0, "error_code": result.error_code}


@api(13, "LeaveGroup", 0, 5)
def handle_leave_group(ctx: RequestContext, request: Any) -> Any:
    coordinator = ctx.services.groups
    error = coordinator.check_group_id(request.group_id)
    if error != ErrorCode.none:
        return {"throttle_time": 0, "error_code": error, "members": []}
    if ctx.api_version >= 3:
        members = tuple(g.LeaveMember(member_id=m.member_id, group_instance_id=m.group_instance_id,
                                      reason=getattr(m, "reason", None)) for m in request.members)
    else:
        members = (g.LeaveMember(member_id=request.member_id),)
    return _leave(coordinator, g.LeaveGroupRequest(token=None, group_id=request.group_id, members=members),
                  ctx.api_version)


async def _leave(coordinator: Any, leave: g.LeaveGroupRequest, version: int) -> dict[str, Any]:
    result: g.LeaveGroupResult = await coordinator.leave(leave)
    if version < 3:
        return {"throttle_time": 0, "error_code": result.single_error(), "members": []}
    return {"throttle_time": 0, "error_code": result.error_code,
            "members": [{"member_id": m.member_id, "group_instance_id": m.group_instance_id,
                         "error_code": m.error_code} for m in result.members]}
