"""The ACL and user pages: ACL bindings (DescribeAcls; CreateAcls and DeleteAcls of one binding,
each confirmed on the page), SCRAM users (DescribeUserScramCredentials: mechanism and iterations,
the only things Kafka ever answers about a credential, never a salt or a key) and client quotas
(DescribeClientQuotas). Read on demand, like the transactions page, at most once per poll
interval whatever the number of tabs (`OnDemand`).

A cluster without an authorizer answers DescribeAcls with SECURITY_DISABLED: the page says so
instead of showing an empty list, which would read as "nothing is allowed".
"""

from __future__ import annotations

from typing import Any

from suoi.http.console.kafka_reads import ClusterClient, KafkaReadError, OnDemand, error_name, failed
from suoi.http.console.kafka_writes import KafkaWriteError, check

__all__ = ["AccessView", "create_acl", "delete_acl"]

# Kafka's enums (org.apache.kafka.common.acl / resource), by wire value
RESOURCE_TYPES = {2: "TOPIC", 3: "GROUP", 4: "CLUSTER", 5: "TRANSACTIONAL_ID", 6: "DELEGATION_TOKEN", 7: "USER"}
PATTERN_TYPES = {3: "LITERAL", 4: "PREFIXED"}
OPERATIONS = {2: "ALL", 3: "READ", 4: "WRITE", 5: "CREATE", 6: "DELETE", 7: "ALTER", 8: "DESCRIBE",
              9: "CLUSTER_ACTION", 10: "DESCRIBE_CONFIGS", 11: "ALTER_CONFIGS", 12: "IDEMPOTENT_WRITE",
              13: "CREATE_TOKENS", 14: "DESCRIBE_TOKENS", 15: "TWO_PHASE_COMMIT"}
PERMISSIONS = {2: "DENY", 3: "ALLOW"}
ANY = 1
SCRAM_MECHANISMS = {1: "SCRAM-SHA-256", 2: "SCRAM-SHA-512"}
SECURITY_DISABLED = "SECURITY_DISABLED"
NO_AUTHORIZER = ("This cluster has no authorizer (authorizer.class.name is not set): ACLs are neither "
                 "enforced nor stored, and every client may do anything its listener lets it.")


def _name(table: dict[int, str], value: Any) -> str:
    return table.get(int(value), f"UNKNOWN({int(value)})")


def _code(table: dict[int, str], name: Any, what: str) -> int:
    """The wire value of an enum name the page sent (case-insensitive)."""
    wanted = str(name).strip().upper()
    for code, known in table.items():
        if known == wanted:
            return code
    raise ValueError(f"{what} is one of {', '.join(table.values())}, not {name!r}")


def binding_from(body: dict[str, Any]) -> dict[str, Any]:
    """A binding from the page's JSON, checked: enum names known, a principal of TYPE:NAME."""
    principal = str(body["principal"]).strip()
    if ":" not in principal:
        raise ValueError(f"a principal is TYPE:NAME (User:alice), not {principal!r}")
    resource_type = _code(RESOURCE_TYPES, body["resource_type"], "resource_type")
    name = str(body.get("resource_name") or "").strip() or ("kafka-cluster" if resource_type == 4 else "")
    if not name:
        raise ValueError("a binding needs a resource name (* for all)")
    return {"resource_type": RESOURCE_TYPES[resource_type], "resource_name": name,
            "pattern_type": PATTERN_TYPES[_code(PATTERN_TYPES, body.get("pattern_type") or "LITERAL", "pattern_type")],
            "principal": principal, "host": str(body.get("host") or "*").strip() or "*",
            "operation": OPERATIONS[_code(OPERATIONS, body["operation"], "operation")],
            "permission": PERMISSIONS[_code(PERMISSIONS, body.get("permission") or "ALLOW", "permission")]}


def _wire(b: dict[str, Any]) -> dict[str, int]:
    return {"resource_type": _code(RESOURCE_TYPES, b["resource_type"], ""),
            "pattern_type": _code(PATTERN_TYPES, b["pattern_type"], ""),
            "operation": _code(OPERATIONS, b["operation"], ""), "permission": _code(PERMISSIONS, b["permission"], "")}


async def create_acl(client: ClusterClient, binding: dict[str, Any]) -> dict[str, Any]:
    from kio.schema.create_acls.v3.request import AclCreation, CreateAclsRequest
    from kio.static.primitive import i8

    w = _wire(binding)
    request = CreateAclsRequest(creations=(AclCreation(
        resource_type=i8(w["resource_type"]), resource_name=binding["resource_name"],
        resource_pattern_type=i8(w["pattern_type"]), principal=binding["principal"], host=binding["host"],
        operation=i8(w["operation"]), permission_type=i8(w["permission"])),))
    [result] = (await client.any(request)).results
    check(result.error_code, result.error_message, "create ACL")
    return {"created": binding}


async def delete_acl(client: ClusterClient, binding: dict[str, Any]) -> dict[str, Any]:
    """Delete exactly this binding (a filter naming every field: it matches nothing else)."""
    from kio.schema.delete_acls.v3.request import DeleteAclsFilter, DeleteAclsRequest
    from kio.static.primitive import i8

    w = _wire(binding)
    request = DeleteAclsRequest(filters=(DeleteAclsFilter(
        resource_type_filter=i8(w["resource_type"]), resource_name_filter=binding["resource_name"],
        pattern_type_filter=i8(w["pattern_type"]), principal_filter=binding["principal"],
        host_filter=binding["host"], operation=i8(w["operation"]), permission_type=i8(w["permission"])),))
    [result] = (await client.any(request)).filter_results
    check(result.error_code, result.error_message, "delete ACL")
    if not result.matching_acls:
        raise KafkaWriteError("delete ACL: no such binding (deleted already?)")
    return {"deleted": len(result.matching_acls)}


class AccessView:
    """ACLs and users, each read at most once per `max_age` for every tab together."""

    def __init__(self, client: ClusterClient, max_age: float) -> None:
        self.client = client
        self.acls = OnDemand(self._acls, max_age)
        self.users = OnDemand(self._users, max_age)

    async def _acls(self) -> dict[str, Any]:
        from kio.schema.describe_acls.v3.request import DescribeAclsRequest
        from kio.static.primitive import i8

        response = await self.client.any(DescribeAclsRequest(
            resource_type_filter=i8(ANY), resource_name_filter=None, pattern_type_filter=i8(ANY),
            principal_filter=None, host_filter=None, operation=i8(ANY), permission_type=i8(ANY)))
        if failed(response.error_code):
            if error_name(response.error_code) == SECURITY_DISABLED:
                return {"enabled": False, "message": NO_AUTHORIZER, "bindings": []}
            raise KafkaReadError(f"DescribeAcls: {error_name(response.error_code)}"
                                 + (f" ({response.error_message})" if response.error_message else ""))
        bindings = [{"resource_type": _name(RESOURCE_TYPES, r.resource_type), "resource_name": r.resource_name,
                     "pattern_type": _name(PATTERN_TYPES, r.pattern_type), "principal": a.principal, "host": a.host,
                     "operation": _name(OPERATIONS, a.operation), "permission": _name(PERMISSIONS, a.permission_type)}
                    for r in response.resources for a in r.acls]
        return {"enabled": True, "message": None, "bindings": sorted(bindings, key=lambda b: tuple(b.values()))}

    async def _users(self) -> dict[str, Any]:
        from kio.schema.describe_client_quotas.v1.request import DescribeClientQuotasRequest
        from kio.schema.describe_user_scram_credentials.v0.request import DescribeUserScramCredentialsRequest

        scram = await self.client.any(DescribeUserScramCredentialsRequest(users=None))
        quotas = await self.client.any(DescribeClientQuotasRequest(components=(), strict=False))
        errors = [f"{what}: {error_name(r.error_code)}" for what, r in
                  (("DescribeUserScramCredentials", scram), ("DescribeClientQuotas", quotas)) if failed(r.error_code)]
        users = [{"user": r.user, "credentials": [{"mechanism": _name(SCRAM_MECHANISMS, c.mechanism),
                                                   "iterations": int(c.iterations)} for c in r.credential_infos]}
                 for r in scram.results if not failed(r.error_code)] if not failed(scram.error_code) else []
        entries = [{"entity": [{"type": e.entity_type, "name": e.entity_name} for e in q.entity],
                    "values": {v.key: float(v.value) for v in q.values}}
                   for q in (quotas.entries or ())] if not failed(quotas.error_code) else []
        return {"scram": sorted(users, key=lambda u: u["user"]), "errors": errors,
                "quotas": sorted(entries, key=lambda q: [(e["type"], e["name"] or "") for e in q["entity"]])}
