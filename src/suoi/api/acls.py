"""DescribeAcls (29), CreateAcls (30), DeleteAcls (31).

Bindings live in the metadata log (`AccessControlEntry` records, see `suoi.controller.acls`):
CreateAcls and DeleteAcls are decided by the active controller (forwarded when this node is not
it) and answered once committed; DescribeAcls is answered from this node's image, as Kafka's
brokers answer it from their authorizer. Without an authorizer every request is answered
SECURITY_DISABLED ("No Authorizer is configured."), as Kafka does. Authorization of the
requests themselves (ALTER / DESCRIBE on the cluster) is `suoi.api.authorization`'s.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from suoi.api.controller_ops import controller_call
from suoi.api.registry import RequestContext, api
from suoi.authorizer.acl import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    PatternType,
    ResourceType,
)
from suoi.model import ErrorCode

NO_AUTHORIZER = "No Authorizer is configured."


def _enum(cls: Any, value: int) -> Any:
    try:
        return cls(int(value))
    except ValueError:
        return cls(0)  # UNKNOWN: refused by validation with Kafka's message


def _filter(f: Any) -> AclBindingFilter:
    return AclBindingFilter(
        _enum(ResourceType, f.resource_type_filter), f.resource_name_filter,
        _enum(PatternType, getattr(f, "pattern_type_filter", PatternType.LITERAL)),
        f.principal_filter, f.host_filter, _enum(AclOperation, f.operation),
        _enum(AclPermissionType, f.permission_type))


def _binding_fields(b: AclBinding) -> dict[str, Any]:
    return {"resource_type": int(b.resource_type), "resource_name": b.resource_name,
            "pattern_type": int(b.pattern_type), "principal": b.principal, "host": b.host,
            "operation": int(b.operation), "permission_type": int(b.permission)}


def describe_resources(bindings: Iterable[AclBinding]) -> list[dict[str, Any]]:
    """DescribeAcls' resources: bindings grouped by resource pattern, in a stable order."""
    grouped: dict[tuple[int, str, int], list[AclBinding]] = defaultdict(list)
    for b in bindings:
        grouped[(int(b.resource_type), b.resource_name, int(b.pattern_type))].append(b)
    return [{"resource_type": rt, "resource_name": name, "pattern_type": pt,
             "acls": [{"principal": b.principal, "host": b.host, "operation": int(b.operation),
                       "permission_type": int(b.permission)}
                      for b in sorted(acls, key=lambda b: (b.principal, b.host, b.operation, b.permission))]}
            for (rt, name, pt), acls in sorted(grouped.items())]


@api(29, "DescribeAcls", 1, 3)
def handle_describe_acls(ctx: RequestContext, request: Any) -> dict[str, Any]:
    def answer(code: int, message: str | None, resources: list[dict[str, Any]]) -> dict[str, Any]:
        return {"throttle_time": 0, "error_code": code, "error_message": message, "resources": resources}

    kraft = ctx.services.kraft
    if ctx.services.authorizer is None:
        return answer(ErrorCode.security_disabled, NO_AUTHORIZER, [])
    f = _filter(request)
    problem = f.indefinite()
    if problem is not None:
        return answer(ErrorCode.invalid_request, problem, [])
    return answer(ErrorCode.none, None, describe_resources(b for b in kraft.image.acls.values() if f.matches(b)))


@api(30, "CreateAcls", 1, 3)
def handle_create_acls(ctx: RequestContext, request: Any) -> Any:
    creations = list(request.creations)

    def failed(code: int, message: str | None) -> dict[str, Any]:
        return {"throttle_time": 0, "results": [{"error_code": code, "error_message": message} for _ in creations]}

    if ctx.services.authorizer is None:
        return failed(ErrorCode.security_disabled, NO_AUTHORIZER)
    bindings = [AclBinding(_enum(ResourceType, c.resource_type), c.resource_name,
                           _enum(PatternType, getattr(c, "resource_pattern_type", PatternType.LITERAL)),
                           c.principal, c.host, _enum(AclOperation, c.operation),
                           _enum(AclPermissionType, c.permission_type)) for c in creations]
    return controller_call(
        ctx.services, request, lambda c: c.create_acls(bindings),
        lambda results: {"throttle_time": 0, "results": [{"error_code": int(r.error), "error_message": r.message}
                                                         for r in results]},
        failed)


@api(31, "DeleteAcls", 1, 3)
def handle_delete_acls(ctx: RequestContext, request: Any) -> Any:
    filters = [_filter(f) for f in request.filters]

    def failed(code: int, message: str | None) -> dict[str, Any]:
        return {"throttle_time": 0, "filter_results": [{"error_code": code, "error_message": message,
                                                        "matching_acls": []} for _ in filters]}

    if ctx.services.authorizer is None:
        return failed(ErrorCode.security_disabled, NO_AUTHORIZER)

    def render(results: Any) -> dict[str, Any]:
        return {"throttle_time": 0, "filter_results": [
            {"error_code": int(r.error), "error_message": r.message,
             "matching_acls": [{"error_code": 0, "error_message": None, **_binding_fields(b)} for b in r.deleted]}
            for r in results]}

    return controller_call(ctx.services, request, lambda c: c.delete_acls(filters), render, failed)
