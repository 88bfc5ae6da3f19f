"""Disk full while appending: the producer gets KAFKA_STORAGE_ERROR, nothing acknowledged
is lost, and the broker keeps serving reads and other clients.

The disk is a real 4 MiB tmpfs when this process may mount one (root, as in CI);
otherwise the broker runs under RLIMIT_FSIZE, which makes the kernel refuse writes past
the limit (EFBIG) — again a real failing write() on a real file, not a mock.
"""

from __future__ import annotations

import datetime
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from kio.schema.api_versions.v3.request import ApiVersionsRequest
from kio.schema.errors import ErrorCode
from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic
from kio.schema.list_offsets.v7.request import ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData

from suoi.protocol.records import build_batch, iter_batches
from suoi.testing import EmbeddedBroker
from tests.integration.support import create_topic
from tests.rawclient import RawClient

DISK_BYTES = 4 * 1024 * 1024
TOPIC = "fills-the-disk"


class LimitedBroker(EmbeddedBroker):
    """A broker whose files may not grow past `fsize` bytes (RLIMIT_FSIZE)."""

    fsize = DISK_BYTES // 2

    def command(self) -> list[str]:
        return ["prlimit", f"--fsize={self.fsize}", "--", *super().command()]


@pytest.fixture
def small_disk_broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(disk)],
                             capture_output=True).returncode == 0
    cls = EmbeddedBroker if mounted else LimitedBroker
    broker = cls(tmp_path / "broker", log_dirs=[disk])
    broker.start()
    try:
        create_topic(broker.bootstrap, TOPIC)
        yield broker
    finally:
        broker.stop()
        if mounted:
            subprocess.run(["umount", "-l", str(disk)], check=False)


def produce(client: RawClient, records: bytes) -> tuple[int, int]:
    resp = client.request(ProduceRequest(
        transactional_id=None, acks=1, timeout=datetime.timedelta(seconds=5),
        topic_data=(TopicProduceData(name=TOPIC, partition_data=(PartitionProduceData(index=0, records=records),)),)))
    part = resp.responses[0].partition_responses[0]
    return int(part.error_code), int(part.base_offset)


def latest_offset(client: RawClient) -> int:
    resp = client.request(ListOffsetsRequest(replica_id=-1, isolation_level=0, topics=(
        ListOffsetsTopic(name=TOPIC, partitions=(ListOffsetsPartition(partition_index=0, timestamp=-1),)),)))
    return int(resp.topics[0].partitions[0].offset)


def fetch_all(client: RawClient, offset: int) -> bytes:
    resp = client.request(FetchRequest(
        max_wait=datetime.timedelta(milliseconds=0), min_bytes=0, max_bytes=64 * 1024 * 1024,
        topics=(FetchTopic(topic=TOPIC, partitions=(FetchPartition(
            partition=0, fetch_offset=offset, partition_max_bytes=64 * 1024 * 1024),)),),
        forgotten_topics_data=()))
    part = resp.responses[0].partitions[0]
    assert part.error_code == ErrorCode.none
    return bytes(part.records or b"")


def test_disk_full_fails_the_produce_and_keeps_serving(small_disk_broker: EmbeddedBroker) -> None:
    value = b"x" * 1000
    acked: list[tuple[int, int]] = []  # (base offset, record count)
    errors: list[int] = []
    with RawClient(small_disk_broker.bootstrap) as client:
        for i in range(2 * DISK_BYTES // (64 * len(value))):
            batch = build_batch([(b"k%d" % i, value)] * 64, timestamp_ms=1_700_000_000_000 + i)
            error, base = produce(client, batch)
            if error:
                errors.append(error)
                if len(errors) >= 3:
                    break
            else:
                acked.append((base, 64))
        assert errors, "the disk never filled up"
        assert set(errors) == {ErrorCode.kafka_storage_error}
        assert acked, "nothing was appended before the disk filled"
        # Offsets of acknowledged batches are consecutive and all of them are readable.
        assert [b for b, _ in acked] == [64 * i for i in range(len(acked))]
        end = latest_offset(client)
        assert end == 64 * len(acked)
        seen = 0
        offset = 0
        while offset < end:
            data = fetch_all(client, offset)
            batches = [h for _, h in iter_batches(data)]
            assert batches and batches[0].base_offset == offset
            seen += sum(h.records_count for h in batches)
            offset = batches[-1].next_offset
        assert seen == end
    # Other clients are still served on new connections.
    with RawClient(small_disk_broker.bootstrap) as other:
        versions = other.request(ApiVersionsRequest(client_software_name="t", client_software_version="1"))
        assert versions.error_code == ErrorCode.none
        assert latest_offset(other) == end
    assert "WARNING" in small_disk_broker.logs()
