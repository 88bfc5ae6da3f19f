"""The hand-made partitions array of a Metadata topic (`protocol.metadata_partitions`) is
byte for byte kio's encoding of MetadataResponsePartition, at every Metadata version."""

from __future__ import annotations

from io import BytesIO

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kio.serial import entity_writer

from suoi.protocol.codec import build, response_class
from suoi.protocol.metadata_partitions import PartitionRow, encode_partitions
from suoi.protocol.splice import element_class

int32 = st.integers(-2**31, 2**31 - 1)
rows = st.builds(PartitionRow, error_code=st.sampled_from([0, 5, 9, 3]), partition_index=st.integers(0, 2**31 - 1),
                 leader_id=int32, leader_epoch=int32, replica_nodes=st.lists(int32, max_size=200),
                 isr_nodes=st.lists(int32, max_size=5), offline_replicas=st.lists(int32, max_size=3))


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(version=st.integers(0, 13), partitions=st.lists(rows, max_size=6))
def test_partitions_are_kios_encoding(version: int, partitions: list[PartitionRow]) -> None:
    cls = element_class(element_class(response_class(3, version), "topics"), "partitions")
    expected = BytesIO()
    write = entity_writer(cls)
    for row in partitions:
        write(expected, build(cls, row._asdict()))
    assert encode_partitions(version, partitions) == expected.getvalue()
