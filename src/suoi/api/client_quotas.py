"""DescribeClientQuotas (48) and AlterClientQuotas (49), KIP-546.

Quotas live in the metadata log (`ClientQuota` records, `suoi.controller.client_quotas`):
AlterClientQuotas is decided by the active controller (forwarded when this node is not it),
DescribeClientQuotas is answered from this node's image. Enforcement is `suoi.api.quotas`.
"""

from __future__ import annotations

from typing import Any

from suoi.api.controller_ops import controller_call
from suoi.api.registry import RequestContext, api
from suoi.controller.client_quotas import ENTITY_TYPES, QuotaAlteration
from suoi.model import ErrorCode

MATCH_EXACT, MATCH_DEFAULT, MATCH_SPECIFIED = 0, 1, 2


def _entity_dicts(entity: Any) -> list[dict[str, Any]]:
    return [{"entity_type": t, "entity_name": n} for t, n in entity]


def _matches(entity: dict[str, str | None], components: list[Any], strict: bool) -> bool:
    if strict and set(entity) != {c.entity_type for c in components}:
        return False
    for c in components:
        if c.entity_type not in entity:
            return False
        name = entity[c.entity_type]
        if c.match_type == MATCH_EXACT and name != c.match:
            return False
        if c.match_type == MATCH_DEFAULT and name is not None:
            return False
        if c.match_type == MATCH_SPECIFIED and name is None:
            return False
    return True


@api(48, "DescribeClientQuotas", 0, 1)
def handle_describe_client_quotas(ctx: RequestContext, request: Any) -> dict[str, Any]:
    def answer(code: int, message: str | None, entries: list[dict[str, Any]]) -> dict[str, Any]:
        return {"throttle_time": 0, "error_code": code, "error_message": message, "entries": entries}

    kraft = ctx.services.kraft
    components = list(request.components)
    types = [c.entity_type for c in components]
    if len(set(types)) != len(types):
        return answer(ErrorCode.invalid_request, f"Duplicate entity type in filter: {types}", [])
    for c in components:
        if c.match_type not in (MATCH_EXACT, MATCH_DEFAULT, MATCH_SPECIFIED):
            return answer(ErrorCode.invalid_request, f"Unknown match type {c.match_type}", [])
        if c.entity_type not in ENTITY_TYPES:
            return answer(ErrorCode.invalid_request, f"Unhandled client quota entity type: {c.entity_type}", [])
    entries = [{"entity": _entity_dicts(entity), "values": [{"key": k, "value": v} for k, v in sorted(values.items())]}
               for entity, values in sorted(kraft.image.client_quotas.items(), key=lambda kv: repr(kv[0]))
               if _matches(dict(entity), components, bool(request.strict))]
    return answer(ErrorCode.none, None, entries)


@api(49, "AlterClientQuotas", 0, 1)
def handle_alter_client_quotas(ctx: RequestContext, request: Any) -> Any:
    entries = list(request.entries)
    entities = [tuple((e.entity_type, e.entity_name) for e in entry.entity) for entry in entries]

    def failed(code: int, message: str | None) -> dict[str, Any]:
        return {"throttle_time": 0, "entries": [{"error_code": code, "error_message": message,
                                                 "entity": _entity_dicts(entity)} for entity in entities]}

    alterations = [QuotaAlteration(entity, tuple((op.key, None if op.remove else float(op.value)) for op in entry.ops))
                   for entity, entry in zip(entities, entries, strict=True)]

    def render(results: Any) -> dict[str, Any]:
        return {"throttle_time": 0, "entries": [{"error_code": int(code), "error_message": message,
                                                 "entity": _entity_dicts(entity)}
                                                for (code, message), entity in zip(results, entities, strict=True)]}

    return controller_call(ctx.services, request,
                           lambda c: c.alter_client_quotas(alterations, validate_only=bool(request.validate_only)),
                           render, failed)
