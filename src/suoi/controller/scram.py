"""AlterUserScramCredentials (KIP-554): SCRAM credentials in the metadata log.

The client salts and hashes the password itself (``salted_password``); the controller keeps
only what the server side of SCRAM needs (StoredKey, ServerKey, salt, iterations) as
UserScramCredential records, so the metadata log never holds a password. Kafka's per-user
rules: an unknown mechanism is UNSUPPORTED_SASL_MECHANISM, iterations outside 4096..16384 or an
empty name UNACCEPTABLE_CREDENTIAL, deleting a credential that does not exist
RESOURCE_NOT_FOUND, a user altered twice for one mechanism in one request DUPLICATE_RESOURCE;
one failing alteration fails its user's other alterations in the request too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from suoi.controller.messages import ControllerResult
from suoi.controller.records import RemoveUserScramCredential, UserScramCredential
from suoi.model import ErrorCode
from suoi.security.scram import MAX_ITERATIONS, MIN_ITERATIONS, credential_from_salted, mechanism_name

if TYPE_CHECKING:
    from suoi.controller.context import OperationContext

__all__ = ["ScramDeletion", "ScramUpsertion", "alter_user_scram_credentials"]


@dataclass(frozen=True, slots=True)
class ScramDeletion:
    name: str
    mechanism: int


@dataclass(frozen=True, slots=True)
class ScramUpsertion:
    name: str
    mechanism: int
    iterations: int
    salt: bytes
    salted_password: bytes

    def __repr__(self) -> str:
        return f"ScramUpsertion({self.name}, {self.mechanism}, iterations={self.iterations})"


UserResult = tuple[str, int, str | None]  # (user, error code, message)


def alter_user_scram_credentials(ctl: OperationContext, deletions: Sequence[ScramDeletion],
                                 upsertions: Sequence[ScramUpsertion]) -> ControllerResult[list[UserResult]]:
    errors: dict[str, tuple[int, str]] = {}
    seen: set[tuple[str, int]] = set()
    users: list[str] = []
    existing = ctl.state.scram_credentials()
    ops: list[ScramDeletion | ScramUpsertion] = [*deletions, *upsertions]
    for op in ops:
        if op.name not in users:
            users.append(op.name)
        key = (op.name, op.mechanism)
        if key in seen:
            errors[op.name] = (ErrorCode.duplicate_resource, "A user credential cannot be altered twice in the same request")
        seen.add(key)
        problem = _check(op, existing)
        if problem is not None and op.name not in errors:
            errors[op.name] = problem
    for op in deletions:
        if op.name not in errors:
            ctl.stage(RemoveUserScramCredential(name=op.name, mechanism=op.mechanism))
    for up in upsertions:
        if up.name not in errors:
            mechanism = mechanism_name(up.mechanism)
            assert mechanism is not None
            c = credential_from_salted(mechanism, up.salted_password, up.salt, up.iterations)
            ctl.stage(UserScramCredential(name=up.name, mechanism=up.mechanism, salt=c.salt, stored_key=c.stored_key,
                                          server_key=c.server_key, iterations=c.iterations))
    results: list[UserResult] = [(u, int(errors[u][0]), errors[u][1]) if u in errors else (u, int(ErrorCode.none), None)
                                 for u in users]
    return ctl.finish(results)


def _check(op: ScramDeletion | ScramUpsertion, existing: Mapping[tuple[str, int], UserScramCredential]
           ) -> tuple[int, str] | None:
    if not op.name:
        return ErrorCode.unacceptable_credential, "Username must not be empty"
    if mechanism_name(op.mechanism) is None:
        return ErrorCode.unsupported_sasl_mechanism, "Unknown SCRAM mechanism"
    if isinstance(op, ScramDeletion):
        if (op.name, op.mechanism) not in existing:
            return ErrorCode.resource_not_found, "Attempt to delete a user credential that does not exist"
        return None
    if op.iterations < MIN_ITERATIONS:
        return ErrorCode.unacceptable_credential, "Too few iterations"
    if op.iterations > MAX_ITERATIONS:
        return ErrorCode.unacceptable_credential, "Too many iterations"
    if not op.salt or not op.salted_password:
        return ErrorCode.unacceptable_credential, "Salt and salted password must not be empty"
    return None
