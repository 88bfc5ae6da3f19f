"""On-disk storage: segmented partition logs with Kafka's file layout.

No networking and no asyncio here - callers run it on the event-loop thread.
"""

from suoi.log.config import TOPIC_CONFIG_DEFAULTS, LogConfig
from suoi.log.errors import (
    InvalidConfigError,
    InvalidPartitionsError,
    InvalidTopicError,
    KafkaStorageError,
    LogError,
    OffsetOutOfRangeError,
    TopicExistsError,
    UnknownTopicOrPartitionError,
)
from suoi.log.manager import LogManager
from suoi.log.partition_log import AppendInfo, PartitionLog
from suoi.log.topic_info import TopicInfo

__all__ = [
    "TOPIC_CONFIG_DEFAULTS",
    "AppendInfo",
    "InvalidConfigError",
    "InvalidPartitionsError",
    "InvalidTopicError",
    "KafkaStorageError",
    "LogConfig",
    "LogError",
    "LogManager",
    "OffsetOutOfRangeError",
    "PartitionLog",
    "TopicExistsError",
    "TopicInfo",
    "UnknownTopicOrPartitionError",
]
