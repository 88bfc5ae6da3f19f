"""Storage-layer errors, each carrying the Kafka error code the API layer sends.

Keeping the code on the exception lets request handlers map any storage
failure to a response with a single ``except LogError as e: e.error_code``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from suoi.model import ErrorCode

if TYPE_CHECKING:
    from suoi.log.batch_check import CorruptBatch

__all__ = [
    "CorruptRecordError",
    "InvalidConfigError",
    "InvalidPartitionsError",
    "InvalidProducerEpochError",
    "InvalidTopicError",
    "InvalidTxnStateError",
    "KafkaStorageError",
    "LogError",
    "OffsetOutOfRangeError",
    "OutOfOrderSequenceError",
    "TopicExistsError",
    "TransactionCoordinatorFencedError",
    "TruncationBelowHighWatermarkError",
    "UnexpectedAppendOffsetError",
    "UnknownTopicOrPartitionError",
]


class LogError(Exception):
    """Base class of storage errors; ``error_code`` is the Kafka error code."""

    error_code: ErrorCode = ErrorCode.unknown_server_error


class OffsetOutOfRangeError(LogError):
    """Requested offset is below the log start offset or beyond the log end offset."""

    error_code = ErrorCode.offset_out_of_range


class CorruptRecordError(LogError):
    """The next batch to serve failed its framing or CRC32C check (CORRUPT_MESSAGE); the
    ``batch`` attribute (a ``batch_check.CorruptBatch``) says where and why."""

    error_code = ErrorCode.corrupt_message

    def __init__(self, batch: CorruptBatch) -> None:
        super().__init__(str(batch))
        self.batch = batch


class UnknownTopicOrPartitionError(LogError, KeyError):
    error_code = ErrorCode.unknown_topic_or_partition

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class InvalidTopicError(LogError, ValueError):
    error_code = ErrorCode.invalid_topic_exception


class TopicExistsError(LogError):
    error_code = ErrorCode.topic_already_exists


class InvalidPartitionsError(LogError, ValueError):
    error_code = ErrorCode.invalid_partitions


class InvalidConfigError(LogError, ValueError):
    error_code = ErrorCode.invalid_config


class KafkaStorageError(LogError, OSError):
    """The disk failed underneath us (ENOSPC, EIO...); the log was left as before."""

    error_code = ErrorCode.kafka_storage_error


class UnexpectedAppendOffsetError(LogError):
    """A follower append does not continue the log (its first offset is not the log end
    offset, or its batches are not contiguous); Kafka's UnexpectedAppendOffsetException."""


class TruncationBelowHighWatermarkError(LogError):
    """``truncate_to`` would remove records below the high watermark (acknowledged data)."""


class OutOfOrderSequenceError(LogError):
    error_code = ErrorCode.out_of_order_sequence_number


class InvalidProducerEpochError(LogError):
    error_code = ErrorCode.invalid_producer_epoch


class InvalidTxnStateError(LogError):
    error_code = ErrorCode.invalid_txn_state


class TransactionCoordinatorFencedError(LogError):
    error_code = ErrorCode.transaction_coordinator_fenced
