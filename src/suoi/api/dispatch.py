"""Turn one request frame into response bytes (or an awaitable of them).

This is the seam between `net` (which only moves bytes) and the handlers. It owns
version negotiation: ApiVersions' v0 fallback, UNSUPPORTED_VERSION replies for versions we
do not implement of api keys we serve (an unknown api key closes the connection, as in
Kafka), and the deliberate Produce v0-v2 exception.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import struct
import typing
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeAlias

from suoi.api import legacy_produce
from suoi.api.api_versions import api_versions_data
from suoi.api.registry import REGISTRY, RequestContext, ResponseData
from suoi.model import ErrorCode
from suoi.protocol.codec import (
    API_VERSIONS_KEY,
    DecodeError,
    Request,
    UnsupportedApi,
    build_response,
    decode_request,
    encode_raw,
    encode_response,
    read_prefix,
    response_class,
)

if TYPE_CHECKING:
    from suoi.broker import Broker

log = logging.getLogger("suoi.api")

Parts: TypeAlias = list[bytes | bytearray | memoryview]
Outcome: TypeAlias = Parts | None | Awaitable[Parts | None]

_INT16 = struct.Struct(">h")


class ProtocolViolation(Exception):
    """The client sent bytes we cannot interpret; the connection must be closed."""


def dispatch(broker: Broker, frame: bytes, client_host: str, connection: Any = None) -> Outcome:
    """Handle one request frame.

    Returns the framed response parts, None when no response is due (acks=0), or an
    awaitable of either for handlers that wait (long-poll fetch). Raises
    ProtocolViolation for frames that cannot be parsed at all.
    """
    try:
        prefix = read_prefix(frame)
    except DecodeError as exc:
        raise ProtocolViolation(str(exc)) from exc
    spec = REGISTRY.get(prefix.api_key)
    if spec is None:
        # As Kafka: an api key we do not serve has no response format a client could decode
        # (a bare error code is not one), so the connection is closed; only a known key at an
        # unknown version gets UNSUPPORTED_VERSION (KIP-511).
        raise ProtocolViolation(f"unknown api key {prefix.api_key} (v{prefix.api_version})")
    if not spec.supports(prefix.api_version):
        return _unsupported_version(broker, frame, prefix.api_key, prefix.api_version, prefix.correlation_id, client_host)
    try:
        request = decode_request(frame, prefix)
    except UnsupportedApi as exc:
        return _unsupported_version(broker, frame, exc.api_key, exc.api_version, exc.correlation_id, client_host)
    except DecodeError as exc:
        raise ProtocolViolation(str(exc)) from exc
    ctx = RequestContext(broker, request.api_key, request.api_version, request.correlation_id,
                         request.client_id, client_host, connection)
    result = spec.handler(ctx, request.body)
    if inspect.isawaitable(result):
        return _finish_later(result, request)
    return _encode(request, result)


def _encode(request: Request, data: ResponseData) -> Parts | None:
    if data is None:
        return None
    response = build_response(request.api_key, request.api_version, data)
    return encode_response(request.correlation_id, response)


async def _finish_later(pending: Awaitable[ResponseData], request: Request) -> Parts | None:
    return _encode(request, await pending)


def _unsupported_version(broker: Broker, frame: bytes, api_key: int, version: int,
                         correlation_id: int, client_host: str) -> Parts | None:
    """Answer a request whose version we do not implement, as Kafka does."""
    log.warning("client %s sent api key %d at unsupported version %d", client_host, api_key, version)
    if api_key == API_VERSIONS_KEY:
        # KIP-511: a client newer than us gets a v0 reply with our ranges and retries.
        data = api_versions_data(broker, ErrorCode.unsupported_version)
        return encode_response(correlation_id, build_response(API_VERSIONS_KEY, 0, data))
    if api_key == legacy_produce.PRODUCE_KEY and version < 3:
        raw = legacy_produce.reject(frame, version, correlation_id)
        return [raw] if raw is not None else None
    try:
        cls = response_class(api_key, version)
        return encode_response(correlation_id, _error_response(cls))
    except Exception:
        return [encode_raw(correlation_id, _INT16.pack(ErrorCode.unsupported_version))]


def _error_response(cls: Any) -> Any:
    """A response of `cls` with UNSUPPORTED_VERSION in its top-level error code."""
    names = {f.name for f in dataclasses.fields(cls)}
    if "error_code" not in names:
        raise LookupError("no top-level error code")
    return build_response(cls.__api_key__, cls.__version__, _zero_fields(cls) | {"error_code": ErrorCode.unsupported_version})


def _zero_fields(cls: type) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
            continue
        tp = f.type
        if type(None) in typing.get_args(tp):
            out[f.name] = None
        elif typing.get_origin(tp) is tuple:
            out[f.name] = ()
        elif isinstance(tp, type) and issubclass(tp, str):
            out[f.name] = ""
        elif isinstance(tp, type) and dataclasses.is_dataclass(tp):
            out[f.name] = _zero_fields(tp)
        else:
            out[f.name] = 0
    return out

