"""Kafka error codes (the one `ErrorCode` of every package) and the exception that carries one.

`ErrorCode` is kio's enum, generated from Kafka's own error table: one member per Kafka
error (Kafka's name in lower case, e.g. `ErrorCode.not_leader_or_follower` is
NOT_LEADER_OR_FOLLOWER), its code as the value and `retriable` as Kafka declares it.
Using kio's type itself (not a copy) means the codes can never drift from what clients
expect and the API layer puts them into responses without conversion. Packages that
must not import kio (controller, replication: sans-IO) import it from here.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

__all__ = ["ErrorCode", "KafkaError", "NotControllerError"]


class KafkaError(Exception):
    """An error that maps to one Kafka error code in a response.

    Layers below `api` raise it (or subclasses); handlers turn it into the error code of
    the partition, topic or request it concerns.
    """

    error_code: ErrorCode = ErrorCode.unknown_server_error

    def __init__(self, message: str = "", error_code: ErrorCode | int | None = None) -> None:
        super().__init__(message)
        if error_code is not None:
            self.error_code = ErrorCode(error_code)


class NotControllerError(KafkaError):
    """This node is not (or no longer) the active controller, or none answered: NOT_CONTROLLER.

    Raised by the KRaft runtime's controller channel and caught by handlers, so it lives here
    rather than in `suoi.cluster` (handlers must not import the runtime for its types)."""

    error_code = ErrorCode.not_controller
