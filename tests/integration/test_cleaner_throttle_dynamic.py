"""log.cleaner.io.max.bytes.per.second is a dynamic cluster-wide broker config, as in Kafka
(``LogCleaner.reconfigure``): set with IncrementalAlterConfigs on the broker default resource it
reaches the running cleaner at once - a clean paused by a rate of 0 resumes - and DescribeConfigs
shows it as a dynamic default; a value that is not a double is refused with INVALID_CONFIG and
changes nothing."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, ResourceType
from kio.schema.errors import ErrorCode

from suoi.log.cleaner_files import CHECKPOINT_FILE
from suoi.protocol.records import iter_records
from suoi.testing.inprocess import InProcessNode
from tests.conftest import wait_until
from tests.integration.test_configs import BROKER, SET, incremental
from tests.integration.test_configs import describe as raw_describe

KEY = "log.cleaner.io.max.bytes.per.second"
TOPIC = "throttled-compacted"


@pytest.fixture
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessNode]:
    # a rate of 0 stops the cleaner's I/O (Kafka's Throttler sleeps on): nothing is compacted yet
    n = InProcessNode(tmp_path_factory.mktemp("throttle"), overrides={
        "log.segment.bytes": "4096", "log.cleaner.backoff.ms": "100", KEY: "0"}).start()
    try:
        yield n
    finally:
        n.stop()


def _alter(node: InProcessNode, value: str) -> tuple[int, str | None]:
    """IncrementalAlterConfigs SET on the broker default resource (named ""), over the wire by the
    tests' protocol client: confluent-kafka's and kafka-python's admin clients refuse a broker
    resource with an empty name (Kafka's Java admin and kafka-configs --entity-default send it)."""
    answer = incremental(node.bootstrap, BROKER, "", [(KEY, SET, value)])
    return answer.error_code, answer.error_message


def _paused_builds() -> int:
    """Threads of this process inside a cleaner build's throttle (``Pace.io``) right now."""
    count = 0
    for frame in sys._current_frames().values():
        f = frame
        while f is not None and not (f.f_code.co_name == "io" and f.f_code.co_filename.endswith("cleaner_pace.py")):
            f = f.f_back
        count += f is not None
    return count


def _produce_versions(node: InProcessNode) -> None:
    """20 keys, 15 versions each, in batches of 20 records (~2.6 kB): several 4 kB segments."""
    producer = Producer({"bootstrap.servers": node.bootstrap, "linger.ms": 0})
    for i in range(300):
        producer.produce(TOPIC, key=b"k%02d" % (i % 20), value=b"v%05d" % i + b"x" * 100, partition=0)
        if i % 20 == 19:
            assert producer.flush(30) == 0


def test_the_rate_applies_at_once_to_a_clean_in_progress(node: InProcessNode) -> None:
    admin = AdminClient({"bootstrap.servers": node.bootstrap})
    fut = admin.create_topics([_new_topic()])[TOPIC]
    fut.result(30)
    plog = wait_until(lambda: node.broker.logs.get_log(TOPIC, 0), timeout=20, message="the log")
    _produce_versions(node)
    cleaner = node.broker.cleaner
    assert cleaner.io_max_bytes_per_s == 0.0
    # a build starts and stays paused: no cleaned file written, no checkpoint
    wait_until(_paused_builds, timeout=20, message="a build paused in the throttle")
    assert len(plog.segments) > 3
    assert not (plog.directory / CHECKPOINT_FILE).exists()

    code, message = _alter(node, "fast")  # Kafka's ConfigDef: not a DOUBLE
    assert code == ErrorCode.invalid_config
    assert message is not None and KEY in message and "DOUBLE" in message
    assert cleaner.io_max_bytes_per_s == 0.0  # nothing applied
    assert not (plog.directory / CHECKPOINT_FILE).exists()

    assert _alter(node, "1000000") == (ErrorCode.none, None)  # 1 MB/s: the paused build goes on, throttled
    wait_until(lambda: cleaner.io_max_bytes_per_s == 1_000_000.0, timeout=10, message="the new rate applied")
    wait_until(lambda: (plog.directory / CHECKPOINT_FILE).exists(), timeout=30, message="a clean committed")
    records = [(r.key, r.value) for r in iter_records(plog.read(0, 1 << 30))]
    assert len(records) < 300
    assert dict(records) == {b"k%02d" % k: b"v%05d" % (280 + k) + b"x" * 100 for k in range(20)}

    resource = ConfigResource(ResourceType.BROKER, str(node.node_id))  # the broker's own, by confluent-kafka
    entry = admin.describe_configs([resource])[resource].result(30)[KEY]
    assert (entry.value, entry.source) == ("1000000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value)
    assert not entry.is_read_only
    default = raw_describe(node.bootstrap, BROKER, "")  # the default resource: only what was set there
    assert default["error"] == ErrorCode.none
    described = {k: (c.value, c.config_source) for k, c in default["configs"].items()}
    assert described == {KEY: ("1000000", 3)}  # 3: DYNAMIC_DEFAULT_BROKER_CONFIG

    assert _alter(node, "-1")[0] == ErrorCode.none  # accepted, as by Kafka (no validator): a negative rate never throttles
    wait_until(lambda: cleaner.io_max_bytes_per_s == -1.0, timeout=10, message="the negative rate applied")


def _new_topic():  # noqa: ANN202
    from confluent_kafka.admin import NewTopic

    return NewTopic(TOPIC, 1, 1, config={"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.01",
                                         "segment.bytes": "4096"})


def test_a_paused_build_ends_when_the_node_stops(node: InProcessNode) -> None:
    admin = AdminClient({"bootstrap.servers": node.bootstrap})
    admin.create_topics([_new_topic()])[TOPIC].result(30)
    wait_until(lambda: node.broker.logs.get_log(TOPIC, 0), timeout=20, message="the log")
    _produce_versions(node)
    wait_until(_paused_builds, timeout=20, message="a build paused in the throttle")
    node.stop()
    wait_until(lambda: _paused_builds() == 0, timeout=5, message="the paused build gave up")
