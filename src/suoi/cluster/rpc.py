"""Requests a KRaft-mode broker sends to the active controller (built with kio)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kio.schema.broker_heartbeat.v1.request import BrokerHeartbeatRequest
from kio.schema.broker_registration.v3.request import BrokerRegistrationRequest
from kio.schema.broker_registration.v3.request import Listener as RegistrationListener
from kio.schema.types import BrokerId
from kio.static.primitive import i16, i64, u16

if TYPE_CHECKING:
    from suoi.cluster.kraft import KRaftServices

PLAINTEXT = 0  # security protocol id


def registration_request(kraft: KRaftServices) -> BrokerRegistrationRequest:
    return BrokerRegistrationRequest(
        broker_id=BrokerId(kraft.node_id), cluster_id=kraft.broker.cluster_id, incarnation_id=kraft.incarnation_id,
        listeners=tuple(RegistrationListener(name=n, host=h, port=u16(p), security_protocol=i16(PLAINTEXT))
                        for n, h, p in kraft._listeners()),
        features=(), rack=kraft.settings.rack, log_dirs=(), previous_broker_epoch=i64(-1),
    )


def heartbeat_request(kraft: KRaftServices, *, want_shutdown: bool) -> BrokerHeartbeatRequest:
    return BrokerHeartbeatRequest(
        broker_id=BrokerId(kraft.node_id), broker_epoch=i64(kraft.broker_epoch),
        current_metadata_offset=i64(kraft.image.offset), want_fence=False, want_shut_down=want_shutdown,
        offline_log_dirs=(),
    )
