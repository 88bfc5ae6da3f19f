"""Handler registry: api key -> (version range, handler).

A handler is `handler(ctx, request) -> dict | None | Awaitable[dict | None]`. The dict
describes the response in the most recent version's field names; `protocol.codec.build`
fits it to the version the client asked for. `None` means "send nothing" (acks=0). A
`protocol.splice.SplicedResponse` is such a dict with one array already (partly) encoded.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias

from suoi.api.listener_roles import ListenerRole
from suoi.protocol.splice import SplicedResponse

if TYPE_CHECKING:
    from suoi.services import Services

ResponseData: TypeAlias = dict[str, Any] | SplicedResponse | None

#: The listener the request being handled came in on (set by `dispatch` for the handler and any
#: task it starts): Metadata, FindCoordinator and DescribeCluster answer with the brokers'
#: addresses on that listener, as Kafka does, so an SSL client is sent to SSL ports.
CLIENT_LISTENER: ContextVar[str | None] = ContextVar("CLIENT_LISTENER", default=None)
#: The request being handled (set by `dispatch`, like CLIENT_LISTENER): a request it makes to the
#: controller is forwarded in an Envelope with its principal (`suoi.api.envelope`, KIP-590).
CURRENT_REQUEST: ContextVar[RequestContext | None] = ContextVar("CURRENT_REQUEST", default=None)
Handler: TypeAlias = Callable[["RequestContext", Any], ResponseData | Awaitable[ResponseData]]


class RequestContext(NamedTuple):
    """What a handler may know about the request besides its body. A tuple, read only:
    `dispatch` makes one per request with `tuple.__new__` (a dataclass's or a NamedTuple's
    own constructor is a Python-level call)."""

    services: Services
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    client_host: str
    #: The connection the request came on (``suoi.net.server.KafkaConnection``), for handlers
    #: that must learn when it closes (the controller watching brokers); None in unit tests.
    connection: Any = None
    #: the role of the listener it came on (a CONTROLLER listener serves the controller's APIs)
    listener_role: ListenerRole = ListenerRole.CLIENT


@dataclass(frozen=True, slots=True)
class ApiSpec:
    api_key: int
    name: str
    min_version: int
    max_version: int
    handler: Handler
    advertised_min: int  # what ApiVersions says; below min_version the handler rejects

    def supports(self, version: int) -> bool:
        return self.min_version <= version <= self.max_version


REGISTRY: dict[int, ApiSpec] = {}


def api(
    api_key: int, name: str, min_version: int, max_version: int, *, advertised_min: int | None = None
) -> Callable[[Handler], Handler]:
    """Register a handler for `api_key` in [min_version, max_version]."""

    def register(fn: Handler) -> Handler:
        if api_key in REGISTRY:
            raise RuntimeError(f"api key {api_key} registered twice")
        REGISTRY[api_key] = ApiSpec(
            api_key, name, min_version, max_version, fn,
            min_version if advertised_min is None else advertised_min,
        )
        return fn

    return register
