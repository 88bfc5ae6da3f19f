"""Requests a KRaft-mode broker sends to the active controller (built with kio)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kio.schema.broker_heartbeat.v1.request import BrokerHeartbeatRequest
from kio.schema.broker_registration.v3.request import BrokerRegistrationRequest
from kio.schema.broker_registration.v3.request import Listener as RegistrationListener

if TYPE_CHECKING:
    from suoi.cluster.kraft import KRaftServices

PLAINTEXT = 0  # security protocol id


def registration_request(kraft: KRaftServices) -> BrokerRegistrationRequest:
    return BrokerRegistrationRequest(
        broker_id=kraft.node_id, cluster_id=kraft.broker.cluster_id, incarnation_id=kraft.incarnation_id,
        listeners=tuple(RegistrationListener(name=n, host=h, port=p, security_protocol=PLAINTEXT)
                        for n, h, p in kraft._listeners()),
        features=(), rack=kraft.settings.rack, log_dirs=(), previous_broker_epoch=-1,
    )


def heartbeat_request(kraft: KRaftServices, *, want_shutdown: bool) -> BrokerHeartbeatRequest:
    return BrokerHeartbeatRequest(
        broker_id=kraft.node_id, broker_epoch=kraft.broker_epoch,
        current_metadata_offset=kraft.image.offset, want_fence=False, want_shut_down=want_shutdown,
        offline_log_dirs=(),
    )
