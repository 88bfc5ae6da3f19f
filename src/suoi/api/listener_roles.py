"""Listener roles: a CONTROLLER listener serves only the controller's APIs.

Kafka runs two request handlers: `KafkaApis` on client (broker) listeners and `ControllerApis`
on the listeners named in `controller.listener.names`. Each API's schema lists the listeners
that serve it ("broker", "controller"); ApiVersions on a listener advertises exactly those, and
a request for an API not enabled on the listener makes Kafka's SocketServer close the
connection. suoi does the same: `dispatch` refuses a client API on a CONTROLLER listener by
closing the connection (one WARNING line), for the same reason an unknown api key is closed:
the listener has no answer to give that API, and a well-behaved client never sends it because
ApiVersions did not advertise it. Fetch is served there only for the metadata topic
(`__cluster_metadata`, Raft replication); a Fetch of a data topic is refused the same way.
"""

from __future__ import annotations

import enum

__all__ = ["CONTROLLER_APIS", "FORWARDABLE", "ListenerRole", "serves"]


class ListenerRole(enum.Enum):
    """Which request handler a listener is (Kafka's KafkaApis or ControllerApis)."""

    CLIENT = "client"
    CONTROLLER = "controller"


#: Admin requests a broker forwards to the active controller (in an Envelope, KIP-590) without
#: deciding anything itself, authorization included: Kafka's KafkaApis `maybeForwardToController`
#: (CreateTopics, DeleteTopics, CreateAcls, DeleteAcls, CreatePartitions, ElectLeaders,
#: AlterPartitionReassignments, ListPartitionReassignments, AlterClientQuotas,
#: AlterUserScramCredentials, UpdateFeatures) and the (Incremental)AlterConfigs it forwards after
#: validating its own broker resource.
FORWARDABLE: frozenset[int] = frozenset({19, 20, 30, 31, 33, 37, 43, 44, 45, 46, 49, 51, 57})


#: The API keys of Kafka's ControllerApis (their schemas' "controller" listener).
CONTROLLER_APIS: frozenset[int] = frozenset({
    1,   # Fetch (metadata topic only: Raft replication from voters and observers)
    17,  # SaslHandshake
    18,  # ApiVersions
    19,  # CreateTopics
    20,  # DeleteTopics
    29,  # DescribeAcls
    30,  # CreateAcls
    31,  # DeleteAcls
    32,  # DescribeConfigs
    33,  # AlterConfigs
    36,  # SaslAuthenticate
    37,  # CreatePartitions
    43,  # ElectLeaders
    44,  # IncrementalAlterConfigs
    45,  # AlterPartitionReassignments
    46,  # ListPartitionReassignments
    49,  # AlterClientQuotas
    51,  # AlterUserScramCredentials
    52,  # Vote
    53,  # BeginQuorumEpoch
    54,  # EndQuorumEpoch
    55,  # DescribeQuorum
    56,  # AlterPartition
    57,  # UpdateFeatures
    58,  # Envelope
    59,  # FetchSnapshot
    60,  # DescribeCluster (KIP-919: admin clients with --bootstrap-controller)
    62,  # BrokerRegistration
    63,  # BrokerHeartbeat
    64,  # UnregisterBroker
    67,  # AllocateProducerIds
    70,  # ControllerRegistration
    73,  # AssignReplicasToDirs
    80,  # AddRaftVoter
    81,  # RemoveRaftVoter
    82,  # UpdateRaftVoter
})


def serves(role: ListenerRole, api_key: int) -> bool:
    """Whether a listener of `role` serves `api_key` at all (a client listener serves every
    registered API; the KRaft RPCs answer there with their own errors, as in Kafka's brokers)."""
    return role is ListenerRole.CLIENT or api_key in CONTROLLER_APIS
