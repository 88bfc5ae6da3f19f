"""AlterClientQuotas on the active controller (KIP-546, Kafka's ClientQuotaControlManager).

An entity is user, client-id, or (user, client-id), each part named or the default (name None).
Keys suoi enforces: ``producer_byte_rate`` and ``consumer_byte_rate`` (bytes/s, whole numbers),
``request_percentage`` (percent of one request thread) and ``controller_mutation_rate``
(partitions created or deleted per second, KIP-599); an ``ip`` entity (a named IP address or the
default ip, never combined with another type) takes only ``connection_creation_rate`` (KIP-612,
whole connections per second), which no other entity takes. Each entity's operations are all or nothing;
setting writes a `ClientQuota` record, removing one writes it with a null value.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from suoi.controller.errors import ApiError
from suoi.controller.messages import ControllerResult
from suoi.controller.records import ClientQuota
from suoi.model import ErrorCode

if TYPE_CHECKING:
    from suoi.controller.context import OperationContext

__all__ = ["ENTITY_TYPES", "QUOTA_KEYS", "QuotaAlteration", "alter_client_quotas", "validate_entity"]

USER, CLIENT_ID, IP = "user", "client-id", "ip"
ENTITY_TYPES = (USER, CLIENT_ID, IP)
#: key -> does it take whole numbers only (Kafka's LONG/INT keys)
QUOTA_KEYS: Mapping[str, bool] = {"producer_byte_rate": True, "consumer_byte_rate": True,
                                  "request_percentage": False, "controller_mutation_rate": False}
IP_QUOTA_KEYS: Mapping[str, bool] = {"connection_creation_rate": True}


@dataclass(frozen=True, slots=True)
class QuotaAlteration:
    """One entity's operations: key -> value to set, or None to remove."""

    entity: tuple[tuple[str, str | None], ...]
    ops: tuple[tuple[str, float | None], ...]


def validate_entity(entity: Sequence[tuple[str, str | None]]) -> tuple[tuple[str, str | None], ...]:
    """The entity in canonical order (user first), or ApiError(INVALID_REQUEST)."""
    types = [t for t, _ in entity]
    if not types or len(set(types)) != len(types):
        raise ApiError(ErrorCode.invalid_request, f"Invalid empty or duplicated entity types in {list(entity)}")
    for t, name in entity:
        if t == IP:
            if len(entity) > 1:
                raise ApiError(ErrorCode.invalid_request, f"Invalid quota entity combination {list(entity)}")
            if name is not None and not _is_ip(name):
                raise ApiError(ErrorCode.invalid_request, f"{name} is not a valid IP or resolvable host.")
        if t not in ENTITY_TYPES:
            raise ApiError(ErrorCode.invalid_request, f"Unhandled client quota entity type: {t}")
        if name is not None and not name and t == USER:
            raise ApiError(ErrorCode.invalid_request, "Empty user name is not allowed")
    return tuple(sorted(entity, key=lambda part: ENTITY_TYPES.index(part[0])))


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _validate_op(entity: tuple[tuple[str, str | None], ...], key: str, value: float | None) -> None:
    keys = IP_QUOTA_KEYS if entity[0][0] == IP else QUOTA_KEYS
    if key not in keys:
        raise ApiError(ErrorCode.invalid_request, f"Invalid configuration key {key}")
    if value is None:
        return
    if keys[key] and value != int(value):
        raise ApiError(ErrorCode.invalid_request, f"Configuration {key} must be a Long value")
    if value <= 0:
        raise ApiError(ErrorCode.invalid_request, f"Configuration {key} must be positive, got {value}")


def alter_client_quotas(c: OperationContext, alterations: Sequence[QuotaAlteration], validate_only: bool
                        ) -> ControllerResult[list[tuple[ErrorCode, str | None]]]:
    results: list[tuple[ErrorCode, str | None]] = []
    for alt in alterations:
        try:
            entity = validate_entity(alt.entity)
            keys = [k for k, _ in alt.ops]
            if len(set(keys)) != len(keys):
                raise ApiError(ErrorCode.invalid_request, f"Duplicate quota keys in {keys}")
            for key, value in alt.ops:
                _validate_op(entity, key, value)
        except ApiError as e:
            results.append((e.code, e.message))
            continue
        if not validate_only:
            current = c.state.client_quotas(entity)
            for key, value in alt.ops:
                if value is not None or key in current:
                    c.stage(ClientQuota(entity=entity, key=key, quota_value=value))
        results.append((ErrorCode.none, None))
    return c.finish(results)
