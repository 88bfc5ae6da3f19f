"""The exception the controller refuses a request with: a Kafka error code and a message.

Codes are `suoi.model.ErrorCode` values (Kafka's own table, via kio), so the API layer
passes them through as is.
"""

from __future__ import annotations

from suoi.model import ErrorCode

__all__ = ["ApiError"]


class ApiError(Exception):
    """A refusal with a Kafka error code and a message for the response's error_message."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"ApiError({self.code.name}, {self.message!r})"
