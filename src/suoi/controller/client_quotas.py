"""AlterClientQuotas on the active controller (KIP-546, Kafka's ClientQuotaControlManager).

An entity is user, client-id, or (user, client-id), each part named or the default (name None).
Keys suoi enforces: ``producer_byte_rate`` and ``consumer_byte_rate`` (bytes/s, whole numbers),
``request_percentage`` (percent of one request thread) and ``controller_mutation_rate``
(partitions created or deleted per second, KIP-599). IP entities (``connection_creation_rate``)
are refused with INVALID_REQUEST rather than stored and ignored. Each entity's operations are all or nothing;
setting writes a `ClientQuota` record, removing one writes it with a null value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from suoi.controller.errors import ApiError
from suoi.controller.messages import ControllerResult
from suoi.controller.records import ClientQuota
from suoi.model import ErrorCode

if TYPE_CHECKING:
    from suoi.controller.controller import QuorumController

__all__ = ["ENTITY_TYPES", "QUOTA_KEYS", "QuotaAlteration", "alter_client_quotas", "validate_entity"]

USER, CLIENT_ID = "user", "client-id"
ENTITY_TYPES = (USER, CLIENT_ID)
#: key -> does it take whole numbers only (Kafka's LONG keys)
QUOTA_KEYS: Mapping[str, bool] = {"producer_byte_rate": True, "consumer_byte_rate": True,
                                  "request_percentage": False, "controller_mutation_rate": False}
_REFUSED_KEYS = {"connection_creation_rate": "IP connection rate quotas"}


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
        if t == "ip":
            raise ApiError(ErrorCode.invalid_request, "suoi does not implement IP quotas (connection_creation_rate)")
        if t not in ENTITY_TYPES:
            raise ApiError(ErrorCode.invalid_request, f"Unhandled client quota entity type: {t}")
        if name is not None and not name and t == USER:
            raise ApiError(ErrorCode.invalid_request, "Empty user name is not allowed")
    return tuple(sorted(entity, key=lambda part: ENTITY_TYPES.index(part[0])))


def _validate_op(key: str, value: float | None) -> None:
    if key in _REFUSED_KEYS:
        raise ApiError(ErrorCode.invalid_request, f"suoi does not implement {_REFUSED_KEYS[key]} ({key})")
    if key not in QUOTA_KEYS:
        raise ApiError(ErrorCode.invalid_request, f"Invalid configuration key {key}")
    if value is None:
        return
    if QUOTA_KEYS[key] and value != int(value):
        raise ApiError(ErrorCode.invalid_request, f"Configuration {key} must be a Long value")
    if value <= 0:
        raise ApiError(ErrorCode.invalid_request, f"Configuration {key} must be positive, got {value}")


def alter_client_quotas(c: QuorumController, alterations: Sequence[QuotaAlteration], validate_only: bool
                        ) -> ControllerResult[list[tuple[ErrorCode, str | None]]]:
    results: list[tuple[ErrorCode, str | None]] = []
    for alt in alterations:
        try:
            entity = validate_entity(alt.entity)
            keys = [k for k, _ in alt.ops]
            if len(set(keys)) != len(keys):
                raise ApiError(ErrorCode.invalid_request, f"Duplicate quota keys in {keys}")
            for key, value in alt.ops:
                _validate_op(key, value)
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
