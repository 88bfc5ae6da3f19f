"""Kafka's config synonyms, for DescribeConfigs (facts from Kafka's ServerTopicConfigSynonyms
and DynamicBrokerConfig.brokerConfigSynonyms).

A topic config's broker-wide default is named by an ordered list of broker configs, the
first the one that wins (``retention.ms`` <- ``log.retention.ms``, then ``.minutes``, then
``.hours``). Kafka reports a topic config's synonyms as the places its *first* broker
synonym's group has a value, grouped by source (dynamic per-broker, dynamic cluster default,
static, Kafka default) and dropping every entry before the first one carrying that first
name: so a plain topic's ``retention.ms`` lists no synonym at all (only
``log.retention.hours`` has a default), as Kafka's does.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["broker_config_synonyms", "topic_config_synonyms"]


def _log(*names: str) -> tuple[str, ...]:
    return tuple(f"log.{n}" for n in names)


_TOPIC_TO_BROKER: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "segment.bytes": _log("segment.bytes"),
    "segment.ms": _log("roll.ms", "roll.hours"),
    "segment.jitter.ms": _log("roll.jitter.ms", "roll.jitter.hours"),
    "segment.index.bytes": _log("index.size.max.bytes"),
    "flush.messages": _log("flush.interval.messages"),
    "flush.ms": _log("flush.interval.ms", "flush.scheduler.interval.ms"),
    "retention.bytes": _log("retention.bytes"),
    "retention.ms": _log("retention.ms", "retention.minutes", "retention.hours"),
    "max.message.bytes": ("message.max.bytes",),
    "index.interval.bytes": _log("index.interval.bytes"),
    "delete.retention.ms": _log("cleaner.delete.retention.ms"),
    "min.compaction.lag.ms": _log("cleaner.min.compaction.lag.ms"),
    "max.compaction.lag.ms": _log("cleaner.max.compaction.lag.ms"),
    "file.delete.delay.ms": _log("segment.delete.delay.ms"),
    "min.cleanable.dirty.ratio": _log("cleaner.min.cleanable.ratio"),
    "cleanup.policy": _log("cleanup.policy"),
    "unclean.leader.election.enable": ("unclean.leader.election.enable",),
    "min.insync.replicas": ("min.insync.replicas",),
    "compression.type": ("compression.type",),
    "compression.gzip.level": ("compression.gzip.level",),
    "compression.lz4.level": ("compression.lz4.level",),
    "compression.zstd.level": ("compression.zstd.level",),
    "preallocate": _log("preallocate"),
    "message.timestamp.type": _log("message.timestamp.type"),
    "message.timestamp.before.max.ms": _log("message.timestamp.before.max.ms"),
    "message.timestamp.after.max.ms": _log("message.timestamp.after.max.ms"),
    "local.retention.ms": _log("local.retention.ms"),
    "local.retention.bytes": _log("local.retention.bytes"),
})

#: Broker configs that are alternatives for one setting, highest precedence first.
_BROKER_GROUPS = (
    _log("roll.ms", "roll.hours"),
    _log("roll.jitter.ms", "roll.jitter.hours"),
    _log("retention.ms", "retention.minutes", "retention.hours"),
)


def topic_config_synonyms(name: str) -> tuple[str, ...]:
    """The broker configs that set topic config ``name``'s default, highest precedence first
    (empty for topic configs without a broker default, e.g. the throttled-replica lists)."""
    return _TOPIC_TO_BROKER.get(name, ())


def broker_config_synonyms(name: str) -> tuple[str, ...]:
    """Kafka's brokerConfigSynonyms: the group a broker config belongs to, in precedence order
    (``log.flush.interval.ms`` falls back to ``log.flush.scheduler.interval.ms``)."""
    if name == "log.flush.interval.ms":
        return _log("flush.interval.ms", "flush.scheduler.interval.ms")
    return next((group for group in _BROKER_GROUPS if name in group), (name,))
