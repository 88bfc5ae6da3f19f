"""Applying `authorization.check`'s verdict around a handler call (see that module).

Kept apart from the table so the table reads as Kafka's list of checks, and so handlers stay
unaware of authorization: they see a request without the refused elements, and the refused
elements are added back to their answer with Kafka's error codes.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from suoi.api import authorized_operations
from suoi.api.authorization import ALLOWED, Deny, Filter, Split, check, filter_allows, host_of, principal_of
from suoi.api.error_responses import error_array, error_response
from suoi.api.registry import RequestContext, ResponseData
from suoi.authorizer import StandardAuthorizer
from suoi.model import ErrorCode
from suoi.pending import Pending
from suoi.protocol.splice import SplicedResponse

__all__ = ["authorized_call", "split_call"]

Handler = Callable[[RequestContext, Any], ResponseData | Awaitable[ResponseData]]


def authorized_call(ctx: RequestContext, body: Any, handler: Handler, authorizer: StandardAuthorizer
                    ) -> ResponseData | Awaitable[ResponseData]:
    result = _authorized_call(ctx, body, handler, authorizer)
    if ctx.api_key not in (3, 15, 60, 75):
        return result
    host, principal = host_of(ctx), principal_of(ctx.connection)

    def allowed(op: Any, rtype: Any, name: str) -> bool:
        return authorizer.authorize(principal, host, op, rtype, name)

    def fill(data: ResponseData) -> ResponseData:
        if isinstance(data, SplicedResponse):  # shared encodings: never built for a checked principal
            return data
        return authorized_operations.fill(ctx.api_key, body, data, allowed)

    return _then(result, fill)


def _authorized_call(ctx: RequestContext, body: Any, handler: Handler, authorizer: StandardAuthorizer
                     ) -> ResponseData | Awaitable[ResponseData]:
    verdict = check(ctx, body, authorizer)
    if verdict is ALLOWED:
        return handler(ctx, body)
    if ctx.api_key == 0 and getattr(body, "acks", -1) == 0:
        return None  # acks=0 Produce: no answer to give (Kafka closes nothing either)
    if isinstance(verdict, Deny):
        return _fields(error_response(ctx.api_key, ctx.api_version, body, verdict.code))
    if isinstance(verdict, Filter):
        return _then(handler(ctx, body), lambda data: _filtered(ctx, authorizer, verdict, data))
    assert isinstance(verdict, Split)
    return split_call(ctx, body, handler, verdict)


def split_call(ctx: RequestContext, body: Any, handler: Handler, verdict: Split, message: str | None = None
               ) -> ResponseData | Awaitable[ResponseData]:
    """Call ``handler`` with the request's elements ``verdict`` refuses taken out, and answer
    those with their codes (and ``message``) next to the handler's answer for the others."""
    array = _first_array_field(body)
    items = getattr(body, array) or ()
    allowed = [x for i, x in enumerate(items) if i not in verdict.denied]
    by_code: dict[int, list[Any]] = {}
    for i, code in verdict.denied.items():
        by_code.setdefault(code, []).append(items[i])
    if verdict.all_or_nothing and allowed:
        by_code.setdefault(ErrorCode.operation_not_attempted, []).extend(allowed)
        allowed = []
    refused = [_error_entries(ctx, body, array, elements, code, message) for code, elements in by_code.items()]
    target = error_array(ctx.api_key, ctx.api_version)

    def merge(data: ResponseData) -> ResponseData:
        if data is None or target is None or isinstance(data, SplicedResponse):
            return data
        data = dict(data)
        data[target] = [*(data.get(target) or ()), *(e for entries in refused for e in entries)]
        return data

    if allowed or verdict.always_call:
        return _then(handler(ctx, dataclasses.replace(body, **{array: tuple(allowed)})), merge)
    only = _fields(error_response(ctx.api_key, ctx.api_version, dataclasses.replace(body, **{array: ()}),
                                  ErrorCode.none))
    return merge(only)


def _error_entries(ctx: RequestContext, body: Any, array: str, elements: list[Any], code: int,
                   message: str | None = None) -> list[Any]:
    response = error_response(ctx.api_key, ctx.api_version, dataclasses.replace(body, **{array: tuple(elements)}),
                              code, message)
    target = error_array(ctx.api_key, ctx.api_version)
    return list(getattr(response, target)) if target is not None else []


def _filtered(ctx: RequestContext, authorizer: StandardAuthorizer, f: Filter, data: ResponseData) -> ResponseData:
    if data is None or isinstance(data, SplicedResponse):
        return data
    data = dict(data)

    def name(element: Any) -> str:
        return str(element[f.name_field] if isinstance(element, dict) else getattr(element, f.name_field))

    data[f.array] = [e for e in data.get(f.array) or () if filter_allows(ctx, authorizer, f, name(e))]
    return data


def _then(result: ResponseData | Awaitable[ResponseData], fn: Callable[[ResponseData], ResponseData]
          ) -> ResponseData | Awaitable[ResponseData]:
    if isinstance(result, Pending):  # a parked Fetch: one more synchronous step, no coroutine
        return result.then(fn)
    if inspect.isawaitable(result):
        async def later() -> ResponseData:
            return fn(await result)  # type: ignore[misc]
        return later()
    return fn(result)  # type: ignore[arg-type]


def _first_array_field(body: Any) -> str:
    for f in dataclasses.fields(body):
        if isinstance(getattr(body, f.name), tuple):
            return f.name
    raise LookupError(f"{type(body).__name__} has no array to split")


def _fields(entity: Any) -> dict[str, Any]:
    return {f.name: getattr(entity, f.name) for f in dataclasses.fields(entity)}
