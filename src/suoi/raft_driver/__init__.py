"""The asyncio driver of the sans-IO Raft core (``suoi.raft``) and its wire mapping.

See README.md. ``QuorumDriver`` runs one ``RaftNode`` over the network; ``codec`` maps Raft
messages to Kafka's KRaft RPCs (kio entities) and log entries to v2 record batches.
"""

from suoi.raft_driver.codec import METADATA_TOPIC, METADATA_TOPIC_ID, RaftCodecError
from suoi.raft_driver.driver import QuorumDriver, QuorumUnavailableError
from suoi.raft_driver.properties import parse_voters, raft_config_from_properties

__all__ = [
    "METADATA_TOPIC",
    "METADATA_TOPIC_ID",
    "QuorumDriver",
    "QuorumUnavailableError",
    "RaftCodecError",
    "parse_voters",
    "raft_config_from_properties",
]
