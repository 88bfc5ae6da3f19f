"""The BROKER_LOGGER config resource (type 8, KIP-412): log levels read and changed at run time.

``kafka-configs.sh --entity-type broker-loggers --entity-name <id>`` describes and alters the
levels of one broker's loggers with DescribeConfigs and IncrementalAlterConfigs. suoi's loggers
are Python's (`logging`): the root (Kafka's name ``root``) and the ``suoi.*`` loggers created so
far. As Kafka's, the resource lives on the broker itself (never in the metadata log): a change
is this process's only and is gone at restart; the resource name must be this node's id.

Levels use Kafka's (log4j) names. Python has no TRACE, FATAL or OFF, so they map to numeric
levels: TRACE 5 (below DEBUG), DEBUG 10, INFO 20, WARN 30, ERROR 40, FATAL 50 (CRITICAL),
OFF 60 (above everything). An effective level between two names is described by the next name
up (a level 15 lets INFO through but not DEBUG: INFO), the root's NOTSET (0) as TRACE.

Kafka's rules (ConfigAdminManager, ConfigHelper): a SET names an existing logger and one of
FATAL, ERROR, WARN, INFO, DEBUG, TRACE (else INVALID_CONFIG); a DELETE (Kafka's "unset") makes
the logger inherit its parent's level again, and is refused for ``root`` (INVALID_REQUEST), as
are APPEND and SUBTRACT; every entry is described with source DYNAMIC_BROKER_LOGGER_CONFIG (6),
not read-only, not sensitive; DescribeConfigs naming an unknown logger lists nothing for it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from suoi.model import ErrorCode

log = logging.getLogger("suoi.api")

BROKER_LOGGER = 8
#: DescribeConfigsResponse ConfigSource of a logger's level (Kafka's DYNAMIC_BROKER_LOGGER_CONFIG).
DYNAMIC_BROKER_LOGGER_CONFIG = 6
ROOT = "root"
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3
TRACE = 5
#: Kafka's level names, lowest first, and the Python level each stands for.
LEVELS = {"TRACE": TRACE, "DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARN": logging.WARNING,
          "ERROR": logging.ERROR, "FATAL": logging.CRITICAL, "OFF": logging.CRITICAL + 10}
#: What a SET may name (Kafka's LogLevelConfig.VALID_LOG_LEVELS: OFF is described, never set).
SETTABLE = ("FATAL", "ERROR", "WARN", "INFO", "DEBUG", "TRACE")


class LoggerConfigError(Exception):
    """A BROKER_LOGGER change Kafka refuses, with its error code."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def level_name(level: int) -> str:
    """Kafka's name for a Python effective level: the lowest Kafka level at or above it."""
    return next((name for name, value in LEVELS.items() if level <= value), "OFF")


def loggers() -> dict[str, logging.Logger]:
    """The root and every ``suoi`` logger created so far, by Kafka name (placeholders left out)."""
    found: dict[str, logging.Logger] = {ROOT: logging.getLogger()}
    for name, value in sorted(logging.Logger.manager.loggerDict.items()):
        if isinstance(value, logging.Logger) and (name == "suoi" or name.startswith("suoi.")):
            found[name] = value
    return found


def describe(keys: Iterable[str] | None) -> list[dict[str, Any]]:
    """DescribeConfigs entries of the loggers (``keys``: only those named; unknown names are left out)."""
    wanted = set(keys) if keys else None
    return [{"name": name, "value": level_name(logger.getEffectiveLevel()), "read_only": False,
             "config_source": DYNAMIC_BROKER_LOGGER_CONFIG, "is_sensitive": False, "config_type": 0,
             "documentation": None, "synonyms": []}
            for name, logger in loggers().items() if wanted is None or name in wanted]


def describe_error(resource_name: str, node_id: int) -> str | None:
    """Why DescribeConfigs refuses this BROKER_LOGGER resource name (INVALID_REQUEST), as Kafka's
    ConfigHelper words it; None when it names this broker."""
    if not resource_name:
        return "Broker id must not be empty"
    try:
        requested = int(resource_name)
    except ValueError:
        return f"Broker id must be an integer, but it is: {resource_name}"
    return None if requested == node_id else f"Unexpected broker id, expected {node_id} but received {resource_name}"


def check_node(resource_name: str, node_id: int) -> None:
    """Kafka's validateResourceNameIsCurrentNodeId: the resource is this broker's own."""
    try:
        requested = int(resource_name)
    except ValueError:
        raise LoggerConfigError(ErrorCode.invalid_request,
                                f"Node id must be an integer, but it is: {resource_name}") from None
    if requested != node_id:
        raise LoggerConfigError(ErrorCode.invalid_request,
                                f"Unexpected broker id, expected {node_id}, but received {resource_name}")


def alter(resource_name: str, node_id: int, ops: list[tuple[str, int, str | None]], validate_only: bool) -> None:
    """Apply (name, operation, value) changes to this node's loggers, all or none (checked first)."""
    check_node(resource_name, node_id)
    existing = loggers()
    if len({name for name, _op, _value in ops}) != len(ops):
        raise LoggerConfigError(ErrorCode.invalid_request, "Error due to duplicate config keys")
    nulls = [name for name, op, value in ops if op != DELETE and value is None]
    if nulls:
        raise LoggerConfigError(ErrorCode.invalid_request, f"Null value not supported for : {', '.join(nulls)}")
    for name, op, value in ops:
        if op in (APPEND, SUBTRACT):
            raise LoggerConfigError(ErrorCode.invalid_request,
                                    f"{'APPEND' if op == APPEND else 'SUBTRACT'} operation is not allowed "
                                    "for the BROKER_LOGGER resource")
        if op not in (SET, DELETE):
            raise LoggerConfigError(ErrorCode.invalid_request,
                                    f"Unknown operation type {op} is not allowed for the BROKER_LOGGER resource")
        if name not in existing:
            raise LoggerConfigError(ErrorCode.invalid_config, f"Logger {name} does not exist!")
        if op == SET and value not in SETTABLE:
            raise LoggerConfigError(
                ErrorCode.invalid_config, f"Cannot set the log level of {name} to {value} as it is not a supported log level. "
                f"Valid log levels are {', '.join(SETTABLE)}")
        if op == DELETE and name == ROOT:
            raise LoggerConfigError(ErrorCode.invalid_request, f"Removing the log level of the {ROOT} logger is not allowed")
    if validate_only:
        return
    for name, op, value in ops:
        if op == SET and value is not None:  # (never None here: refused above)
            log.info("Updating the log level of %s to %s", name, value)
            existing[name].setLevel(LEVELS[value])
        else:
            log.info("Unset the log level of %s", name)
            existing[name].setLevel(logging.NOTSET)


def twice(resource: Any) -> dict[str, Any]:
    """The answer to a BROKER_LOGGER resource named twice in one request (none of them applied)."""
    return _answer(resource, ErrorCode.invalid_request, "Each resource must appear at most once.")


def _answer(resource: Any, error: ErrorCode, message: str | None) -> dict[str, Any]:
    return {"error_code": error, "error_message": message, "resource_type": BROKER_LOGGER,
            "resource_name": resource.resource_name}


def alter_resource(resource: Any, node_id: int, validate_only: bool) -> dict[str, Any]:
    """IncrementalAlterConfigs' answer for one BROKER_LOGGER resource (applied unless validate_only)."""
    error, message = ErrorCode.none, None
    try:
        alter(resource.resource_name, node_id,
              [(c.name, int(c.config_operation), c.value) for c in resource.configs], validate_only)
    except LoggerConfigError as exc:
        error, message = exc.code, str(exc)
        log.info("IncrementalAlterConfigs of broker loggers %r refused: %s", resource.resource_name, message)
    return _answer(resource, error, message)
