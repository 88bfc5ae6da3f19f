"""Authorization: ACL bindings and Kafka's StandardAuthorizer, sans-IO (see README.md)."""

from suoi.authorizer.acl import (
    CLUSTER_NAME,
    WILDCARD,
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    InvalidAcl,
    PatternType,
    ResourceType,
    parse_principal,
)
from suoi.authorizer.standard import AUTHORIZER_CLASS, StandardAuthorizer, authorizer_from_config

__all__ = [
    "AUTHORIZER_CLASS",
    "CLUSTER_NAME",
    "WILDCARD",
    "AclBinding",
    "AclBindingFilter",
    "AclOperation",
    "AclPermissionType",
    "InvalidAcl",
    "PatternType",
    "ResourceType",
    "StandardAuthorizer",
    "authorizer_from_config",
    "parse_principal",
]
