"""LogConfig parsing from Kafka topic/broker config names."""

from __future__ import annotations

import pytest

from suoi.log.config import TOPIC_CONFIG_DEFAULTS, LogConfig
from suoi.log.errors import InvalidConfigError


def test_defaults_match_kafka() -> None:
    c = LogConfig()
    assert c.segment_bytes == 1073741824 and c.segment_ms == 604800000
    assert c.retention_ms == 604800000 and c.retention_bytes == -1
    assert c.max_message_bytes == 1048588 and c.index_interval_bytes == 4096
    assert c.message_timestamp_type == "CreateTime" and c.cleanup_policy == ("delete",)
    assert c.flush_interval_messages is None and c.flush_interval_ms is None
    assert TOPIC_CONFIG_DEFAULTS["retention.ms"] == "604800000"
    assert TOPIC_CONFIG_DEFAULTS["flush.messages"] == "9223372036854775807"
    assert TOPIC_CONFIG_DEFAULTS["cleanup.policy"] == "delete"


def test_overrides() -> None:
    base = LogConfig(retention_ms=1)
    c = LogConfig.from_topic_configs(
        base,
        {
            "retention.bytes": "1000",
            "segment.bytes": "2048",
            "segment.ms": "60000",
            "max.message.bytes": "500",
            "cleanup.policy": "compact,delete",
            "message.timestamp.type": "LogAppendTime",
            "flush.messages": "1",
            "flush.ms": "9223372036854775807",
            "index.interval.bytes": "0",
            "min.insync.replicas": "2",  # accepted, not acted upon
        },
    )
    assert c.retention_ms == 1 and c.retention_bytes == 1000
    assert (c.segment_bytes, c.segment_ms, c.max_message_bytes) == (2048, 60000, 500)
    assert c.cleanup_policy == ("compact", "delete") and c.deletes
    assert c.log_append_time and c.flush_interval_messages == 1 and c.flush_interval_ms is None
    assert c.index_interval_bytes == 0
    assert c.to_topic_configs()["cleanup.policy"] == "compact,delete"


def test_empty_cleanup_policy_neither_deletes_nor_compacts() -> None:
    c = LogConfig.from_topic_configs(LogConfig(), {"cleanup.policy": " "})
    assert c.cleanup_policy == () and not c.deletes and not c.compacts
    assert c.to_topic_configs()["cleanup.policy"] == ""


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("retention.ms", "-2"),
        ("retention.ms", "soon"),
        ("segment.bytes", "10"),
        ("segment.ms", "0"),
        ("cleanup.policy", "shred"),
        ("cleanup.policy", "delete,shred"),
        ("message.timestamp.type", "createtime"),
        ("flush.messages", "0"),
        ("no.such.config", "1"),
    ],
)
def test_invalid(name: str, value: str) -> None:
    with pytest.raises(InvalidConfigError, match=name.replace(".", r"\.")) as info:
        LogConfig.from_topic_configs(LogConfig(), {name: value})
    assert info.value.error_code == 40


def test_from_broker_configs() -> None:
    c = LogConfig.from_broker_configs(
        {"log.retention.hours": "1", "log.roll.hours": "2", "log.segment.bytes": "4096", "message.max.bytes": "99"}
    )
    assert (c.retention_ms, c.segment_ms, c.segment_bytes, c.max_message_bytes) == (3_600_000, 7_200_000, 4096, 99)
    c = LogConfig.from_broker_configs({"log.retention.ms": "5", "log.retention.minutes": "1"})
    assert c.retention_ms == 5
