"""DescribeUserScramCredentials (50) and AlterUserScramCredentials (51), KIP-554.

Credentials live in the KRaft metadata log (UserScramCredential records, see
``suoi.controller.scram``): Describe answers from this node's image (mechanisms and iterations,
never salts or keys), Alter runs on the active controller (forwarded there by other nodes).
"""

from __future__ import annotations

from typing import Any

from suoi.api.controller_ops import controller_call
from suoi.api.registry import RequestContext, api
from suoi.controller.scram import ScramDeletion, ScramUpsertion
from suoi.model import ErrorCode


@api(50, "DescribeUserScramCredentials", 0, 0)
def handle_describe(ctx: RequestContext, request: Any) -> dict[str, Any]:
    credentials = ctx.services.kraft.image.scram
    by_user: dict[str, list[dict[str, int]]] = {}
    for (user, mechanism), c in sorted(credentials.items()):
        by_user.setdefault(user, []).append({"mechanism": mechanism, "iterations": c.iterations})
    if not request.users:  # null or empty: every user with a credential
        results = [_described(u, ErrorCode.none, None, infos) for u, infos in by_user.items()]
    else:
        names = [str(u.name) for u in request.users]
        results = []
        for name in dict.fromkeys(names):
            if names.count(name) > 1:
                results.append(_described(name, ErrorCode.duplicate_resource, "Cannot describe SCRAM credentials for "
                                          "the same user twice in a single request", []))
            elif name not in by_user:
                results.append(_described(name, ErrorCode.resource_not_found,
                                          "Attempt to describe a user credential that does not exist", []))
            else:
                results.append(_described(name, ErrorCode.none, None, by_user[name]))
    return {"throttle_time": 0, "error_code": ErrorCode.none, "error_message": None, "results": results}


def _described(user: str, code: ErrorCode, message: str | None, infos: list[dict[str, int]]) -> dict[str, Any]:
    return {"user": user, "error_code": code, "error_message": message, "credential_infos": infos}


@api(51, "AlterUserScramCredentials", 0, 0)
def handle_alter(ctx: RequestContext, request: Any) -> Any:
    users = list(dict.fromkeys([str(d.name) for d in request.deletions] + [str(u.name) for u in request.upsertions]))

    def failed(code: ErrorCode, message: str) -> dict[str, Any]:
        return _altered([(u, code, message) for u in users])

    deletions = [ScramDeletion(str(d.name), int(d.mechanism)) for d in request.deletions]
    upsertions = [ScramUpsertion(str(u.name), int(u.mechanism), int(u.iterations), bytes(u.salt),
                                 bytes(u.salted_password)) for u in request.upsertions]
    return controller_call(ctx.services, request, lambda c: c.alter_user_scram_credentials(deletions, upsertions),
                           _altered, failed)


def _altered(results: list[tuple[str, int, str | None]]) -> dict[str, Any]:
    return {"throttle_time": 0, "results": [{"user": u, "error_code": code, "error_message": message}
                                            for u, code, message in results]}
