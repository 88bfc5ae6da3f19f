"""The consumer embedded protocol: what consumer-group members put in JoinGroup's
protocol metadata (their subscription) and in SyncGroup's assignments.

The broker treats both as opaque bytes for the group protocol itself; it only looks
inside for features Kafka defines on top (OffsetDelete's GROUP_SUBSCRIBED_TO_TOPIC).
Schemas come from kio; a version newer than we know is read with our newest schema,
which is how the format is designed to evolve (fields are only appended).
"""

from __future__ import annotations

import struct
from typing import Any

from kio.index import load_entity_schema
from kio.schema.consumer_protocol_subscription.v3.data import ConsumerProtocolSubscription as SubscriptionV3
from kio.serial import entity_reader
from kio.static.constants import EntityType

from suoi.protocol.bounds import check_body

_VERSION = struct.Struct(">h")
_MAX_KNOWN = 3


def subscribed_topics(metadata: bytes) -> list[str]:
    """Topics in a member's subscription; [] if the bytes are not a consumer subscription."""
    if len(metadata) < 2:
        return []
    (version,) = _VERSION.unpack_from(metadata, 0)
    try:
        schema = (load_entity_schema("consumer_protocol_subscription", min(max(version, 0), _MAX_KNOWN),
                                     EntityType.data) if version <= _MAX_KNOWN else SubscriptionV3)
        check_body(metadata, schema, 2)  # client bytes: lengths bounded before kio reads them
        subscription, _ = entity_reader(schema)(metadata, 2)
    except Exception:
        return []
    return [str(t) for t in getattr(subscription, "topics", ())]


def assigned_partitions(assignment: bytes) -> list[tuple[str, int]]:
    """(topic, partition) pairs of a member's SyncGroup assignment; [] if the bytes are not a
    consumer assignment (another protocol type, or a member not yet synced). The web console
    draws these as the seed's §4 picture."""
    if len(assignment) < 2:
        return []
    (version,) = _VERSION.unpack_from(assignment, 0)
    try:
        schema = load_entity_schema("consumer_protocol_assignment", min(max(version, 0), _MAX_KNOWN), EntityType.data)
        check_body(assignment, schema, 2)
        decoded: Any  # the schema's version is the client's: its class is known only at run time
        decoded, _ = entity_reader(schema)(assignment, 2)
    except Exception:
        return []
    return [(str(t.topic), int(p)) for t in decoded.assigned_partitions for p in t.partitions]
