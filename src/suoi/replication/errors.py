"""Kafka error codes used by the replication state machines.

Plain ints (this package imports nothing from kio); the values are Kafka's own and a unit
test checks them against kio's `ErrorCode`, so the API layer can pass them through as is.
"""

from __future__ import annotations

from enum import IntEnum


class Err(IntEnum):
    NONE = 0
    OFFSET_OUT_OF_RANGE = 1
    UNKNOWN_TOPIC_OR_PARTITION = 3
    NOT_LEADER_OR_FOLLOWER = 6
    REQUEST_TIMED_OUT = 7
    NOT_ENOUGH_REPLICAS = 19
    NOT_ENOUGH_REPLICAS_AFTER_APPEND = 20
    OPERATION_NOT_ATTEMPTED = 55
    FENCED_LEADER_EPOCH = 74
    INVALID_UPDATE_VERSION = 95
    INELIGIBLE_REPLICA = 107
