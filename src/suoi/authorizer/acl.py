"""ACL bindings and filters with Kafka's codes and matching rules (org.apache.kafka.common.acl).

The codes are the wire values of CreateAcls/DescribeAcls/DeleteAcls (int8), so requests and
metadata records carry them unchanged. A *binding* is one stored rule; a *filter* selects
bindings (DescribeAcls, DeleteAcls) with ANY / None as wildcards and pattern type MATCH
selecting every binding whose pattern would apply to the filter's resource name.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

__all__ = [
    "CLUSTER_NAME",
    "WILDCARD",
    "AclBinding",
    "AclBindingFilter",
    "AclOperation",
    "AclPermissionType",
    "InvalidAcl",
    "PatternType",
    "ResourceType",
    "parse_principal",
]

#: A resource name or host that matches every resource / host; a principal ``User:*`` every user.
WILDCARD = "*"
#: The one CLUSTER resource's name.
CLUSTER_NAME = "kafka-cluster"


class ResourceType(IntEnum):
    UNKNOWN = 0
    ANY = 1
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5
    DELEGATION_TOKEN = 6
    USER = 7


class PatternType(IntEnum):
    UNKNOWN = 0
    ANY = 1
    MATCH = 2
    LITERAL = 3
    PREFIXED = 4


class AclOperation(IntEnum):
    UNKNOWN = 0
    ANY = 1
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12
    CREATE_TOKENS = 13
    DESCRIBE_TOKENS = 14
    TWO_PHASE_COMMIT = 15


class AclPermissionType(IntEnum):
    UNKNOWN = 0
    ANY = 1
    DENY = 2
    ALLOW = 3


class InvalidAcl(ValueError):
    """A binding Kafka's controller refuses (INVALID_REQUEST), with Kafka's wording."""


def parse_principal(text: str) -> tuple[str, str]:
    """``Type:name`` -> (type, name); Kafka's KafkaPrincipal.fromString."""
    kind, sep, name = text.partition(":")
    if not sep or not kind or not name:
        raise InvalidAcl(f"Could not parse principal from `{text}` (no colon is present separating the "
                         "principal type from the principal name)" if not sep else f"Invalid principal `{text}`")
    return kind, name


@dataclass(frozen=True, slots=True)
class AclBinding:
    """One ACL: ``principal`` from ``host`` is ALLOWed/DENYed ``operation`` on the resources
    ``pattern_type`` + ``resource_name`` of ``resource_type`` name."""

    resource_type: ResourceType
    resource_name: str
    pattern_type: PatternType
    principal: str
    host: str
    operation: AclOperation
    permission: AclPermissionType

    def validate(self) -> None:
        """Kafka's AclControlManager.validateNewAcl: only definite values are stored."""
        if self.resource_type in (ResourceType.ANY, ResourceType.UNKNOWN):
            raise InvalidAcl(f"Invalid resourceType {self.resource_type.name}")
        if self.pattern_type not in (PatternType.LITERAL, PatternType.PREFIXED):
            raise InvalidAcl(f"Invalid patternType {self.pattern_type.name}")
        if self.operation in (AclOperation.ANY, AclOperation.UNKNOWN):
            raise InvalidAcl(f"Invalid operation {self.operation.name}")
        if self.permission in (AclPermissionType.ANY, AclPermissionType.UNKNOWN):
            raise InvalidAcl(f"Invalid permissionType {self.permission.name}")
        if not self.resource_name:
            raise InvalidAcl("Resource name should not be empty")
        if not self.host:
            raise InvalidAcl("Host should not be empty")
        parse_principal(self.principal)

    def pattern_matches(self, name: str) -> bool:
        """Does this binding's resource pattern cover the resource ``name``?"""
        if self.pattern_type == PatternType.PREFIXED:
            return name.startswith(self.resource_name)
        return self.resource_name in (name, WILDCARD)


@dataclass(frozen=True, slots=True)
class AclBindingFilter:
    """DescribeAcls/DeleteAcls' selector; None and ANY match everything."""

    resource_type: ResourceType = ResourceType.ANY
    resource_name: str | None = None
    pattern_type: PatternType = PatternType.ANY
    principal: str | None = None
    host: str | None = None
    operation: AclOperation = AclOperation.ANY
    permission: AclPermissionType = AclPermissionType.ANY

    def indefinite(self) -> str | None:
        """A field set to UNKNOWN (what Kafka refuses in a filter), else None."""
        for name in ("resource_type", "pattern_type", "operation", "permission"):
            if getattr(self, name) == 0:
                return f"Filter contains UNKNOWN elements ({name})"
        return None

    def matches(self, acl: AclBinding) -> bool:
        if self.resource_type != ResourceType.ANY and self.resource_type != acl.resource_type:
            return False
        if not self._pattern_matches(acl):
            return False
        if self.principal is not None and self.principal != acl.principal:
            return False
        if self.host is not None and self.host != acl.host:
            return False
        if self.operation != AclOperation.ANY and self.operation != acl.operation:
            return False
        return self.permission == AclPermissionType.ANY or self.permission == acl.permission

    def _pattern_matches(self, acl: AclBinding) -> bool:
        if self.pattern_type == PatternType.MATCH:
            # every binding that would apply to the named resource (Kafka's ResourcePatternFilter)
            return self.resource_name is None or acl.pattern_matches(self.resource_name)
        if self.pattern_type != PatternType.ANY and self.pattern_type != acl.pattern_type:
            return False
        return self.resource_name is None or self.resource_name == acl.resource_name
