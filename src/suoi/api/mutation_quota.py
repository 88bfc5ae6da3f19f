"""``controller_mutation_rate`` (KIP-599) for CreateTopics, CreatePartitions and DeleteTopics.

Each topic of the request is a mutation of as many partitions as it creates or deletes, measured
on the (user, client-id)'s token bucket (`suoi.quota.ClientQuotas.record_mutations`). From
CreateTopics v6, CreatePartitions v3 and DeleteTopics v5 the quota is strict: while it is
exceeded, a topic is answered THROTTLING_QUOTA_EXCEEDED (the others of the request go on, as
Kafka's ReplicationControlManager decides topic by topic) and the response carries the time
until the bucket is back at zero. Older versions cannot carry that error: their topics are all
done and the response is throttled (throttle_time_ms and the connection muted) instead.

Measured where Kafka measures it: on the active controller, so a client's rate is the same
whichever node it sends to. A request forwarded in an Envelope is measured there with the
client's principal and client id; the forwarding node relays the throttle time and mutes the
client's connection (`suoi.api.envelope`). A node that forwards does not measure (a client's
request is always forwarded, to this node's own controller too); a broker's own requests to the
controller (not enveloped) are not measured. Topics with nothing to mutate (an
existing topic to create, an unknown one to delete) use no tokens, so they still get their own
error (TOPIC_ALREADY_EXISTS...). A validate_only request mutates nothing and is not counted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from suoi.api.authorization import Split
from suoi.api.enforcement import split_call
from suoi.api.registry import RequestContext, ResponseData
from suoi.model import ErrorCode

if TYPE_CHECKING:
    from suoi.api.quotas import RequestQuota

__all__ = ["APIS", "limited"]

CREATE_TOPICS, DELETE_TOPICS, CREATE_PARTITIONS = 19, 20, 37
#: api key -> first version answered THROTTLING_QUOTA_EXCEEDED (Kafka's strictSinceVersion)
APIS = {CREATE_TOPICS: 6, CREATE_PARTITIONS: 3, DELETE_TOPICS: 5}
MESSAGE = "The throttling quota has been exceeded."

Handler = Callable[[RequestContext, Any], ResponseData | Awaitable[ResponseData]]


def limited(quota: RequestQuota, handler: Handler) -> Handler:
    """``handler`` with the request's topics measured against the controller mutation quota."""

    def call(ctx: RequestContext, body: Any) -> ResponseData | Awaitable[ResponseData]:
        forwarded = getattr(ctx.connection, "forwarded", False)
        if ctx.services.kraft.controller is None or getattr(body, "validate_only", False) or not forwarded:
            return handler(ctx, body)  # a client's request is measured once, in its Envelope
        strict = ctx.api_version >= APIS[ctx.api_key]
        now = ctx.services.now_ms()
        denied: dict[int, int] = {}
        for i, partitions in enumerate(_partitions(ctx, body)):
            if partitions <= 0:
                continue
            admitted, throttle = quota.manager.record_mutations(quota.quotas, quota.user, quota.client_id,
                                                                partitions, now, strict)
            quota.throttle_ms = max(quota.throttle_ms, throttle)
            if not admitted:
                denied[i] = ErrorCode.throttling_quota_exceeded
        if not denied:
            return handler(ctx, body)
        return split_call(ctx, body, handler, Split(denied), MESSAGE)

    return call


def _partitions(ctx: RequestContext, body: Any) -> list[int]:
    """How many partitions each element of the request's topic array creates or deletes."""
    image = ctx.services.kraft.image

    def count(name: str | None, topic_id: Any = None) -> int:
        topic = image.topic(name) if name else image.topics.get(topic_id) if topic_id else None
        return len(topic.partitions) if topic is not None else 0

    if ctx.api_key == CREATE_TOPICS:
        default = ctx.services.config.get_int("num.partitions")
        return [0 if image.topic(t.name) is not None else
                len(t.assignments) if t.assignments else default if t.num_partitions == -1 else t.num_partitions
                for t in body.topics]
    if ctx.api_key == CREATE_PARTITIONS:
        return [max(t.count - count(t.name), 0) if count(t.name) else 0 for t in body.topics]
    if ctx.api_version < 6:
        return [count(name) for name in body.topic_names]
    return [count(t.name, t.topic_id) for t in body.topics]
