"""Client quota enforcement at dispatch (KIP-546 quotas, KIP-219 throttling).

`begin(ctx, request, frame_len)` is called for every request; it returns None at once when the
metadata image holds no client quota (the common case: nothing else is done). Otherwise it
records a Produce request's bytes against ``producer_byte_rate``, and `RequestQuota.finish`
records the Fetch response's bytes against ``consumer_byte_rate`` and the time the request took
to handle against ``request_percentage``. The largest throttle time earned is put in the
response's ``throttle_time_ms`` and the connection is muted for that long (``conn.throttle(ms)``):
the response goes out at once and the client's next request waits, as Kafka does since KIP-219.
A consumer's Fetch that earns a throttle time is answered as Kafka's
``fetchContext.getThrottledResponse`` does: no partitions (nothing read is sent, and its bytes are
taken back off the consumer's sensor: Kafka's ``unrecordQuotaSensor``), error NONE, the throttle
time, and the request's session id for an incremental fetch (0 otherwise).
Replication and quorum traffic (follower fetches, KRaft RPCs, cluster actions) is exempt.
"""

from __future__ import annotations

import dataclasses
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
        if self.ctx.api_key not in EXEMPT and not self.follower:
            busy = self.busy_s if self.busy_s is not None else time.perf_counter() - self.started
            percent = busy * 100.0  # % of one thread for a second
            self._record("request_percentage", percent, now)
        if self.ctx.api_key == FETCH and not self.follower:
            self._record("consumer_byte_rate", response_len, now)
            if self.throttle_ms > 0:  # answered empty: what was read is not sent (Kafka's unrecordQuotaSensor)
                self.manager.record(self.quotas, "consumer_byte_rate", self.user, self.client_id, -response_len, now)
        return self.throttle_ms

    def throttled_response(self, request: Any, data: Any) -> dict[str, Any]:
        """The answer to give instead of ``data`` now that this request earned a throttle time:
        ``data`` with the throttle time, or for a consumer's Fetch Kafka's throttled (empty) one."""
        throttle = max(self.throttle_ms, _ms(data.get("throttle_time")))
        if self.ctx.api_key != FETCH or self.follower:
            return {**data, "throttle_time": throttle}
        incremental = getattr(request, "session_epoch", 0) > 0
        return {"throttle_time": throttle, "error_code": 0, "responses": [],
                "session_id": getattr(request, "session_id", 0) if incremental else 0}

    def _record(self, kind: str, value: float, now: int) -> None:
        t = self.manager.record(self.quotas, kind, self.user, self.client_id, value, now)
        self.throttle_ms = max(self.throttle_ms, t)

    def limit_fetch(self, request: Any) -> Any:
        """A consumer's Fetch asks for at most what its quota lets through in one quota window
        (Kafka's ``getMaxValueInQuotaWindow``: quota * (windows - 1) * window size), so that one
        response can fit the quota at all instead of being answered empty again and again."""
        if self.ctx.api_key != FETCH or self.follower:
            return request
        found = self.manager.applicable(self.quotas, "consumer_byte_rate", self.user, self.client_id)
        if found is None:
            return request
        window = max(int(found[0] * (self.manager.num_samples - 1) * self.manager.window_ms / 1000), 1)
        if request.max_bytes <= window:
            return request
        return dataclasses.replace(request, max_bytes=window, min_bytes=min(request.min_bytes, window))

    def mute(self) -> None:
        throttle = getattr(self.ctx.connection, "throttle", None)
        if self.throttle_ms > 0 and throttle is not None:
            throttle(self.throttle_ms)


def _ms(value: Any) -> int:
    return int(value.total_seconds() * 1000) if hasattr(value, "total_seconds") else int(value or 0)


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

