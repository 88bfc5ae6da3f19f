"""Requests a KRaft-mode broker sends to the active controller (built with kio)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from kio.schema.broker_heartbeat.v1.request import BrokerHeartbeatRequest
from kio.schema.broker_registration.v3.request import BrokerRegistrationRequest
from kio.schema.broker_registration.v3.request import Listener as RegistrationListener
from kio.schema.types import BrokerId
from kio.static.primitive import i16, i64, u16

from suoi.config_security import SECURITY_PROTOCOL_IDS, listener_protocol

if TYPE_CHECKING:
    from suoi.cluster.runtime_protocol import KRaftRuntime


def registration_request(kraft: KRaftRuntime) -> BrokerRegistrationRequest:
    """Each advertised listener with its security protocol (``listener.security.protocol.map``),
    as Kafka's broker registers them, and the epoch the last process on this data dir registered
    with (`suoi.cluster.previous_epoch`): after a crash, the controller lets it replace that
    registration at once instead of refusing it until the old session expires."""
    values = kraft.broker.config.values
    return BrokerRegistrationRequest(
        broker_id=BrokerId(kraft.node_id), cluster_id=kraft.broker.cluster_id, incarnation_id=kraft.incarnation_id,
        listeners=tuple(RegistrationListener(name=n, host=h, port=u16(p), security_protocol=i16(
            SECURITY_PROTOCOL_IDS[listener_protocol(values, n)])) for n, h, p in kraft.registration_listeners()),
        features=(), rack=kraft.settings.rack, log_dirs=(),
        previous_broker_epoch=i64(kraft.previous_broker_epoch),
    )


def heartbeat_request(kraft: KRaftRuntime, *, want_shutdown: bool) -> BrokerHeartbeatRequest:
    return BrokerHeartbeatRequest(
        broker_id=BrokerId(kraft.node_id), broker_epoch=i64(kraft.broker_epoch),
        current_metadata_offset=i64(kraft.image.offset), want_fence=False, want_shut_down=want_shutdown,
        offline_log_dirs=(),
    )


def lost_replicas_request(kraft: KRaftRuntime, partitions: list[tuple[str, int]]) -> Any:
    """AssignReplicasToDirs putting ``partitions`` in Kafka's LOST directory: their log dir failed
    (KIP-858), so the controller moves their leadership and ISR membership away from this broker."""
    from kio.schema.assign_replicas_to_dirs.v0.request import (
        AssignReplicasToDirsRequest,
        DirectoryData,
        PartitionData,
        TopicData,
    )
    from kio.static.primitive import i32

    by_topic: dict[Any, list[int]] = {}
    for topic, partition in partitions:
        image_topic = kraft.image.topic(topic)
        if image_topic is not None:
            by_topic.setdefault(image_topic.topic_id, []).append(partition)
    return AssignReplicasToDirsRequest(
        broker_id=BrokerId(kraft.node_id), broker_epoch=i64(kraft.broker_epoch),
        directories=(DirectoryData(id_=uuid.UUID(int=1), topics=tuple(
            TopicData(topic_id=tid, partitions=tuple(PartitionData(partition_index=i32(p)) for p in sorted(ps)))
            for tid, ps in by_topic.items())),))
