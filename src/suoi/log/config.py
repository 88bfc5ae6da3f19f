"""Per-log configuration with Kafka's topic-level names and defaults.

Topic configs arrive as strings (CreateTopics, AlterConfigs) and are reported
back as strings (DescribeConfigs), so this module owns the mapping between
Kafka's names and the typed ``LogConfig`` the storage layer reads. Every topic config
Kafka 4 defines is accepted and checked against Kafka's type and validator (with Kafka's
error wording, `suoi.configdefs`); the ones without a field here are reported with their
Kafka default and ignored (`IGNORED_TOPIC_CONFIGS`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from suoi.configdefs import TOPIC_CONFIGS, ConfigValueError
from suoi.log.errors import InvalidConfigError

__all__ = ["COMPRESSION_TYPES", "IGNORED_TOPIC_CONFIGS", "TOPIC_CONFIG_DEFAULTS", "LogConfig"]

_LONG_MAX = 9223372036854775807
_DAY_MS = 24 * 60 * 60 * 1000

TimestampType = Literal["CreateTime", "LogAppendTime"]


@dataclass(frozen=True, slots=True)
class LogConfig:
    """Effective settings of one partition log (Kafka defaults)."""

    segment_bytes: int = 1 << 30
    segment_ms: int = 7 * _DAY_MS
    retention_ms: int = 7 * _DAY_MS  # -1 = keep forever
    retention_bytes: int = -1  # -1 = no size limit
    max_message_bytes: int = 1048588
    message_timestamp_type: TimestampType = "CreateTime"
    #: KIP-937's CreateTime bounds (None: Long.MAX_VALUE, unbounded); checked on a leader's
    #: append (`suoi.log.timestamp_bounds`). Kafka 4's defaults: unbounded before, one hour after.
    message_timestamp_before_max_ms: int | None = None
    message_timestamp_after_max_ms: int | None = 3_600_000
    cleanup_policy: tuple[str, ...] = ("delete",)
    #: The codec batches are stored with: "producer" keeps the producer's, else the leader
    #: recompresses each batch's records section on append (as Kafka's LogValidator).
    compression_type: str = "producer"
    flush_interval_messages: int | None = None  # None = leave it to the page cache
    flush_interval_ms: int | None = None
    index_interval_bytes: int = 4096
    producer_id_expiration_ms: int = 86_400_000  # broker-wide producer.id.expiration.ms
    # Log compaction (cleanup.policy=compact), see suoi.log.cleaner.
    delete_retention_ms: int = _DAY_MS  # how long tombstones outlive their first cleaning
    min_compaction_lag_ms: int = 0  # records younger than this are not compacted
    max_compaction_lag_ms: int | None = None  # None = never force compaction
    min_cleanable_dirty_ratio: float = 0.5
    #: acks=all needs at least this many in-sync replicas (replication, not storage, acts on it)
    min_insync_replicas: int = 1
    #: Broker-side schema id validation (Confluent Server's and Redpanda's names, either turns it on;
    #: `suoi.partition.schema_validation`). Only TopicNameStrategy is implemented.
    confluent_key_schema_validation: bool = False
    confluent_value_schema_validation: bool = False
    redpanda_key_schema_id_validation: bool = False
    redpanda_value_schema_id_validation: bool = False
    confluent_key_subject_name_strategy: str = "io.confluent.kafka.serializers.subject.TopicNameStrategy"
    confluent_value_subject_name_strategy: str = "io.confluent.kafka.serializers.subject.TopicNameStrategy"
    redpanda_key_subject_name_strategy: str = "TopicNameStrategy"
    redpanda_value_subject_name_strategy: str = "TopicNameStrategy"
    #: derived: whether keys / values / either are validated. A plain field, so the produce path
    #: of a topic without validation pays one attribute read (`schema_validation`).
    validate_key_schema_ids: bool = field(init=False, default=False)
    validate_value_schema_ids: bool = field(init=False, default=False)
    schema_validation: bool = field(init=False, default=False)
    #: derived, read by every append (plain fields, not properties: no call per produce):
    #: LogAppendTime topics; ``compact`` in cleanup.policy (the log cleaner compacts this log);
    #: the codec the leader recompresses batches with (None: "producer", stored as sent)
    log_append_time: bool = field(init=False, default=False)
    compacts: bool = field(init=False, default=False)
    recompression: int | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        keys = self.confluent_key_schema_validation or self.redpanda_key_schema_id_validation
        values = self.confluent_value_schema_validation or self.redpanda_value_schema_id_validation
        object.__setattr__(self, "validate_key_schema_ids", keys)
        object.__setattr__(self, "validate_value_schema_ids", values)
        object.__setattr__(self, "schema_validation", keys or values)
        object.__setattr__(self, "log_append_time", self.message_timestamp_type == "LogAppendTime")
        object.__setattr__(self, "compacts", "compact" in self.cleanup_policy)
        object.__setattr__(self, "recompression", COMPRESSION_TYPES[self.compression_type])

    @property
    def deletes(self) -> bool:
        """Whether retention deletes segments (``delete`` in cleanup.policy)."""
        return "delete" in self.cleanup_policy

    @classmethod
    def from_topic_configs(cls, base: LogConfig, overrides: Mapping[str, str]) -> LogConfig:
        """Apply Kafka topic-config overrides (string values) on top of ``base``.

        Raises ``InvalidConfigError`` naming the offending key, so the API
        layer can return it verbatim as the error message.
        """
        changes: dict[str, Any] = {}
        for name, raw in overrides.items():
            definition = TOPIC_CONFIGS.get(name)
            if definition is None:
                raise InvalidConfigError(f"Unknown topic config name: {name}")
            try:
                definition.parse(str(raw))
            except ConfigValueError as e:
                raise InvalidConfigError(str(e)) from None
            spec = _TOPIC_CONFIGS.get(name)
            if spec is None:
                continue  # a Kafka config suoi does not act on (IGNORED_TOPIC_CONFIGS)
            attr, parse = spec
            try:
                changes[attr] = parse(str(raw).strip())
            except (ValueError, TypeError) as e:
                raise InvalidConfigError(f"Invalid value {raw} for configuration {name}: {e}") from None
        return dataclasses.replace(base, **changes)

    @classmethod
    def from_broker_configs(cls, props: Mapping[str, str]) -> LogConfig:
        """Build the broker default from ``log.*`` server properties.

        Like Kafka, ``log.retention.ms`` beats ``.minutes`` beats ``.hours``
        and ``log.roll.ms`` beats ``log.roll.hours``.
        """
        topic: dict[str, str] = {}
        for broker_name, topic_name in BROKER_TO_TOPIC_CONFIG.items():
            if broker_name in props:
                topic[topic_name] = props[broker_name]
        for name, scale in (("log.retention.hours", 3_600_000), ("log.retention.minutes", 60_000)):
            if "log.retention.ms" not in props and name in props:
                # Any negative retention means "keep forever" (-1), as Kafka normalises it.
                topic["retention.ms"] = str(max(int(props[name]) * scale, -1))
        if "log.roll.ms" not in props and "log.roll.hours" in props:
            topic["segment.ms"] = str(int(props["log.roll.hours"]) * 3_600_000)
        return cls.from_topic_configs(cls(), topic)

    def to_topic_configs(self) -> dict[str, str]:
        """Kafka-named string values of every supported config (DescribeConfigs)."""
        out = {name: d.default or "" for name, d in TOPIC_CONFIGS.items() if name not in _TOPIC_CONFIGS}
        for name, (attr, _parse) in _TOPIC_CONFIGS.items():
            value = getattr(self, attr)
            if value is None:
                out[name] = str(_LONG_MAX)
            elif isinstance(value, bool):
                out[name] = "true" if value else "false"
            elif isinstance(value, tuple):
                out[name] = ",".join(value)
            else:
                out[name] = str(value)
        return out


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw)
        if value < minimum:
            raise ValueError(f"must be at least {minimum}")
        return value

    return parse


def _int_range(minimum: int, maximum: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw)
        if not minimum <= value <= maximum:
            raise ValueError(f"must be in [{minimum}, {maximum}]")
        return value

    return parse


def _optional_long(minimum: int) -> Callable[[str], int | None]:
    """Kafka uses Long.MAX_VALUE for 'never'; we store that as None."""
    inner = _int_at_least(minimum)

    def parse(raw: str) -> int | None:
        value = inner(raw)
        return None if value >= _LONG_MAX else value

    return parse


def _ratio(raw: str) -> float:
    value = float(raw)
    if not 0.0 <= value <= 1.0:
        raise ValueError("must be in [0, 1]")
    return value


def _cleanup_policy(raw: str) -> tuple[str, ...]:
    """An empty list is legal, as in Kafka: neither retention deletes nor the cleaner compacts."""
    items = tuple(sorted({p.strip() for p in raw.split(",") if p.strip()}))
    if any(p not in ("delete", "compact") for p in items):
        raise ValueError("must be a list of 'delete' and/or 'compact'")
    return items


#: compression.type values (Kafka's), and the codec id each stores batches with.
COMPRESSION_TYPES: Mapping[str, int | None] = MappingProxyType({
    "producer": None, "uncompressed": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4})


def _compression_type(raw: str) -> str:
    if raw not in COMPRESSION_TYPES:
        raise ValueError(f"String must be one of: {', '.join(COMPRESSION_TYPES)}")
    return raw


def _timestamp_type(raw: str) -> str:
    if raw not in ("CreateTime", "LogAppendTime"):
        raise ValueError("must be CreateTime or LogAppendTime")
    return raw


def _boolean(raw: str) -> bool:
    return raw.lower() == "true"  # the type check (true/false) is configdefs'


_SUBJECT_STRATEGY_PACKAGE = "io.confluent.kafka.serializers.subject."


def _subject_name_strategy(raw: str) -> str:
    """TopicNameStrategy, by its short name (Redpanda) or class name (Confluent). The record-name
    strategies need the schema's record name at produce time: not built, so refused."""
    short = raw.removeprefix(_SUBJECT_STRATEGY_PACKAGE)
    if short == "TopicNameStrategy":
        return raw
    if short in ("RecordNameStrategy", "TopicRecordNameStrategy"):
        raise ValueError(f"{short} is not implemented by suoi: only TopicNameStrategy")
    raise ValueError("must be TopicNameStrategy (or io.confluent.kafka.serializers.subject.TopicNameStrategy)")


_INT32_MAX = 2**31 - 1

_TOPIC_CONFIGS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "segment.bytes": ("segment_bytes", _int_range(14, _INT32_MAX)),
    "segment.ms": ("segment_ms", _int_at_least(1)),
    "retention.ms": ("retention_ms", _int_at_least(-1)),
    "retention.bytes": ("retention_bytes", _int_at_least(-1)),
    "max.message.bytes": ("max_message_bytes", _int_range(0, _INT32_MAX)),
    "message.timestamp.type": ("message_timestamp_type", _timestamp_type),
    "message.timestamp.before.max.ms": ("message_timestamp_before_max_ms", _optional_long(0)),
    "message.timestamp.after.max.ms": ("message_timestamp_after_max_ms", _optional_long(0)),
    "cleanup.policy": ("cleanup_policy", _cleanup_policy),
    "compression.type": ("compression_type", _compression_type),
    "flush.messages": ("flush_interval_messages", _optional_long(1)),
    "flush.ms": ("flush_interval_ms", _optional_long(0)),
    "index.interval.bytes": ("index_interval_bytes", _int_range(0, _INT32_MAX)),
    "delete.retention.ms": ("delete_retention_ms", _int_at_least(0)),
    "min.compaction.lag.ms": ("min_compaction_lag_ms", _int_at_least(0)),
    "max.compaction.lag.ms": ("max_compaction_lag_ms", _optional_long(1)),
    "min.cleanable.dirty.ratio": ("min_cleanable_dirty_ratio", _ratio),
    "min.insync.replicas": ("min_insync_replicas", _int_at_least(1)),
    **{name: (name.replace(".", "_"), _boolean) for name in (
        "confluent.key.schema.validation", "confluent.value.schema.validation",
        "redpanda.key.schema.id.validation", "redpanda.value.schema.id.validation")},
    **{name: (name.replace(".", "_"), _subject_name_strategy) for name in (
        "confluent.key.subject.name.strategy", "confluent.value.subject.name.strategy",
        "redpanda.key.subject.name.strategy", "redpanda.value.subject.name.strategy")},
}

#: Kafka topic configs suoi accepts, validates and reports but does not act on
#: (unclean.leader.election.enable has no field here: the controller reads it).
IGNORED_TOPIC_CONFIGS = frozenset(TOPIC_CONFIGS) - frozenset(_TOPIC_CONFIGS) - {"unclean.leader.election.enable"}

#: Broker property -> the topic config it is the broker-wide default of.
BROKER_TO_TOPIC_CONFIG: Mapping[str, str] = MappingProxyType({
    "log.segment.bytes": "segment.bytes",
    "log.roll.ms": "segment.ms",
    "log.retention.ms": "retention.ms",
    "log.retention.bytes": "retention.bytes",
    "message.max.bytes": "max.message.bytes",
    "log.message.timestamp.type": "message.timestamp.type",
    "log.message.timestamp.before.max.ms": "message.timestamp.before.max.ms",
    "log.message.timestamp.after.max.ms": "message.timestamp.after.max.ms",
    "log.cleanup.policy": "cleanup.policy",
    "compression.type": "compression.type",
    "log.flush.interval.messages": "flush.messages",
    "log.flush.interval.ms": "flush.ms",
    "log.index.interval.bytes": "index.interval.bytes",
    "log.cleaner.delete.retention.ms": "delete.retention.ms",
    "log.cleaner.min.compaction.lag.ms": "min.compaction.lag.ms",
    "log.cleaner.max.compaction.lag.ms": "max.compaction.lag.ms",
    "log.cleaner.min.cleanable.ratio": "min.cleanable.dirty.ratio",
    "min.insync.replicas": "min.insync.replicas",
})

#: Every topic config name suoi accepts, mapped to its Kafka default.
TOPIC_CONFIG_DEFAULTS: Mapping[str, str] = MappingProxyType(LogConfig().to_topic_configs())
