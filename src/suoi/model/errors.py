"""Kafka error codes and the exception that carries one.

The codes themselves come from kio (generated from Kafka's own error table), so the
numbers and retriable flags can never drift from what clients expect.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

__all__ = ["ErrorCode", "KafkaError"]


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
