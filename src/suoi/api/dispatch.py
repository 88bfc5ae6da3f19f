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
from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias

from suoi.api import legacy_produce, mutation_quota
from suoi.api import quotas as client_quotas
from suoi.api.api_versions import api_versions_data
from suoi.api.enforcement import authorized_call
from suoi.api.error_responses import error_response
from suoi.api.listener_roles import ListenerRole, serves
from suoi.api.registry import CLIENT_LISTENER, CURRENT_REQUEST, REGISTRY, ApiSpec, RequestContext, ResponseData
from suoi.model import ErrorCode, KafkaError
from suoi.pending import Pending
from suoi.protocol.codec import (
    API_VERSIONS_KEY,
    DecodeError,
    Request,
    RequestPrefix,
    build_response,
    encode_raw,
    encode_response,
    read_prefix,
    request_decoder,
    response_class,
)
from suoi.protocol.compiled_dict_writer import encode_response_data
from suoi.protocol.file_records import FileRegion
from suoi.protocol.splice import SplicedResponse, encode_spliced
from suoi.raft_driver.codec import FETCH_KEY, is_metadata_fetch

if TYPE_CHECKING:
    from suoi.services import Services

log = logging.getLogger("suoi.api")

#: a framed answer: bytes, and (Fetch) file regions the connection sends by sendfile between them
Parts: TypeAlias = list[bytes | bytearray | memoryview | FileRegion]
Outcome: TypeAlias = Parts | None | Pending[Parts | None] | Awaitable[Parts | None]

_INT16 = struct.Struct(">h")


class ProtocolViolation(Exception):
    """The client sent bytes we cannot interpret; the connection must be closed."""

    reason: ClassVar[str] = "malformed request"  # ClassVar: a class constant (mypyc: not an instance slot)


class NotServedOnListener(ProtocolViolation):
    """A client API on a CONTROLLER listener (see `listener_roles`): closed, as Kafka does."""

    reason: ClassVar[str] = "request not served on this listener"


class _Plan:
    """What a request of one api key and version needs, found once (`_plan`): its spec, the
    decoder of its schema (`codec.request_decoder`), and its handler."""

    __slots__ = ("decode", "handler", "mutation", "name", "spec")

    def __init__(self, spec: ApiSpec, decode: Callable[[bytes | memoryview, int], Request]) -> None:
        self.spec = spec  # REGISTRY's entry the plan was made from (a replaced entry is planned anew)
        self.name = spec.name
        self.handler = spec.handler
        self.decode = decode
        self.mutation = spec.api_key in mutation_quota.APIS  # a client's mutation quota may apply


#: (api_key << 16) + api_version -> its plan, for the versions served only (a peer's made-up
#: versions are not kept: they go the long way, to UNSUPPORTED_VERSION)
_PLANS: dict[int, _Plan] = {}
_PREFIX = struct.Struct(">hhi")
_new_context = tuple.__new__  # a RequestContext without NamedTuple's Python-level __new__
_CLIENT_ROLE = ListenerRole.CLIENT


def dispatch(broker: Services, frame: bytes | memoryview, client_host: str, connection: Any = None,
             role: ListenerRole = ListenerRole.CLIENT) -> Outcome:
    """Handle one request frame that came in on a listener of `role`.

    Returns the framed response parts, None when no response is due (acks=0), a `Pending`
    of either for a handler that answers from a callback (a parked Fetch), or an awaitable of
    either for handlers that wait in a coroutine (acks=all Produce, the metadata quorum's Fetch). Raises
    ProtocolViolation for frames that cannot be parsed at all, NotServedOnListener for a
    client API on a CONTROLLER listener. Each answered request is timed into `broker.metrics`
    (counts and histograms per API, read at scrape time).
    """
    security = getattr(connection, "security", None)
    token = CLIENT_LISTENER.set(security.name if security is not None else None)
    started = perf_counter()
    try:  # (`_dispatch`'s body inline: one Python call less per request)
        if len(frame) >= 8:
            api_key, api_version, correlation_id = _PREFIX.unpack_from(frame, 0)
            plan = _PLANS.get((api_key << 16) + api_version)
        else:
            plan = None
        try:
            if plan is None or REGISTRY.get(api_key) is not plan.spec:
                plan = _plan(frame, role)
            elif role is not _CLIENT_ROLE:
                _check_served(role, api_key, api_version)
            request = plan.decode(frame, correlation_id)
        except _Unsupported as exc:
            key, version, cid = exc.prefix
            return _unsupported_version(broker, frame, key, version, cid, client_host, role)
        except DecodeError as bad:  # not `exc` again: mypyc gives one name one type per function
            raise ProtocolViolation(str(bad)) from bad
        if role is ListenerRole.CONTROLLER and request.api_key == FETCH_KEY and not is_metadata_fetch(request.body):
            raise NotServedOnListener(f"Fetch v{request.api_version} is not served on CONTROLLER listener "
                                      "for any topic but __cluster_metadata")
        if request.null_fields:
            log.warning("client %s sent %s v%d with null in non-nullable field %s; answering INVALID_REQUEST",
                        client_host, plan.name, request.api_version, ", ".join(dict.fromkeys(request.null_fields)))
            return _error(request, ErrorCode.invalid_request, "null in a non-nullable field")
        ctx = _new_context(RequestContext, (broker, request.api_key, request.api_version, request.correlation_id,
                                            request.client_id, client_host, connection, role))
        current = CURRENT_REQUEST.set(ctx)
        try:
            return _handled(broker, plan, request, ctx, len(frame), client_host, started)
        finally:
            CURRENT_REQUEST.reset(current)
    finally:
        CLIENT_LISTENER.reset(token)


def _plan(frame: bytes | memoryview, role: ListenerRole) -> _Plan:
    """The plan of a request whose api key and version have none yet: ProtocolViolation for
    an unknown api key, NotServedOnListener, `_Unsupported` for a version not served."""
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
    _check_served(role, prefix.api_key, prefix.api_version)
    if not spec.supports(prefix.api_version):
        raise _Unsupported(prefix)
    try:
        decode = request_decoder(prefix.api_key, prefix.api_version)
    except Exception:  # kio has no schema for it
        raise _Unsupported(prefix) from None
    plan = _PLANS[(prefix.api_key << 16) + prefix.api_version] = _Plan(spec, decode)
    return plan


def _check_served(role: ListenerRole, api_key: int, api_version: int) -> None:
    if not serves(role, api_key):
        raise NotServedOnListener(f"{REGISTRY[api_key].name} v{api_version} is not served on CONTROLLER listener "
                                  "(only the controller's APIs are, as ApiVersions there says)")


class _Unsupported(Exception):
    """A request at a version this node does not serve (answered, not a violation)."""

    def __init__(self, prefix: RequestPrefix) -> None:
        super().__init__()
        self.prefix = prefix


def _handled(broker: Services, plan: _Plan, request: Request, ctx: RequestContext, frame_len: int,
             client_host: str, started: float) -> Outcome:
    """Quotas, authorization, the handler, the answer's encoding and the request's metrics."""
    metrics = broker.metrics
    kraft = getattr(broker, "kraft", None)  # no client quotas in the image: no call for them
    quota = (client_quotas.begin(ctx, request.body, frame_len)  # None unless client quotas exist
             if kraft is not None and kraft.image.client_quotas else None)
    body, handler, api = request.body, plan.handler, plan.name
    if quota is not None:
        body = quota.limit_fetch(body)
        if plan.mutation:
            handler = mutation_quota.limited(quota, handler)
    try:
        authorizer = getattr(broker, "authorizer", None)  # suoi.authorizer, when authorizer.class.name is set
        result = handler(ctx, body) if authorizer is None else authorized_call(ctx, body, handler, authorizer)
        cls = result.__class__
        if cls is not dict and cls is not SplicedResponse and result is not None:
            if isinstance(result, Pending):
                if quota is not None:
                    quota.parked()
                return _answer_later(result, request, api, client_host, metrics, started, perf_counter(), quota)
            if inspect.isawaitable(result):
                if quota is not None:
                    quota.parked()
                return _finish_later(result, ctx, request, api, client_host, CLIENT_LISTENER.get(), metrics,
                                     started, perf_counter(), quota)
        parts = _encode(request, result, quota)  # type: ignore[arg-type]  # (not awaitable: checked above)
    except Exception as exc:
        metrics.request_done(api, started, None, True)
        return _failed(request, api, client_host, exc)
    metrics.request_done(api, started)
    return parts


def _encode(request: Request, data: ResponseData, quota: client_quotas.RequestQuota | None = None) -> Parts | None:
    if data is None:
        if quota is not None:  # acks=0: no response to carry the throttle time, the mute still applies
            quota.finish(0)
            quota.mute()
        return None
    if isinstance(data, SplicedResponse):  # Metadata: counted against request quotas like any other answer
        parts = encode_spliced(request.correlation_id, response_class(request.api_key, request.api_version), data)
    else:
        parts = encode_response_data(request.correlation_id, request.api_key, request.api_version, data)
    if quota is not None and quota.finish(sum(len(p) for p in parts)) > 0:
        throttled: ResponseData
        if isinstance(data, SplicedResponse):
            throttled = SplicedResponse(quota.throttled_response(request.body, data.data), data.field)
        else:
            throttled = quota.throttled_response(request.body, data)
        parts = _encode(request, throttled)  # type: ignore[assignment]  # (an answer: not None)
        quota.mute()
    return parts


async def _finish_later(pending: Awaitable[ResponseData], ctx: RequestContext, request: Request, api: str,
                        client_host: str, listener: str | None, metrics: Any, started: float, handled: float,
                        quota: client_quotas.RequestQuota | None = None) -> Parts | None:
    CLIENT_LISTENER.set(listener)  # the task running this has a context of its own
    CURRENT_REQUEST.set(ctx)
    try:
        parts = _encode(request, await pending, quota)
    except Exception as exc:
        metrics.request_done(api, started, handled, True)
        return _failed(request, api, client_host, exc)
    metrics.request_done(api, started, handled)
    return parts


def _answer_later(pending: Pending[ResponseData], request: Request, api: str, client_host: str, metrics: Any,
                  started: float, handled: float, quota: client_quotas.RequestQuota | None) -> Pending[Parts | None]:
    """`_finish_later` for a handler that answers from a callback (a parked Fetch): encoding and
    the metrics are one more synchronous step, run when the answer comes; no task."""

    def failed(exc: Exception) -> Parts | None:
        metrics.request_done(api, started, handled, True)
        return _failed(request, api, client_host, exc)

    def encode(data: ResponseData) -> Parts | None:
        try:
            parts = _encode(request, data, quota)
        except Exception as exc:
            return failed(exc)
        metrics.request_done(api, started, handled)
        return parts

    return pending.then(encode, failed)


def _failed(request: Request, api: str, client_host: str, exc: Exception) -> Parts | None:
    """Safety net for a handler that raised: the request gets an error response of its own
    and the connection and the node go on. An error that names its Kafka code (KafkaError,
    e.g. NOT_CONTROLLER) or a timeout (REQUEST_TIMED_OUT: the quorum did not commit in time)
    is an expected condition: one WARNING line. Anything else is a bug: one ERROR line with
    its traceback, and UNKNOWN_SERVER_ERROR."""
    if isinstance(exc, KafkaError | TimeoutError):
        code = exc.error_code if isinstance(exc, KafkaError) else ErrorCode.request_timed_out
        log.warning("%s v%d from %s: %s; answering %s", api, request.api_version, client_host,
                    str(exc) or type(exc).__name__, ErrorCode(code).name.upper())
        return _error(request, code, str(exc) or None)
    log.error("%s v%d from %s failed; answering UNKNOWN_SERVER_ERROR", api, request.api_version, client_host,
              exc_info=exc)
    return _error(request, ErrorCode.unknown_server_error, "unexpected server error")


def _error(request: Request, code: ErrorCode | int, message: str | None) -> Parts | None:
    if request.api_key == legacy_produce.PRODUCE_KEY and getattr(request.body, "acks", -1) == 0:
        return None  # acks=0: the client reads no response
    response = error_response(request.api_key, request.api_version, request.body, code, message)
    return encode_response(request.correlation_id, response)


def _unsupported_version(broker: Services, frame: bytes | memoryview, api_key: int, version: int,
                         correlation_id: int, client_host: str, role: ListenerRole) -> Parts | None:
    """Answer a request whose version we do not implement, as Kafka does."""
    log.warning("client %s sent api key %d at unsupported version %d", client_host, api_key, version)
    if api_key == API_VERSIONS_KEY:
        # KIP-511: a client newer than us gets a v0 reply with our ranges and retries.
        data = api_versions_data(broker, ErrorCode.unsupported_version, role=role)
        return encode_response(correlation_id, build_response(API_VERSIONS_KEY, 0, data))
    if api_key == legacy_produce.PRODUCE_KEY and version < 3:
        raw = legacy_produce.reject(frame, version, correlation_id)
        return [raw] if raw is not None else None
    try:
        if "error_code" not in {f.name for f in dataclasses.fields(response_class(api_key, version))}:
            raise LookupError("no top-level error code")
        return encode_response(correlation_id, error_response(api_key, version, None, ErrorCode.unsupported_version))
    except Exception:  # no schema for that version, or no top-level error code: Kafka's bare form
        return [encode_raw(correlation_id, _INT16.pack(ErrorCode.unsupported_version))]
