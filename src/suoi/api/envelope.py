"""Envelope (key 58, KIP-590): a client's admin request forwarded to the active controller with
the client's principal, so that the controller authorizes the real user, not the broker.

Forwarding side (`call`): while a client request is handled (`CURRENT_REQUEST`, set by
`dispatch`), a request sent to the controller is wrapped as Kafka's ForwardingManager does: the
client's request header (its client id and correlation id) and body, its principal serialized as
Kafka's ``DefaultPrincipalData`` (version-prefixed), and its IP address. The envelope's own
errors are the forwarding's: NOT_CONTROLLER makes `call_controller` ask again; any other means a
misconfigured peer and is raised (the client gets the handler's failure answer). A throttle time
in the controller's answer (its quotas, e.g. controller_mutation_rate) mutes the client's
connection here, where the client is connected (KIP-219).

A client's forwardable request is always sent on (`forwards`), also by the active controller's
own node (in process), and never authorized on the client listener: as Kafka's broker, the node
does not decide from its own, possibly older, ACLs; the controller authorizes the Envelope's
principal and its per-topic/per-resource error codes come back unchanged.

Controller side (`handle_envelope`): only the active controller answers (others NOT_CONTROLLER),
only on a controller listener or in process; the sender must have CLUSTER_ACTION on the cluster
(`authorization.RULES`); the inner request must be one Kafka forwards (else INVALID_REQUEST). The
inner request goes through `dispatch` again with the client's principal and address
(`ForwardedConnection`): authorization, quotas and the handler are the same as for a client
connected to the controller, and the broker's CLUSTER_ACTION does not stand in for the client.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import struct
from io import BytesIO
from typing import Any

from kio.schema.default_principal_data.v0.data import DefaultPrincipalData
from kio.schema.envelope.v0.request import EnvelopeRequest
from kio.serial import entity_reader, entity_writer

from suoi.api.authorization import host_of, principal_of
from suoi.api.listener_roles import FORWARDABLE, ListenerRole
from suoi.api.registry import CURRENT_REQUEST, RequestContext, api
from suoi.model import ErrorCode
from suoi.model.errors import NotControllerError
from suoi.protocol.codec import decode_response, encode_request, read_prefix, response_class
from suoi.protocol.file_records import joined

__all__ = ["FORWARDABLE", "ForwardedConnection", "call", "deserialize_principal", "forwards", "serialize_principal"]

log = logging.getLogger("suoi.api")
_VERSION = struct.Struct(">h")


@dataclasses.dataclass(slots=True)
class ForwardedConnection:
    """What the inner request's handlers see as its connection: the client's principal, no socket
    (a forwarded request is never muted here: its throttle time goes back in its response)."""

    principal: str
    forwarded: bool = True
    security: Any = None
    close_callbacks: dict[Any, Any] = dataclasses.field(default_factory=dict)


def serialize_principal(principal: str) -> bytes:
    """Kafka's DefaultKafkaPrincipalBuilder.serialize: int16 version, then DefaultPrincipalData."""
    type_, _, name = principal.partition(":")
    out = BytesIO()
    out.write(_VERSION.pack(0))
    entity_writer(DefaultPrincipalData)(out, DefaultPrincipalData(type_=type_, name=name, token_authenticated=False))
    return out.getvalue()


def deserialize_principal(data: bytes) -> str:
    """``Type:name``; ValueError for bytes that are not a DefaultPrincipalData v0."""
    if len(data) < 2 or _VERSION.unpack_from(data)[0] != 0:
        raise ValueError("not a version 0 DefaultPrincipalData")
    try:
        principal, used = entity_reader(DefaultPrincipalData)(data, 2)
    except Exception as exc:  # kio raises several types for short/garbled input
        raise ValueError(f"undecodable DefaultPrincipalData: {type(exc).__name__}") from None
    if used != len(data) - 2 or not principal.type_:
        raise ValueError("malformed DefaultPrincipalData")
    return f"{principal.type_}:{principal.name}"


def _address(host: str) -> bytes:
    try:
        return ipaddress.ip_address(host.strip("[]")).packed
    except ValueError:  # an in-process caller: no address
        return ipaddress.ip_address("127.0.0.1").packed


def forwards(kraft: Any) -> bool:
    """Whether the admin request being handled goes to the active controller (`call`) instead of
    running here: when this node is not the active controller, and for a client's request on a
    client listener always, even when this node's own controller is active (in process then), as
    Kafka's broker forwards to its controller: the controller decides, authorization included
    (`authorization.check` leaves these to it), with the client's principal from the Envelope."""
    if kraft.controller is None:
        return True
    ctx = CURRENT_REQUEST.get()
    return ctx is not None and ctx.listener_role is ListenerRole.CLIENT and ctx.api_key in FORWARDABLE


async def call(kraft: Any, request: Any) -> Any:
    """``kraft.call_controller(request)``, in an Envelope when a client's request is being handled."""
    ctx = CURRENT_REQUEST.get()
    cls = type(request)
    if ctx is not None and getattr(ctx.connection, "forwarded", False):
        # an Envelope's inner request on a node that lost the controller role meanwhile: never sent
        # on as this node's own request (its principal would stand in for the client's)
        raise NotControllerError(f"node {ctx.services.node_id} is no longer the active controller")
    if ctx is None or ctx.listener_role is not ListenerRole.CLIENT or cls.__api_key__ not in FORWARDABLE:
        return await kraft.call_controller(request)
    envelope = EnvelopeRequest(
        request_data=encode_request(ctx.correlation_id, ctx.client_id, request)[4:],
        request_principal=serialize_principal(principal_of(ctx.connection)),
        client_host_address=_address(host_of(ctx)))
    response = await kraft.call_controller(envelope)
    if response.error_code != ErrorCode.none or response.response_data is None:
        raise RuntimeError(f"the controller refused the forwarded {cls.__name__}: "
                           f"{ErrorCode(response.error_code).name.upper()}")
    answer = decode_response(response.response_data, response_class(cls.__api_key__, cls.__version__))
    throttle = getattr(answer, "throttle_time", None)
    mute = getattr(ctx.connection, "throttle", None)
    if throttle is not None and mute is not None and throttle.total_seconds() > 0:
        mute(int(throttle.total_seconds() * 1000))  # the controller's quota throttled it: the client waits here
    return answer


@api(58, "Envelope", 0, 0)
def handle_envelope(ctx: RequestContext, request: Any) -> Any:
    def refused(code: ErrorCode, why: str) -> dict[str, Any]:
        log.warning("Envelope from %s refused (%s): %s", ctx.client_host, code.name.upper(), why)
        return {"error_code": code, "response_data": None}

    if ctx.connection is not None and ctx.listener_role is not ListenerRole.CONTROLLER:
        return refused(ErrorCode.invalid_request, "an Envelope is served on controller listeners only")
    if ctx.services.kraft.controller is None:
        return {"error_code": ErrorCode.not_controller, "response_data": None}
    try:
        principal = deserialize_principal(request.request_principal or b"")
    except ValueError as exc:
        return refused(ErrorCode.principal_deserialization_failure, str(exc))
    try:
        inner_key = read_prefix(request.request_data).api_key
        host = str(ipaddress.ip_address(request.client_host_address))
    except Exception as exc:  # a short frame, an address of the wrong length
        return refused(ErrorCode.invalid_request, type(exc).__name__)
    if inner_key not in FORWARDABLE:
        return refused(ErrorCode.invalid_request, f"api key {inner_key} is not forwarded")
    from suoi.api.dispatch import ProtocolViolation, dispatch  # dispatch imports the handlers

    try:
        outcome = dispatch(ctx.services, request.request_data, host, ForwardedConnection(principal),
                           role=ListenerRole.CONTROLLER)
    except ProtocolViolation as exc:
        return refused(ErrorCode.invalid_request, exc.reason)

    async def later() -> dict[str, Any]:
        parts = await outcome if outcome is not None and not isinstance(outcome, list) else outcome
        if parts is None:
            return {"error_code": ErrorCode.unknown_server_error, "response_data": None}
        return {"error_code": ErrorCode.none, "response_data": joined(parts)[4:]}

    return later()
