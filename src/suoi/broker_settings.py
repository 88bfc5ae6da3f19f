"""What a node builds from its configuration: the log layer's topic-config defaults, the group
and transaction coordinators' settings, and a live view of the config values.

Kept apart from `broker.py` (the composition root, which re-exports these names) because it is
pure translation of Kafka's property names into the settings of the layers below, with no
lifecycle: it can be read, and tested (tests/unit/test_config.py), without a running node.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from suoi.config import KNOWN, BrokerConfig
from suoi.coordinator.group.types import GroupConfig
from suoi.coordinator.group_coordinator import CoordinatorConfig
from suoi.coordinator.txn import TxnConfig
from suoi.coordinator.txn_coordinator import TxnCoordinatorConfig
from suoi.log.config import BROKER_TO_TOPIC_CONFIG, LogConfig

if TYPE_CHECKING:
    from suoi.node import NodeConfig

__all__ = ["coordinator_config_from", "log_config_from", "txn_config_from"]


def log_config_from(cfg: BrokerConfig) -> LogConfig:
    """Broker-wide topic-config defaults, through the log layer's one broker->topic mapping
    (so `log.retention.ms` beats `.minutes` beats `.hours`, as in Kafka)."""
    names = (*BROKER_TO_TOPIC_CONFIG, "log.retention.minutes", "log.retention.hours", "log.roll.hours")
    props = {name: str(cfg.get(name)) for name in names if name in KNOWN and cfg.get(name) is not None}
    base = LogConfig.from_broker_configs(props)
    return dataclasses.replace(base, producer_id_expiration_ms=cfg.get_int("producer.id.expiration.ms"))


def coordinator_config_from(cfg: BrokerConfig) -> CoordinatorConfig:
    return CoordinatorConfig(
        offsets_partitions=cfg.get_int("offsets.topic.num.partitions"),
        offsets_segment_bytes=cfg.get_int("offsets.topic.segment.bytes"),
        offsets_retention_ms=cfg.get_int("offsets.retention.minutes") * 60_000,
        offsets_retention_check_ms=cfg.get_int("offsets.retention.check.interval.ms"),
        offset_metadata_max_bytes=cfg.get_int("offset.metadata.max.bytes"),
        group=GroupConfig(
            min_session_timeout_ms=cfg.get_int("group.min.session.timeout.ms"),
            max_session_timeout_ms=cfg.get_int("group.max.session.timeout.ms"),
            initial_rebalance_delay_ms=cfg.get_int("group.initial.rebalance.delay.ms"),
            max_size=cfg.optional_int("group.max.size"),
        ),
    )


def txn_config_from(cfg: BrokerConfig) -> TxnCoordinatorConfig:
    return TxnCoordinatorConfig(
        state_partitions=cfg.get_int("transaction.state.log.num.partitions"),
        state_segment_bytes=cfg.get_int("transaction.state.log.segment.bytes"),
        txn=TxnConfig(
            max_timeout_ms=cfg.get_int("transaction.max.timeout.ms"),
            id_expiration_ms=cfg.get_int("transactional.id.expiration.ms"),
        ),
    )


class _LiveValues(Mapping[str, object]):
    """The node's current config values (static + dynamic), read at each lookup."""

    def __init__(self, broker: NodeConfig) -> None:
        self._broker = broker

    def __getitem__(self, key: str) -> object:
        return self._broker.config.values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._broker.config.values)

    def __len__(self) -> int:
        return len(self._broker.config.values)
