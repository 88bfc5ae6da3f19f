"""A topic as the storage layer knows it: its own module so that the log manager and the jobs it
hands to threads (`log_jobs`) both use it without importing each other."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from suoi.log.config import LogConfig

__all__ = ["TopicInfo"]


@dataclass(frozen=True, slots=True)
class TopicInfo:
    """A topic as the storage layer knows it; ``configs`` are the overrides only."""

    name: str
    topic_id: uuid.UUID
    partitions: int
    configs: Mapping[str, str]
    config: LogConfig
    #: Partitions with a replica on this node; None = all (a single node hosts everything).
    #: In a cluster the metadata image decides, see `host_partitions`.
    hosted: frozenset[int] | None = None

    def hosts(self, partition: int) -> bool:
        return 0 <= partition < self.partitions and (self.hosted is None or partition in self.hosted)
