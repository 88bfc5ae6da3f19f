"""The security part of the metadata image: SCRAM credentials (KIP-554), ACLs and client
quotas (KIP-546).

These records touch nothing else in the image (no topic, broker or partition), so their replay
state lives apart from `MetadataBuilder`'s: `SecurityState` applies them and publishes the
image's ``scram``, ``acls`` and ``client_quotas`` mappings; `security_snapshot_records` writes
them back as records for a snapshot (KIP-630).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from suoi.authorizer.acl import AclBinding, AclOperation, AclPermissionType, PatternType, ResourceType
from suoi.controller.records import (
    AccessControlEntry,
    ClientQuota,
    MetadataRecordError,
    Record,
    RemoveAccessControlEntry,
    RemoveUserScramCredential,
    UserScramCredential,
)

__all__ = ["ClientQuotaEntity", "SecurityState", "security_snapshot_records"]

_EMPTY: Mapping[Any, Any] = MappingProxyType({})
#: A client quota entity (KIP-546): ((type, name or None for the default), ...) sorted by type.
ClientQuotaEntity = tuple[tuple[str, str | None], ...]


def _binding(r: AccessControlEntry) -> AclBinding:
    try:
        return AclBinding(ResourceType(r.resource_type), r.resource_name, PatternType(r.pattern_type), r.principal,
                          r.host, AclOperation(r.operation), AclPermissionType(r.permission_type))
    except ValueError as e:
        raise MetadataRecordError(f"AccessControlEntry {r.id}: {e}") from None


@dataclass(slots=True)
class SecurityState:
    """Mutable SCRAM credentials, ACLs and client quotas, replayed in log order."""

    scram: dict[tuple[str, int], UserScramCredential] = field(default_factory=dict)
    acls: dict[uuid.UUID, AclBinding] = field(default_factory=dict)
    quotas: dict[ClientQuotaEntity, dict[str, float]] = field(default_factory=dict)
    #: The published ACL mapping, kept (the same object across images) until an ACL changes:
    #: authorizers cache their lookups on it.
    _acls_view: Mapping[uuid.UUID, AclBinding] | None = None

    @classmethod
    def from_published(cls, scram: Mapping[tuple[str, int], UserScramCredential],
                       acls: Mapping[uuid.UUID, AclBinding],
                       client_quotas: Mapping[ClientQuotaEntity, Mapping[str, float]]) -> SecurityState:
        return cls(dict(scram), dict(acls), {k: dict(v) for k, v in client_quotas.items()}, acls)

    # ------------------------------------------------------------------ replay

    def scram_credential(self, r: UserScramCredential) -> None:
        self.scram[(r.name, r.mechanism)] = r

    def remove_scram_credential(self, r: RemoveUserScramCredential) -> None:
        self.scram.pop((r.name, r.mechanism), None)

    def acl(self, r: AccessControlEntry) -> None:
        if r.id in self.acls:
            raise MetadataRecordError(f"ACL {r.id} already exists")
        self.acls[r.id] = _binding(r)
        self._acls_view = None

    def remove_acl(self, r: RemoveAccessControlEntry) -> None:
        if self.acls.pop(r.id, None) is None:
            raise MetadataRecordError(f"unknown ACL {r.id}")
        self._acls_view = None

    def client_quota(self, r: ClientQuota) -> None:
        entity = tuple(sorted(r.entity))
        values = self.quotas.setdefault(entity, {})
        if r.quota_value is None:
            values.pop(r.key, None)
            if not values:
                del self.quotas[entity]
        else:
            values[r.key] = r.quota_value

    # ------------------------------------------------------------------ publish

    def published_scram(self) -> Mapping[tuple[str, int], UserScramCredential]:
        return MappingProxyType(dict(self.scram))

    def published_acls(self) -> Mapping[uuid.UUID, AclBinding]:
        if self._acls_view is None:
            self._acls_view = MappingProxyType(dict(self.acls)) if self.acls else _EMPTY
        return self._acls_view

    def published_quotas(self) -> Mapping[ClientQuotaEntity, Mapping[str, float]]:
        return MappingProxyType({k: MappingProxyType(dict(v)) for k, v in self.quotas.items()})


def security_snapshot_records(acls: Mapping[uuid.UUID, AclBinding],
                              client_quotas: Mapping[ClientQuotaEntity, Mapping[str, float]]) -> list[Record]:
    """The records that rebuild ``acls`` and ``client_quotas`` (SCRAM credentials are records
    already: the image keeps them as they were written)."""
    out: list[Record] = []
    for acl_id, a in sorted(acls.items()):
        out.append(AccessControlEntry(id=acl_id, resource_type=a.resource_type, resource_name=a.resource_name,
                                      pattern_type=a.pattern_type, principal=a.principal, host=a.host,
                                      operation=a.operation, permission_type=a.permission))
    for entity, quotas in sorted(client_quotas.items(), key=lambda kv: repr(kv[0])):
        for key, quota in sorted(quotas.items()):
            out.append(ClientQuota(entity=entity, key=key, quota_value=quota))
    return out
