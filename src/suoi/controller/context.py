"""What the operation modules (`topics`, `partitions`, `configs`, ...) see of the controller.

`QuorumController` calls into those modules, and they call back into it (stage a record, finish
the operation, read the working state). They name it by this protocol, so they sit below
`controller.py` rather than in a loop with it; `ControllerConfig` lives here for the same reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from suoi.controller.image import BrokerRegistration, MetadataBuilder, MetadataImage
from suoi.controller.messages import ControllerResult
from suoi.controller.records import Record
from suoi.log.config import LogConfig

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class ControllerConfig:
    node_id: int = -1  # this controller's node id (named in some refusals, as Kafka does)
    session_timeout_ms: int = 9000  # broker.session.timeout.ms
    #: broker.connection.loss.fence.ms (suoi): once the connection a broker heartbeats on closes,
    #: it must heartbeat again within this long or be fenced (0: only the session timeout).
    connection_loss_fence_ms: int = 3000
    num_partitions: int = 1  # num.partitions
    default_replication_factor: int = 1  # default.replication.factor
    producer_id_block_size: int = 1000
    unclean_leader_election_enable: bool = False
    delete_topic_enable: bool = True
    auto_leader_rebalance_enable: bool = True  # auto.leader.rebalance.enable
    leader_imbalance_check_interval_ms: int = 300_000  # leader.imbalance.check.interval.seconds * 1000
    leader_imbalance_per_broker_percentage: int = 10  # leader.imbalance.per.broker.percentage
    log_config: LogConfig = field(default_factory=LogConfig)  # broker defaults, to validate topic configs
    # Validates the resulting overrides of a broker resource (AlterConfigs); raise ValueError to refuse.
    broker_config_validator: Callable[[str, Mapping[str, str]], None] | None = None


class OperationContext(Protocol):
    """The controller as an operation sees it (`QuorumController` is the one implementation)."""

    config: ControllerConfig
    state: MetadataBuilder

    @property
    def image(self) -> MetadataImage:
        """The working state (includes appended, not yet committed records)."""
        ...

    def stage(self, record: Record) -> None:
        """Apply ``record`` to the working state; it is appended by the next `finish`."""

    def finish(self, response: T) -> ControllerResult[T]:
        """Append the staged records as one batch and wrap the response."""
        ...

    def eligible(self, broker_id: int) -> bool: ...

    def check_broker_epoch(self, broker_id: int, broker_epoch: int) -> BrokerRegistration: ...

    def unclean_enabled(self, topic_id: uuid.UUID) -> bool: ...

    def new_topic_id(self) -> uuid.UUID: ...

    def new_uuid(self) -> uuid.UUID: ...
