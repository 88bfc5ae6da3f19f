"""Client quotas (KIP-55/KIP-546): which quota applies to a (user, client-id), and its sensor.

`ClientQuotas.record(kind, user, client_id, value, now_ms) -> throttle ms` for kind
``producer_byte_rate`` (bytes of Produce requests), ``consumer_byte_rate`` (bytes of Fetch
responses) or ``request_percentage`` (percent of one request thread). The quota comes from the
metadata image's `client_quotas` in Kafka's precedence order:

    (user, client-id), (user, default client-id), user,
    (default user, client-id), (default user, default client-id), default user,
    client-id, default client-id

and the sensor it is measured on is shared the way Kafka shares it: a user quota is measured
over all of that user's clients, a client-id quota over all users of that client id, a
(user, client-id) quota per pair; a default entity still measures each user/client on its own.
Sensors idle for an hour are dropped. Pure: the image's quotas and the time are passed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from suoi.quota.sampler import Rate, TokenBucket

__all__ = ["QUOTA_KINDS", "ClientQuotas", "quota_for"]

QUOTA_KINDS = ("producer_byte_rate", "consumer_byte_rate", "request_percentage", "controller_mutation_rate")
MUTATIONS = "controller_mutation_rate"
USER, CLIENT = "user", "client-id"
_IDLE_MS = 3_600_000

Entity = tuple[tuple[str, str | None], ...]
_UNKNOWN = object()


def _key(user: str | None | bool, client: str | None | bool) -> Entity:
    """An image key: parts sorted by type ("client-id" before "user"); False = no such part."""
    parts: list[tuple[str, str | None]] = []
    if client is not False:
        parts.append((CLIENT, client))  # type: ignore[arg-type]
    if user is not False:
        parts.append((USER, user))  # type: ignore[arg-type]
    return tuple(parts)


def quota_for(quotas: Mapping[Entity, Mapping[str, float]], kind: str, user: str, client_id: str
              ) -> tuple[float, tuple[str, str]] | None:
    """(quota, sensor key) for this user and client, or None when no quota applies."""
    order = (
        (_key(user, client_id), (user, client_id)), (_key(user, None), (user, client_id)),
        (_key(user, False), (user, "")),
        (_key(None, client_id), (user, client_id)), (_key(None, None), (user, client_id)),
        (_key(None, False), (user, "")),
        (_key(False, client_id), ("", client_id)), (_key(False, None), ("", client_id)),
    )
    for entity, sensor in order:
        value = quotas.get(entity, {}).get(kind)
        if value is not None:
            return value, sensor
    return None


@dataclass(slots=True)
class ClientQuotas:
    num_samples: int = 11
    window_ms: int = 1000
    _sensors: dict[tuple[str, str, str], Rate] = field(default_factory=dict)
    _buckets: dict[tuple[str, str], TokenBucket] = field(default_factory=dict)
    #: `quota_for`'s answers for the quotas mapping `_source` (an image's: a new image is a new
    #: mapping, so holding it and comparing identity is what invalidates them)
    _source: object = None
    _found: dict[tuple[str, str, str], tuple[float, tuple[str, str]] | None] = field(default_factory=dict)

    def applicable(self, quotas: Mapping[Entity, Mapping[str, float]], kind: str, user: str, client_id: str
                   ) -> tuple[float, tuple[str, str]] | None:
        """`quota_for`, remembered per (kind, user, client id) while ``quotas`` is the same
        mapping (every request of a client asks the same question; the answer walks 8 entities)."""
        if quotas is not self._source:
            self._source, self._found = quotas, {}
        key = (kind, user, client_id)
        found = self._found.get(key, _UNKNOWN)
        if found is _UNKNOWN:
            found = quota_for(quotas, kind, user, client_id)
            if len(self._found) >= 10_000:
                self._found = {}
            self._found[key] = found
        return found  # type: ignore[return-value]

    def record(self, quotas: Mapping[Entity, Mapping[str, float]], kind: str, user: str, client_id: str,
               value: float, now_ms: int) -> int:
        """Record ``value`` against the applicable quota; the throttle time it earns (0: none)."""
        found = self.applicable(quotas, kind, user, client_id)
        if found is None:
            return 0
        quota, (su, sc) = found
        key = (kind, su, sc)
        sensor = self._sensors.get(key)
        if sensor is None:
            if len(self._sensors) > 10_000:
                self._expire(now_ms)
            sensor = self._sensors[key] = Rate(self.num_samples, self.window_ms)
        sensor.record(value, now_ms)
        return sensor.throttle_ms(quota, now_ms)

    def record_mutations(self, quotas: Mapping[Entity, Mapping[str, float]], user: str, client_id: str,
                         partitions: int, now_ms: int, strict: bool) -> tuple[bool, int]:
        """KIP-599's ``controller_mutation_rate``: (admitted, throttle ms) for a mutation of
        ``partitions`` partitions. ``strict`` (CreateTopics v6+, CreatePartitions v3+,
        DeleteTopics v5+: Kafka's StrictControllerMutationQuota) refuses it while the quota is
        already exceeded (one request may still go over it); otherwise (older versions: the
        permissive quota) it is always admitted and recorded, and the response throttled."""
        found = self.applicable(quotas, MUTATIONS, user, client_id)
        if found is None:
            return True, 0
        quota, sensor = found
        bucket = self._buckets.get(sensor)
        if bucket is None:
            if len(self._buckets) > 10_000:
                self._buckets = {k: b for k, b in self._buckets.items() if now_ms - b.last_record_ms <= _IDLE_MS}
            bucket = self._buckets[sensor] = TokenBucket(self.num_samples, self.window_ms)
        if strict and bucket.exceeded(quota, now_ms):
            return False, bucket.throttle_ms(quota, now_ms)
        bucket.record(quota, partitions, now_ms)
        return True, 0 if strict else bucket.throttle_ms(quota, now_ms)

    def _expire(self, now_ms: int) -> None:
        for key in [k for k, s in self._sensors.items() if now_ms - s.last_record_ms > _IDLE_MS]:
            del self._sensors[key]
