"""``*_authorized_operations`` (KIP-430): Metadata, DescribeCluster, DescribeGroups and
DescribeTopicPartitions name, when asked, which operations the caller may do on each topic, group or
the cluster: a bit field of Kafka's operation codes, over the operations the resource type supports
(Kafka's AclEntry.supportedOperations). Filled in after the handler from the authorizer. Without an authorizer every supported
operation is allowed, and the handlers answer that when asked (`unchecked`), as Kafka's
AuthHelper.authorizedOperations does; not asked, Kafka's "omitted" value (INT32_MIN).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from suoi.authorizer import CLUSTER_NAME, AclOperation, ResourceType

Op, Res = AclOperation, ResourceType
SUPPORTED = {
    Res.TOPIC: (Op.READ, Op.WRITE, Op.CREATE, Op.DESCRIBE, Op.DELETE, Op.ALTER, Op.DESCRIBE_CONFIGS,
                Op.ALTER_CONFIGS),
    Res.GROUP: (Op.READ, Op.DESCRIBE, Op.DELETE),
    Res.CLUSTER: (Op.CREATE, Op.CLUSTER_ACTION, Op.DESCRIBE_CONFIGS, Op.ALTER_CONFIGS, Op.IDEMPOTENT_WRITE, Op.ALTER,
                  Op.DESCRIBE),
}

Allowed = Callable[[AclOperation, ResourceType, str], bool]

#: Kafka's value when the request did not ask for authorized operations.
OMITTED_OPERATIONS = -2147483648


def bits(allowed: Allowed, rtype: ResourceType, name: str) -> int:
    return sum(1 << int(op) for op in SUPPORTED[rtype] if allowed(op, rtype, name))


def unchecked(asked: bool, rtype: ResourceType) -> int:
    """The field's value on a node without an authorizer: every operation ``rtype`` supports
    when ``asked``, else `OMITTED_OPERATIONS` (an authorizer's `fill` replaces it)."""
    return sum(1 << int(op) for op in SUPPORTED[rtype]) if asked else OMITTED_OPERATIONS


def fill(api_key: int, request: Any, data: dict[str, Any] | None, allowed: Allowed) -> dict[str, Any] | None:
    """``data`` with the authorized operations asked for by ``request`` filled in."""
    if data is None:
        return data
    if api_key == 3:  # Metadata
        if getattr(request, "include_topic_authorized_operations", False):
            data = _each(data, "topics", "name", "topic_authorized_operations", Res.TOPIC, allowed)
        if getattr(request, "include_cluster_authorized_operations", False):
            data = {**data, "cluster_authorized_operations": bits(allowed, Res.CLUSTER, CLUSTER_NAME)}
    elif api_key == 60 and getattr(request, "include_cluster_authorized_operations", False):
        data = {**data, "cluster_authorized_operations": bits(allowed, Res.CLUSTER, CLUSTER_NAME)}
    elif api_key == 15 and getattr(request, "include_authorized_operations", False):
        data = _each(data, "groups", "group_id", "authorized_operations", Res.GROUP, allowed)
    elif api_key == 75:
        data = _each(data, "topics", "name", "topic_authorized_operations", Res.TOPIC, allowed)
    return data


def _each(data: dict[str, Any], array: str, name_field: str, field: str, rtype: ResourceType,
          allowed: Allowed) -> dict[str, Any]:
    def one(element: Any) -> Any:
        if isinstance(element, dict):
            name = element.get(name_field)
            return {**element, field: bits(allowed, rtype, str(name))} if name else element
        name = getattr(element, name_field, None)
        return dataclasses.replace(element, **{field: bits(allowed, rtype, str(name))}) if name else element

    return {**data, array: [one(e) for e in data.get(array) or ()]}
