"""Metadata records: the payloads of the ``__cluster_metadata`` Raft log (our own JSON format).

The one import for code that writes or replays metadata: the record types
(``record_types.py``) and their encoding as Raft entries (``record_codec.py``) under one name,
so callers need not know where the line between them runs. See README.md for every field.
"""

from __future__ import annotations

from suoi.controller.record_codec import (
    BATCH_VERSION,
    decode_batch,
    decode_record,
    encode_batch,
    encode_record,
    record_from_dict,
    record_to_dict,
)
from suoi.controller.record_types import (
    NO_LEADER,
    AccessControlEntry,
    BeginControlledShutdown,
    ClientQuota,
    Config,
    FeatureLevel,
    FenceBroker,
    Listener,
    MetadataRecordError,
    Partition,
    PartitionChange,
    ProducerIds,
    Record,
    RegisterBroker,
    RemoveAccessControlEntry,
    RemoveTopic,
    RemoveUserScramCredential,
    Topic,
    UnfenceBroker,
    UnregisterBroker,
    UserScramCredential,
)

__all__ = [
    "BATCH_VERSION",
    "NO_LEADER",
    "AccessControlEntry",
    "BeginControlledShutdown",
    "ClientQuota",
    "Config",
    "FeatureLevel",
    "FenceBroker",
    "Listener",
    "MetadataRecordError",
    "Partition",
    "PartitionChange",
    "ProducerIds",
    "Record",
    "RegisterBroker",
    "RemoveAccessControlEntry",
    "RemoveTopic",
    "RemoveUserScramCredential",
    "Topic",
    "UnfenceBroker",
    "UnregisterBroker",
    "UserScramCredential",
    "decode_batch",
    "decode_record",
    "encode_batch",
    "encode_record",
    "record_from_dict",
    "record_to_dict",
]
