"""The partitions array of a Metadata answer's topic, encoded without kio.

kio builds an entity and makes a dozen small writes for each partition: ~10 ms for a topic of
1,000 partitions, paid by the first Metadata request after any change of the topic (later ones
reuse it, see `api.metadata_cache`). A partition is fixed fields and three int32 arrays, so one
`struct` call each does it. tests/unit/protocol/test_metadata_partitions.py checks it byte for
byte against kio's MetadataResponsePartition for every version (0-13).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from io import BytesIO
from typing import NamedTuple

from kio.serial.writers import write_unsigned_varint
from kio.static.primitive import uvarint

_HEAD = struct.Struct(">hii")  # error_code, partition_index, leader_id
_HEAD_EPOCH = struct.Struct(">hiii")  # ... leader_epoch (v7+)
_INT32 = struct.Struct(">i")


class PartitionRow(NamedTuple):
    error_code: int
    partition_index: int
    leader_id: int
    leader_epoch: int
    replica_nodes: Sequence[int]
    isr_nodes: Sequence[int]
    offline_replicas: Sequence[int]


#: Array lengths (n + 1) below 128 are one byte; longer ones go through kio's writer.
_SMALL_UVARINTS = [bytes([n]) for n in range(128)]


def _uvarint(n: int) -> bytes:
    if n < 128:
        return _SMALL_UVARINTS[n]
    out = BytesIO()
    write_unsigned_varint(out, uvarint(n))
    return out.getvalue()


def _int32s(values: Sequence[int], flexible: bool) -> bytes:
    n = len(values)
    prefix = _uvarint(n + 1) if flexible else _INT32.pack(n)
    return prefix + struct.pack(f">{n}i", *values)


def encode_partitions(version: int, rows: Iterable[PartitionRow]) -> bytes:
    """The elements of MetadataResponseTopic.partitions at `version` (without the array length)."""
    flexible, epoch, offline = version >= 9, version >= 7, version >= 5
    out = []
    for r in rows:
        head = (_HEAD_EPOCH.pack(r.error_code, r.partition_index, r.leader_id, r.leader_epoch) if epoch
                else _HEAD.pack(r.error_code, r.partition_index, r.leader_id))
        out.append(head + _int32s(r.replica_nodes, flexible) + _int32s(r.isr_nodes, flexible))
        if offline:
            out.append(_int32s(r.offline_replicas, flexible))
        if flexible:
            out.append(b"\x00")  # no tagged fields
    return b"".join(out)
