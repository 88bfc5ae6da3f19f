"""CreateAcls / DeleteAcls on the active controller (Kafka's AclControlManager).

Each binding is an `AccessControlEntry` record with a fresh id; creating a binding that exists
already succeeds without a record (Kafka's rule), an invalid one fails alone (INVALID_REQUEST
with Kafka's wording). DeleteAcls removes, per filter, every binding it matches (one
`RemoveAccessControlEntry` each) and reports them; a filter with UNKNOWN fields is INVALID_REQUEST.
DescribeAcls needs no controller: every node answers it from its own image.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from suoi.authorizer.acl import AclBinding, AclBindingFilter, InvalidAcl
from suoi.controller.messages import ControllerResult
from suoi.controller.records import AccessControlEntry, RemoveAccessControlEntry
from suoi.model import ErrorCode

if TYPE_CHECKING:
    from suoi.controller.context import OperationContext

__all__ = ["AclResult", "DeleteAclsResult", "create_acls", "delete_acls"]


@dataclass(frozen=True, slots=True)
class AclResult:
    error: ErrorCode = ErrorCode.none
    message: str | None = None


@dataclass(frozen=True, slots=True)
class DeleteAclsResult:
    error: ErrorCode = ErrorCode.none
    message: str | None = None
    deleted: tuple[AclBinding, ...] = ()


def create_acls(c: OperationContext, bindings: Sequence[AclBinding]) -> ControllerResult[list[AclResult]]:
    results = []
    for binding in bindings:
        try:
            binding.validate()
        except InvalidAcl as e:
            results.append(AclResult(ErrorCode.invalid_request, str(e)))
            continue
        if binding not in c.state.acls().values():
            c.stage(AccessControlEntry(id=_new_id(c), resource_type=binding.resource_type,
                                       resource_name=binding.resource_name, pattern_type=binding.pattern_type,
                                       principal=binding.principal, host=binding.host, operation=binding.operation,
                                       permission_type=binding.permission))
        results.append(AclResult())
    return c.finish(results)


def delete_acls(c: OperationContext, filters: Sequence[AclBindingFilter]) -> ControllerResult[list[DeleteAclsResult]]:
    results = []
    for f in filters:
        problem = f.indefinite()
        if problem is not None:
            results.append(DeleteAclsResult(ErrorCode.invalid_request, problem))
            continue
        matched = [(acl_id, b) for acl_id, b in c.state.acls().items() if f.matches(b)]
        for acl_id, _ in matched:
            c.stage(RemoveAccessControlEntry(id=acl_id))
        results.append(DeleteAclsResult(deleted=tuple(b for _, b in matched)))
    return c.finish(results)


def _new_id(c: OperationContext) -> uuid.UUID:
    while True:
        acl_id = c.new_uuid()
        if acl_id not in c.state.acls():
            return acl_id
