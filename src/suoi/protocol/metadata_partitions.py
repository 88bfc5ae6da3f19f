"""The partitions array of a Metadata answer's topic, encoded by the compiled kio writer.

The first Metadata request after any change of a topic of 1,000 partitions encodes 1,000
MetadataResponsePartition elements (later ones reuse the topic's encoding, see
`api.metadata_cache`). They are built straight from `PartitionRow` tuples (no dict per
partition) and written by `compiled_writer`, the writer generated once from kio's schema of
that version's partition class. tests/unit/protocol/test_metadata_partitions.py checks it byte
for byte against kio's own writer for every version (0-13).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from functools import cache
from io import BytesIO
from typing import Any, NamedTuple

from suoi.model import ErrorCode
from suoi.protocol.codec import response_class
from suoi.protocol.compiled_writer import compiled_writer
from suoi.protocol.splice import element_class

METADATA_KEY = 3


class PartitionRow(NamedTuple):
    error_code: int
    partition_index: int
    leader_id: int
    leader_epoch: int
    replica_nodes: Sequence[int]
    isr_nodes: Sequence[int]
    offline_replicas: Sequence[int]


@cache
def _partition_class(version: int) -> tuple[type, frozenset[str]]:
    cls = element_class(element_class(response_class(METADATA_KEY, version), "topics"), "partitions")
    return cls, frozenset(f.name for f in dataclasses.fields(cls))


def encode_partitions(version: int, rows: Iterable[PartitionRow]) -> bytes:
    """The elements of MetadataResponseTopic.partitions at `version` (without the array length)."""
    cls, names = _partition_class(version)
    write = compiled_writer(cls)
    epoch, offline = "leader_epoch" in names, "offline_replicas" in names
    out = BytesIO()
    for r in rows:
        fields: dict[str, Any] = {"error_code": ErrorCode(r.error_code), "partition_index": r.partition_index,
                                  "leader_id": r.leader_id, "replica_nodes": tuple(r.replica_nodes),
                                  "isr_nodes": tuple(r.isr_nodes)}
        if epoch:
            fields["leader_epoch"] = r.leader_epoch
        if offline:
            fields["offline_replicas"] = tuple(r.offline_replicas)
        write(out, cls(**fields))
    return out.getvalue()
