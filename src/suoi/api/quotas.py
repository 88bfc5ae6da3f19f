"""Client quota enforcement at dispatch (KIP-546 quotas, KIP-219 throttling).

`begin(ctx, request, frame_len)` is called for every request; it returns None at once when the
metadata image holds no client quota (the common case: nothing else is done). Otherwise it
records a Produce request's bytes against ``producer_byte_rate``, and `RequestQuota.finish`
records the Fetch response's bytes against ``consumer_byte_rate`` and the time the request took
to handle against ``request_percentage``. The largest throttle time earned is put in the
response's ``throttle_time_ms`` and the connection is muted for that long (``conn.throttle(ms)``):
the response goes out at once and the client's next request waits, as Kafka does since KIP-219.
Replication and quorum traffic (follower fetches, KRaft RPCs, cluster actions) is exempt.
Differences from Kafka: a throttled Fetch still carries its records (Kafka answers it empty), so
a consumer's rate converges to its quota over the window instead of per response.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from suoi.api.authorization import principal_of, replica_id_of
from suoi.api.registry import RequestContext
from suoi.quota import ClientQuotas

__all__ = ["RequestQuota", "begin"]

PRODUCE, FETCH = 0, 1
#: Inter-broker and quorum APIs: never throttled (Kafka exempts cluster actions).
EXEMPT = frozenset({23, 27, 52, 53, 54, 56, 59, 62, 63, 64, 67, 73})


@dataclass(slots=True)
class RequestQuota:
    ctx: RequestContext
    manager: ClientQuotas
    quotas: Any
    user: str
    client_id: str
    started: float
    follower: bool
    throttle_ms: int = 0
    #: seconds the handler ran before returning an awaitable (a long-poll's wait is not work)
    busy_s: float | None = None

    def parked(self) -> None:
        """The handler returned an awaitable: what follows is waiting, not request-thread time."""
        self.busy_s = time.perf_counter() - self.started

    def finish(self, response_len: int) -> int:
        """The throttle time of this request (0: none), recording its response and handling time."""
        now = self.ctx.services.now_ms()
        if self.ctx.api_key == FETCH and not self.follower:
            self._record("consumer_byte_rate", response_len, now)
        if self.ctx.api_key not in EXEMPT and not self.follower:
            busy = self.busy_s if self.busy_s is not None else time.perf_counter() - self.started
            percent = busy * 100.0  # % of one thread for a second
            self._record("request_percentage", percent, now)
        return self.throttle_ms

    def _record(self, kind: str, value: float, now: int) -> None:
        t = self.manager.record(self.quotas, kind, self.user, self.client_id, value, now)
        self.throttle_ms = max(self.throttle_ms, t)

    def mute(self) -> None:
        throttle = getattr(self.ctx.connection, "throttle", None)
        if self.throttle_ms > 0 and throttle is not None:
            throttle(self.throttle_ms)


def begin(ctx: RequestContext, request: Any, frame_len: int) -> RequestQuota | None:
    kraft = getattr(ctx.services, "kraft", None)
    manager = getattr(ctx.services, "quotas", None)
    if kraft is None or manager is None or not kraft.image.client_quotas:
        return None
    principal = principal_of(ctx.connection)
    user = principal.split(":", 1)[1] if ":" in principal else principal
    follower = ctx.api_key == FETCH and replica_id_of(request) >= 0
    quota = RequestQuota(ctx, manager, kraft.image.client_quotas, user, ctx.client_id or "", time.perf_counter(),
                         follower)
    if ctx.api_key == PRODUCE:
        quota._record("producer_byte_rate", frame_len, ctx.services.now_ms())
    return quota

