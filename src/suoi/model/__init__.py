"""Value types shared by every layer (no I/O, no imports from other suoi packages)."""

from suoi.model.errors import ErrorCode, KafkaError
from suoi.model.types import TopicPartition

__all__ = ["ErrorCode", "KafkaError", "TopicPartition"]
