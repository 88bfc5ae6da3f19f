"""StandardAuthorizer: Kafka's KRaft authorizer (org.apache.kafka.metadata.authorizer), sans-IO.

Rules, as Kafka's StandardAuthorizerData applies them to one action (principal, host,
operation, resource):

1. a principal in ``super.users`` is allowed everything;
2. the bindings that apply are those on the resource's type whose pattern covers its name
   (LITERAL equal, LITERAL ``*``, PREFIXED prefix), whose principal is the caller's or
   ``User:*`` and whose host is the caller's or ``*``;
3. a DENY binding for the operation (or ALL) wins over any ALLOW;
4. an ALLOW binding for the operation, for ALL, or for an operation that implies it
   (READ/WRITE/DELETE/ALTER imply DESCRIBE; ALTER_CONFIGS implies DESCRIBE_CONFIGS) allows;
5. otherwise, if no binding at all exists on the resource, ``allow.everyone.if.no.acl.found``
   decides; else the action is denied.

The bindings are loaded with `load` (from the metadata image); loading the same collection
object again is free, so callers may hand the image's bindings over on every request.
Decisions are remembered per (principal, host, operation, resource type, name) until the
bindings change (`load` of another collection: the image's ACLs changed) - a producer's every
Produce asks the same question, and the answer is one dict lookup instead of a walk over the
bindings. The super users and the no-ACL default are fixed at construction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from suoi.authorizer.acl import WILDCARD, AclBinding, AclOperation, AclPermissionType, PatternType, ResourceType

__all__ = ["AUTHORIZER_CLASS", "StandardAuthorizer", "authorizer_from_config"]

#: The only `authorizer.class.name` suoi implements (Kafka's KRaft authorizer).
AUTHORIZER_CLASS = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
WILDCARD_PRINCIPAL = "User:*"
#: Remembered decisions at most (then forgotten all at once: many hosts or topic names only cost a re-walk).
DECISIONS_MAX = 10_000

_IMPLIES_DESCRIBE = frozenset({AclOperation.DESCRIBE, AclOperation.READ, AclOperation.WRITE, AclOperation.DELETE,
                               AclOperation.ALTER})
_IMPLIES_DESCRIBE_CONFIGS = frozenset({AclOperation.DESCRIBE_CONFIGS, AclOperation.ALTER_CONFIGS})


@dataclass(slots=True)
class _Index:
    """Bindings of one resource type: literal ones by name, prefixed ones in a list."""

    literal: dict[str, list[AclBinding]] = field(default_factory=lambda: defaultdict(list))
    prefixed: list[AclBinding] = field(default_factory=list)

    def covering(self, name: str) -> Iterable[AclBinding]:
        yield from self.literal.get(name, ())
        if name != WILDCARD:
            yield from self.literal.get(WILDCARD, ())
        for acl in self.prefixed:
            if name.startswith(acl.resource_name):
                yield acl


def _operation_matches(acl: AclBinding, operation: AclOperation) -> bool:
    if acl.operation == AclOperation.ALL or acl.operation == operation:
        return True
    if acl.permission != AclPermissionType.ALLOW:
        return False  # a DENY covers only its own operation (and ALL)
    if operation == AclOperation.DESCRIBE:
        return acl.operation in _IMPLIES_DESCRIBE
    if operation == AclOperation.DESCRIBE_CONFIGS:
        return acl.operation in _IMPLIES_DESCRIBE_CONFIGS
    return False


class StandardAuthorizer:
    """See the module docstring. Pure: no I/O, no clock; `authorize` is a lookup."""

    def __init__(self, *, super_users: Collection[str] = (), allow_everyone_if_no_acl_found: bool = False) -> None:
        self.super_users = frozenset(super_users)
        self.allow_everyone_if_no_acl_found = allow_everyone_if_no_acl_found
        self._source: object = None
        self._by_type: dict[ResourceType, _Index] = {}
        #: (principal, host, operation, resource type, name) -> allowed, for the loaded bindings
        self._decisions: dict[tuple[str, str, AclOperation, ResourceType, str], bool] = {}

    def load(self, acls: Mapping[Any, AclBinding] | Collection[AclBinding]) -> None:
        """Replace the bindings (a mapping's values, e.g. the image's ACLs by id). The same
        object as last time is not re-indexed."""
        if acls is self._source:
            return
        by_type: dict[ResourceType, _Index] = {}
        for acl in (acls.values() if isinstance(acls, Mapping) else acls):
            index = by_type.setdefault(acl.resource_type, _Index())
            if acl.pattern_type == PatternType.PREFIXED:
                index.prefixed.append(acl)
            else:
                index.literal[acl.resource_name].append(acl)
        self._by_type, self._source = by_type, acls
        self._decisions = {}

    def authorize(self, principal: str, host: str, operation: AclOperation, resource_type: ResourceType,
                  resource_name: str) -> bool:
        key = (principal, host, operation, resource_type, resource_name)
        allowed = self._decisions.get(key)
        if allowed is None:
            allowed = self._decide(principal, host, operation, resource_type, resource_name)
            if len(self._decisions) >= DECISIONS_MAX:
                self._decisions = {}
            self._decisions[key] = allowed
        return allowed

    def _decide(self, principal: str, host: str, operation: AclOperation, resource_type: ResourceType,
                resource_name: str) -> bool:
        if principal in self.super_users:
            return True
        index = self._by_type.get(resource_type)
        if index is None:
            return self.allow_everyone_if_no_acl_found
        any_acl = allowed = False
        for acl in index.covering(resource_name):
            any_acl = True
            if not self._applies(acl, principal, host) or not _operation_matches(acl, operation):
                continue
            if acl.permission == AclPermissionType.DENY:
                return False
            allowed = True
        return allowed or (not any_acl and self.allow_everyone_if_no_acl_found)

    def authorize_by_resource_type(self, principal: str, host: str, operation: AclOperation,
                                   resource_type: ResourceType) -> bool:
        """May the principal do ``operation`` on *some* resource of the type? (Kafka's
        Authorizer.authorizeByResourceType: what InitProducerId asks of an idempotent producer
        without IDEMPOTENT_WRITE.) An ALLOW counts unless a DENY dominates it: a literal ``*``
        DENY, a DENY on the same literal name, or a DENY prefix of its name."""
        if self.authorize(principal, host, operation, resource_type, "hardcode"):
            return True
        deny_literal: set[str] = set()
        deny_prefix: list[str] = []
        allow_literal: list[str] = []
        allow_prefix: list[str] = []
        index = self._by_type.get(resource_type)
        for acl in [] if index is None else [a for names in index.literal.values() for a in names] + index.prefixed:
            if not self._applies(acl, principal, host):
                continue
            if acl.operation not in (operation, AclOperation.ALL):
                continue
            prefixed = acl.pattern_type == PatternType.PREFIXED
            if acl.permission == AclPermissionType.DENY:
                (deny_prefix.append(acl.resource_name) if prefixed else deny_literal.add(acl.resource_name))
            else:
                (allow_prefix if prefixed else allow_literal).append(acl.resource_name)
        if WILDCARD in deny_literal:
            return False

        def dominated(name: str) -> bool:
            return any(name.startswith(p) for p in deny_prefix)

        if any(n == WILDCARD or (n not in deny_literal and not dominated(n)) for n in allow_literal):
            return True
        return any(not dominated(p) for p in allow_prefix)

    def _applies(self, acl: AclBinding, principal: str, host: str) -> bool:
        return acl.principal in (principal, WILDCARD_PRINCIPAL) and acl.host in (host, WILDCARD)


def authorizer_from_config(values: Mapping[str, str]) -> StandardAuthorizer | None:
    """The node's authorizer from its properties (None: `authorizer.class.name` unset). Any
    class but Kafka's StandardAuthorizer is refused at start (config_security)."""
    if str(values.get("authorizer.class.name", "")).strip() != AUTHORIZER_CLASS:
        return None
    supers = [p.strip() for p in str(values.get("super.users", "")).split(";") if p.strip()]
    allow = str(values.get("allow.everyone.if.no.acl.found", "false")).strip().lower() == "true"
    return StandardAuthorizer(super_users=supers, allow_everyone_if_no_acl_found=allow)
