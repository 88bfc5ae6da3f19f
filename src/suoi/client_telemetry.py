"""Client telemetry (KIP-714): client instances, their subscriptions and the metrics they push.

Each node keeps, in memory, the client instances that asked it for subscriptions
(GetTelemetrySubscriptions) and the last metrics each pushed (PushTelemetry): the payload as
sent (compressed bytes, codec, content type ``application/x-protobuf`` = OTLP MetricsData),
when, and how many pushes so far. A metrics endpoint can expose `instances()`; decoding OTLP is
left to it. The subscriptions themselves are CLIENT_METRICS config resources in the metadata
log (`suoi.controller.client_metrics`); with none, clients are told to push nothing.

The rules are Kafka's ClientMetricsManager's: a client instance id is assigned on the first
Get (zero uuid); the subscription id is a checksum of what the client must push, so it changes
when the matching subscriptions change and the client's next push gets UNKNOWN_SUBSCRIPTION_ID
(it then asks again); a push sooner than the push interval after the previous one is
THROTTLING_QUOTA_EXCEEDED (unless it is the first after a Get, or terminating); after a
terminating push the instance accepts no more; a payload over ``telemetry_max_bytes`` is
TELEMETRY_TOO_LARGE, one that does not decompress or is not a protobuf message INVALID_RECORD.
Sans-IO: time is passed in.
"""

from __future__ import annotations

import collections
import logging
import uuid
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from suoi.controller.client_metrics import DEFAULT_INTERVAL_MS, Subscription
from suoi.model import ErrorCode
from suoi.protocol.compression import GZIP, LZ4, NONE, SNAPPY, ZSTD, UnsupportedCompressionError, decompress

__all__ = ["ACCEPTED_COMPRESSION_TYPES", "ClientInstance", "ClientTelemetry", "TelemetryError"]

log = logging.getLogger("suoi.telemetry")

#: Kafka's order of preference (ClientTelemetryUtils.SUPPORTED_COMPRESSION_TYPES).
ACCEPTED_COMPRESSION_TYPES = (ZSTD, LZ4, GZIP, SNAPPY)
CONTENT_TYPE = "application/x-protobuf"  # OTLP MetricsData (KIP-714)
TELEMETRY_MAX_BYTES = 1024 * 1024  # Kafka's telemetry.max.bytes default
MAX_INSTANCES = 10_000  # the least recently seen are forgotten beyond this


class TelemetryError(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(slots=True)
class ClientInstance:
    client_instance_id: uuid.UUID
    #: client_id, client_software_name/version, client_source_address/port (for `match`).
    attributes: dict[str, str]
    subscription_id: int = 0
    metrics: tuple[str, ...] = ()
    push_interval_ms: int = DEFAULT_INTERVAL_MS
    terminating: bool = False
    last_get_ms: int = -1
    last_push_ms: int = -1
    pushes: int = 0
    #: The last pushed payload as sent, its codec and content type.
    last_metrics: bytes = b""
    compression_type: int = NONE
    content_type: str = CONTENT_TYPE
    subscriptions: tuple[str, ...] = field(default=())


def _subscription_id(metrics: Sequence[str], interval_ms: int, instance: uuid.UUID) -> int:
    digest = zlib.crc32(f"{','.join(metrics)}|{interval_ms}|{instance}".encode())
    return digest - (1 << 32) if digest >= 1 << 31 else digest


def _is_protobuf(data: bytes) -> bool:
    """Whether ``data`` parses as a protobuf message's wire format (fields, lengths in bounds)."""
    i, n = 0, len(data)

    def varint() -> int:
        nonlocal i
        shift = value = 0
        while i < n and shift < 70:
            b = data[i]
            i += 1
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7
        raise ValueError("truncated varint")

    try:
        while i < n:
            key = varint()
            wire, number = key & 7, key >> 3
            if number == 0:
                return False
            if wire == 0:
                varint()
            elif wire == 1:
                i += 8
            elif wire == 2:
                length = varint()  # (not `i += varint()`: that adds to the value of i from before the call)
                i += length
            elif wire == 5:
                i += 4
            else:
                return False
            if i > n:
                return False
    except ValueError:
        return False
    return True


class ClientTelemetry:
    def __init__(self, *, max_bytes: int = TELEMETRY_MAX_BYTES, max_instances: int = MAX_INSTANCES) -> None:
        self.max_bytes = max_bytes
        self._max_instances = max_instances
        self._instances: collections.OrderedDict[uuid.UUID, ClientInstance] = collections.OrderedDict()

    def instances(self) -> list[ClientInstance]:
        return list(self._instances.values())

    def instance(self, client_instance_id: uuid.UUID) -> ClientInstance | None:
        return self._instances.get(client_instance_id)

    def _touch(self, instance: ClientInstance) -> None:
        self._instances[instance.client_instance_id] = instance
        self._instances.move_to_end(instance.client_instance_id)
        while len(self._instances) > self._max_instances:
            self._instances.popitem(last=False)

    def get_subscriptions(self, client_instance_id: uuid.UUID | None, attributes: Mapping[str, str],
                          subscriptions: Sequence[Subscription], now_ms: int) -> ClientInstance:
        """GetTelemetrySubscriptions: the instance (new id for a zero one) with its current
        subscription: the union of the metrics of every matching subscription, the shortest
        of their intervals; no match = push nothing."""
        if client_instance_id is None or client_instance_id.int == 0:
            client_instance_id = uuid.uuid4()
        instance = self._instances.get(client_instance_id)
        attrs = dict(attributes) | {"client_instance_id": str(client_instance_id)}
        if instance is None:
            instance = ClientInstance(client_instance_id, attrs)
        instance.attributes = attrs
        matched = [s for s in subscriptions if s.matches(attrs)]
        metrics = sorted({m for s in matched for m in s.metrics})
        instance.metrics = ("*",) if "*" in metrics else tuple(metrics)
        instance.push_interval_ms = min((s.interval_ms for s in matched), default=DEFAULT_INTERVAL_MS)
        instance.subscriptions = tuple(s.name for s in matched)
        instance.subscription_id = _subscription_id(instance.metrics, instance.push_interval_ms, client_instance_id)
        instance.last_get_ms = now_ms
        self._touch(instance)
        return instance

    def push(self, client_instance_id: uuid.UUID | None, subscription_id: int, terminating: bool,
             compression_type: int, metrics: bytes, now_ms: int) -> ClientInstance:
        """PushTelemetry: keep the payload or raise TelemetryError with Kafka's code."""
        if client_instance_id is None or client_instance_id.int == 0:
            raise TelemetryError(ErrorCode.invalid_request,
                                 "Invalid request from the client, client instance id is not set")
        instance = self._instances.get(client_instance_id)
        if instance is None or subscription_id != instance.subscription_id:
            raise TelemetryError(ErrorCode.unknown_subscription_id,
                                 f"Unknown client subscription id for the client: {client_instance_id}")
        if instance.terminating:
            raise TelemetryError(ErrorCode.invalid_request,
                                 f"Client {client_instance_id} sent a push after its terminating push")
        # The first push after a Get may come early (the client adds jitter to the interval).
        early = (instance.last_get_ms <= instance.last_push_ms
                 and now_ms - max(instance.last_get_ms, instance.last_push_ms) < instance.push_interval_ms)
        if early and not terminating:
            raise TelemetryError(ErrorCode.throttling_quota_exceeded, "Request from the client is throttled")
        if compression_type != NONE and compression_type not in ACCEPTED_COMPRESSION_TYPES:
            raise TelemetryError(ErrorCode.unsupported_compression_type,
                                 f"Unknown compression type {compression_type}")
        instance.last_push_ms = now_ms
        if terminating:
            instance.terminating = True
        if len(metrics) > self.max_bytes:
            raise TelemetryError(ErrorCode.telemetry_too_large,
                                 f"Telemetry request of {len(metrics)} bytes is larger than {self.max_bytes}")
        if metrics:
            try:
                decoded = decompress(compression_type, metrics)
            except UnsupportedCompressionError as exc:
                raise TelemetryError(ErrorCode.invalid_record, f"Cannot decompress the metrics: {exc}") from None
            if not _is_protobuf(decoded):
                raise TelemetryError(ErrorCode.invalid_record, "The metrics are not an OTLP protobuf message")
            instance.last_metrics, instance.compression_type = bytes(metrics), compression_type
            instance.pushes += 1
        self._touch(instance)
        return instance
