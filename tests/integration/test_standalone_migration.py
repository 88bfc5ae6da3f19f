"""A data dir of the former standalone mode (no process.roles, topics only in local files) is
migrated into the one-voter metadata log at its first start as a KRaft node: topics keep their
names, ids, partitions, configs and records, committed offsets and the producer-id floor survive,
and meta.properties then says KRaft. Started as part of a larger quorum it is refused with one
line saying how to migrate, and nothing is deleted.

The dir is written the way the standalone mode wrote it (`write_standalone_dir`): meta.properties
with `suoi.mode=standalone`, the topics through the storage layer, a __consumer_offsets record,
`producer-id-block` and `dynamic-broker-configs.json`.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource
from kio.schema.init_producer_id.v4.request import InitProducerIdRequest
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic

from suoi.coordinator.records import OFFSETS_TOPIC, OffsetAndMetadata, offset_key, offset_value, partition_for
from suoi.log.config import LogConfig
from suoi.log.dir_lock import LOCK_FILE
from suoi.log.manager import LogManager
from suoi.log.meta_properties import random_uuid, read_meta, write_meta
from suoi.protocol.records import build_batch
from suoi.testing import EmbeddedBroker
from tests.rawclient import RawClient

TOPIC = "orders"
GROUP = "billing"
PID_BLOCK_END = 5000
OFFSETS_PARTITIONS = 50  # offsets.topic.num.partitions' default


def write_standalone_dir(data: Path) -> dict[str, object]:
    """What a standalone node left behind: 3 partitions of `orders` (2, 1, 0 records), an
    offset commit of `billing`, a reserved producer-id block and a dynamic broker config."""
    write_meta(data, random_uuid(), 1)
    with open(data / "meta.properties", "a") as f:
        f.write("suoi.mode=standalone\n")
    now = int(time.time() * 1000)
    logs = LogManager([data], LogConfig(), now_ms=lambda: now)
    logs.load()
    info = logs.create_topic(TOPIC, 3, {"retention.ms": "3600000"})
    for partition, count in ((0, 2), (1, 1)):
        plog = logs.get_log(TOPIC, partition)
        assert plog is not None
        plog.append(build_batch([(b"k", b"v%d-%d" % (partition, i)) for i in range(count)], timestamp_ms=now))
    logs.create_topic(OFFSETS_TOPIC, OFFSETS_PARTITIONS, {"cleanup.policy": "compact"})
    olog = logs.get_log(OFFSETS_TOPIC, partition_for(GROUP, OFFSETS_PARTITIONS))
    assert olog is not None
    olog.append(build_batch([(offset_key(GROUP, TOPIC, 0), offset_value(OffsetAndMetadata(1, -1, None, now)))],
                            timestamp_ms=now))
    logs.flush()
    logs.close()
    (data / "producer-id-block").write_text(f"{PID_BLOCK_END}\n")
    (data / "dynamic-broker-configs.json").write_text(json.dumps(
        {"version": 1, "cluster_default": {"log.cleaner.threads": "2"}, "broker": {}}))
    return {"topic_id": info.topic_id}


def topic_id(client: RawClient) -> uuid.UUID:
    md = client.request(MetadataRequest(topics=(MetadataRequestTopic(topic_id=None, name=TOPIC),),
                                        allow_auto_topic_creation=False, include_topic_authorized_operations=False))
    assert md.topics[0].error_code == 0 and len(md.topics[0].partitions) == 3
    return md.topics[0].topic_id


def test_a_standalone_dir_is_migrated_with_its_topics_offsets_and_producer_ids(tmp_path: Path) -> None:
    data = tmp_path / "data"
    written = write_standalone_dir(data)
    broker = EmbeddedBroker(tmp_path, log_dirs=[data], overrides={"group.initial.rebalance.delay.ms": "0"})
    with broker:
        assert "migrating them into the metadata log" in broker.logs()
        with RawClient(broker.bootstrap) as c:
            assert topic_id(c) == written["topic_id"]
            init = c.request(InitProducerIdRequest(transactional_id=None, transaction_timeout=datetime.timedelta(
                seconds=60), producer_id=-1, producer_epoch=-1))
            assert init.error_code == 0 and init.producer_id >= PID_BLOCK_END  # never one the old node gave out
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        described = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, TOPIC)])
        configs = next(iter(described.values())).result(10)
        assert configs["retention.ms"].value == "3600000"
        broker_cfg = next(iter(admin.describe_configs([ConfigResource(ConfigResource.Type.BROKER, "1")]).values()))
        assert broker_cfg.result(10)["log.cleaner.threads"].value == "2"
        consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": GROUP,
                             "auto.offset.reset": "earliest", "enable.auto.commit": False})
        try:
            committed = consumer.committed([TopicPartition(TOPIC, 0)], timeout=10)
            assert committed[0].offset == 1
            consumer.assign([TopicPartition(TOPIC, 0, 0), TopicPartition(TOPIC, 1, 0), TopicPartition(TOPIC, 2, 0)])
            values: list[bytes] = []
            deadline = time.monotonic() + 15
            while len(values) < 3 and time.monotonic() < deadline:
                message = consumer.poll(0.5)
                if message is not None and message.error() is None:
                    values.append(message.value())
            assert sorted(values) == [b"v0-0", b"v0-1", b"v1-0"]
        finally:
            consumer.close()
        assert read_meta(data)["suoi.mode"] == "kraft"  # type: ignore[index]
        broker.restart()  # now a KRaft dir: nothing to migrate, nothing lost
        assert "migrating" not in broker.logs().split("stopped cleanly")[-1]
        with RawClient(broker.bootstrap) as c:
            assert topic_id(c) == written["topic_id"]


def test_a_standalone_dir_in_a_larger_quorum_is_refused_with_how_to_migrate(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_standalone_dir(data)
    before = sorted(p.name for p in data.iterdir())
    cmd = [sys.executable, "-m", "suoi", "broker", "--log-dirs", str(data),
           "--listeners", "PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
           "-o", "process.roles=broker,controller", "-o", "controller.quorum.voters=1@127.0.0.1:1,2@127.0.0.1:2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    output = proc.stdout + proc.stderr
    refusals = [line for line in output.splitlines() if "standalone suoi node" in line]
    assert len(refusals) == 1 and "start it once as a single node (without process.roles)" in refusals[0]
    assert "Traceback" not in output
    assert sorted(p.name for p in data.iterdir() if p.name != LOCK_FILE) == before  # nothing deleted (.lock: taken first)
