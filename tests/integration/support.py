"""Helpers shared by the integration tests: kio requests over RawClient, health checks
and broker-log assertions. Everything talks to a real broker process on 127.0.0.1."""

from __future__ import annotations

import datetime
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kio.schema.api_versions.v3.request import ApiVersionsRequest
from kio.schema.create_topics.v7.request import CreatableTopic, CreatableTopicConfig, CreateTopicsRequest
from kio.schema.end_txn.v3.request import EndTxnRequest
from kio.schema.errors import ErrorCode
from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic
from kio.schema.find_coordinator.v4.request import FindCoordinatorRequest
from kio.schema.list_offsets.v7.request import ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic
from kio.schema.offset_fetch.v8.request import OffsetFetchRequest, OffsetFetchRequestGroup
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData

from suoi.coordinator.records import partition_for
from suoi.protocol.records import build_batch, iter_records
from suoi.testing import EmbeddedBroker
from tests.conftest import wait_until
from tests.rawclient import RawClient

EARLIEST = -2
LATEST = -1


def ms(n: int) -> datetime.timedelta:
    return datetime.timedelta(milliseconds=n)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# -- requests ---------------------------------------------------------------------------

def api_versions_req() -> ApiVersionsRequest:
    return ApiVersionsRequest(client_software_name="suoi-it", client_software_version="1.0")


def metadata_req(*names: str, allow_create: bool = True) -> MetadataRequest:
    return MetadataRequest(
        topics=tuple(MetadataRequestTopic(topic_id=None, name=n) for n in names),
        allow_auto_topic_creation=allow_create, include_topic_authorized_operations=False)


def create_topics_req(*names: str, partitions: int = 1, configs: dict[str, str] | None = None) -> CreateTopicsRequest:
    cfg = tuple(CreatableTopicConfig(name=k, value=v) for k, v in (configs or {}).items())
    return CreateTopicsRequest(
        topics=tuple(CreatableTopic(name=n, num_partitions=partitions, replication_factor=1,
                                    assignments=(), configs=cfg) for n in names),
        timeout=ms(10_000), validate_only=False)


def produce_req(topic: str, partition: int, records: bytes, acks: int = -1, timeout_ms: int = 10_000) -> ProduceRequest:
    return ProduceRequest(acks=acks, timeout=ms(timeout_ms), topic_data=(
        TopicProduceData(name=topic, partition_data=(PartitionProduceData(index=partition, records=records),)),))


def fetch_req(topic: str, partition: int, offset: int, *, max_wait_ms: int = 0, min_bytes: int = 1,
              max_bytes: int = 1 << 20) -> FetchRequest:
    return FetchRequest(max_wait=ms(max_wait_ms), min_bytes=min_bytes, max_bytes=max_bytes,
                        topics=(FetchTopic(topic=topic, partitions=(FetchPartition(
                            partition=partition, fetch_offset=offset, partition_max_bytes=max_bytes),)),),
                        forgotten_topics_data=())


def list_offsets_req(topic: str, partition: int, timestamp: int) -> ListOffsetsRequest:
    return ListOffsetsRequest(replica_id=-1, isolation_level=0, topics=(
        ListOffsetsTopic(name=topic, partitions=(ListOffsetsPartition(partition_index=partition,
                                                                      timestamp=timestamp),)),))


# -- one-shot helpers (each on its own connection unless a client is given) --------------

def create_topic(bootstrap: str, name: str, partitions: int = 1, configs: dict[str, str] | None = None) -> None:
    """CreateTopics, then until every partition is served (the controller's answer comes once
    the topic is in the metadata image; its leader opens the log a moment later)."""
    with RawClient(bootstrap) as c:
        result = c.request(create_topics_req(name, partitions=partitions, configs=configs)).topics[0]
        assert result.error_code == ErrorCode.none, (result.error_code, result.error_message)

        def served() -> bool:
            md = c.request(metadata_req(name, allow_create=False))
            brokers = {b.node_id: f"{b.host}:{b.port}" for b in md.brokers}
            leaders = {p.partition_index: p.leader_id for p in md.topics[0].partitions}
            if len(leaders) != partitions or any(leader not in brokers for leader in leaders.values()):
                return False
            return all(list_offset(brokers[leader], name, p, LATEST)[0] == ErrorCode.none for p, leader in leaders.items())

        wait_until(served, message=f"{name} served by its leaders")


def coordinators_ready(bootstrap: str, *, groups: bool = True, transactions: bool = False,
                       partitions: int = 50) -> None:
    """What a client does before its first group or transactional request: FindCoordinator until
    it names one (the internal topic is created on the first ask), then until the coordinator has
    loaded the keys' partitions (Kafka clients retry NOT_COORDINATOR and
    COORDINATOR_LOAD_IN_PROGRESS the same way). Here for every partition of the internal topics
    (`partitions`: offsets.topic.num.partitions / transaction.state.log.num.partitions), so raw
    requests for any group or transactional id find their coordinator ready."""
    not_ready = {ErrorCode.coordinator_not_available, ErrorCode.not_coordinator, ErrorCode.coordinator_load_in_progress}
    keys = {partition_for(f"k{i}", partitions): f"k{i}" for i in range(5000)}
    assert len(keys) == partitions
    with RawClient(bootstrap) as c:
        def found(key_type: int) -> bool:
            answer = c.request(FindCoordinatorRequest(key_type=key_type, coordinator_keys=("k0",))).coordinators[0]
            assert answer.error_code in not_ready | {ErrorCode.none}, answer.error_code
            return answer.error_code == ErrorCode.none

        def groups_loaded() -> bool:
            answer = c.request(OffsetFetchRequest(groups=tuple(OffsetFetchRequestGroup(group_id=k, topics=None)
                                                               for k in keys.values()), require_stable=False))
            return all(g.error_code not in not_ready for g in answer.groups)

        def transactions_loaded() -> bool:  # EndTxn of an unknown id: INVALID_PRODUCER_ID_MAPPING once loaded
            return all(c.request(EndTxnRequest(transactional_id=k, producer_id=-1, producer_epoch=-1, committed=False))
                       .error_code not in not_ready for k in keys.values())

        for key_type, wanted, loaded in ((0, groups, groups_loaded), (1, transactions, transactions_loaded)):
            if wanted:
                wait_until(lambda kt=key_type: found(kt), message=f"a coordinator (key type {key_type})")
                wait_until(loaded, message=f"every partition of the coordinator (key type {key_type}) loaded")


def produce(bootstrap: str, topic: str, partition: int, records: bytes):  # type: ignore[no-untyped-def]
    with RawClient(bootstrap) as c:
        return c.request(produce_req(topic, partition, records)).responses[0].partition_responses[0]


def fetch(bootstrap: str, topic: str, partition: int, offset: int, **kw: int):  # type: ignore[no-untyped-def]
    with RawClient(bootstrap) as c:
        return c.request(fetch_req(topic, partition, offset, **kw)).responses[0].partitions[0]


def list_offset(bootstrap: str, topic: str, partition: int, timestamp: int) -> tuple[ErrorCode, int]:
    with RawClient(bootstrap) as c:
        p = c.request(list_offsets_req(topic, partition, timestamp)).topics[0].partitions[0]
    return p.error_code, p.offset


def log_end(bootstrap: str, topic: str, partition: int = 0) -> int:
    err, off = list_offset(bootstrap, topic, partition, LATEST)
    assert err == ErrorCode.none
    return off


def log_start(bootstrap: str, topic: str, partition: int = 0) -> int:
    err, off = list_offset(bootstrap, topic, partition, EARLIEST)
    assert err == ErrorCode.none
    return off


def read_all(bootstrap: str, topic: str, partition: int = 0, offset: int = 0) -> list[tuple[int, bytes | None]]:
    """(offset, value) of every record from `offset` to the high watermark, via raw Fetch."""
    out: list[tuple[int, bytes | None]] = []
    while True:
        p = fetch(bootstrap, topic, partition, offset)
        assert p.error_code == ErrorCode.none, p.error_code
        recs = [(r.offset, r.value) for r in iter_records(p.records or b"") if r.offset >= offset]
        if not recs:
            assert offset >= p.high_watermark, (offset, p.high_watermark)
            return out
        out += recs
        offset = recs[-1][0] + 1


# -- health and logs --------------------------------------------------------------------

def assert_serves(broker: EmbeddedBroker) -> None:
    """The broker still answers normal traffic on a NEW connection: ApiVersions, Metadata,
    and a produce + fetch round trip on a fresh topic."""
    assert broker.proc is not None and broker.proc.poll() is None, "broker process died"
    with RawClient(broker.bootstrap) as c:
        av = c.request(api_versions_req())
        assert av.error_code == ErrorCode.none
        assert {k.api_key for k in av.api_keys} >= {0, 1, 2, 3, 18}
        topic = unique("health")
        md = c.request(metadata_req(topic))
        assert md.topics[0].error_code == ErrorCode.none
        assert len(md.topics[0].partitions) >= 1
        value = uuid.uuid4().bytes
        pr = c.request(produce_req(topic, 0, build_batch([(b"k", value)])))
        part = pr.responses[0].partition_responses[0]
        assert part.error_code == ErrorCode.none
        fr = c.request(fetch_req(topic, 0, part.base_offset)).responses[0].partitions[0]
        assert fr.error_code == ErrorCode.none
        assert [r.value for r in iter_records(fr.records or b"")] == [value]


class LogWatch:
    """Broker-log lines written after this point."""

    def __init__(self, broker: EmbeddedBroker) -> None:
        self.broker = broker
        self.start = len(broker.logs())

    def new(self) -> str:
        return self.broker.logs()[self.start:]

    def wait_for(self, pattern: str, level: str = "WARNING", timeout: float = 5.0) -> str:
        rx = re.compile(rf"^.*\b{level}\b.*{pattern}.*$", re.MULTILINE | re.IGNORECASE)

        def found() -> str | None:
            m = rx.search(self.new())
            return m.group(0) if m else None

        try:
            return wait_until(found, timeout, message=f"a {level} log line matching {pattern!r}")
        except AssertionError:
            pytest.fail(f"broker did not log a {level} line matching {pattern!r}; new log output:\n{self.new()}")


def partition_dir(broker: EmbeddedBroker, topic: str, partition: int = 0) -> Path:
    return broker.data_dir / "data" / f"{topic}-{partition}"


def segment_files(broker: EmbeddedBroker, topic: str, partition: int = 0, suffix: str = ".log") -> list[Path]:
    return sorted(partition_dir(broker, topic, partition).glob(f"*{suffix}"))


def kraft_combined_overrides(port: int, controller_port: int, **extra: str) -> dict[str, str]:
    """Broker properties of a one-node KRaft cluster (roles broker,controller, its own single voter)."""
    return {
        "process.roles": "broker,controller", "node.id": "1",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER", "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        **extra,
    }


def module_broker(tmp_path_factory: pytest.TempPathFactory,
                  overrides: dict[str, str] | None = None) -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(tmp_path_factory.mktemp("suoi-it"), overrides=overrides)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
