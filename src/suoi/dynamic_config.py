"""Dynamic broker configs: set at run time (AlterConfigs / IncrementalAlterConfigs on a
BROKER resource), persisted, and applied without a restart.

Kafka keeps these in its metadata log; a single suoi node keeps them next to
meta.properties in the first log dir, as `dynamic-broker-configs.json`:

    {"version": 1, "cluster_default": {"log.retention.ms": "60000"}, "broker": {}}

`cluster_default` is the BROKER resource named "" (Kafka's DYNAMIC_DEFAULT_BROKER_CONFIG),
`broker` the one named by this node's id (DYNAMIC_BROKER_CONFIG). Precedence, highest
first: per-broker dynamic, cluster-default dynamic, server.properties/flags, built-in default.

The broker-wide defaults of topic configs suoi uses (`log.*`, `message.max.bytes`,
`compression.type`, ...) are dynamic and applied at once, as in Kafka; its other keys are
read-only at run time. Any other config Kafka 4 can change at run time (per-broker or
cluster-wide in `suoi.configdefs`) is accepted with Kafka's validation, kept and described,
but ignored; security settings (TLS, SASL, ACLs) are refused, since suoi does not implement
them yet. In KRaft the file is a copy of the metadata log's ConfigRecords (applied at start
before the log is replayed), so it is written by the reconciler on the event loop through a
temporary file renamed over it without an fsync: a crash of the process leaves the old or the new
file; one of the machine may leave an old or unreadable copy, which the metadata log replaces.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import MappingProxyType

from suoi.atomic_file import discard_tmp, write_atomically
from suoi.config import KNOWN, LISTENER_LIMIT, BrokerConfig
from suoi.configdefs import (
    BROKER_CONFIGS,
    IMPLEMENTED_SECURITY,
    RECONFIGURABLE_SSL,
    ConfigValueError,
    dynamic_ssl_key,
    is_listener_security_key,
    unimplemented_security_feature,
)
from suoi.log.config import BROKER_TO_TOPIC_CONFIG, LogConfig

log = logging.getLogger("suoi.config")

FILE_NAME = "dynamic-broker-configs.json"

#: Broker key -> the topic config it is the default of (None: only a scaled synonym).
#: The topic-config defaults come from the log layer's one map; the log cleaner's are not
#: dynamic here (the cleaner reads them when it starts), but for its I/O rate (Kafka's
#: ``LogCleaner.reconfigure``: a build in progress follows it, ``log.cleaner_pace``).
DYNAMIC_KEYS = MappingProxyType({
    **{k: v for k, v in BROKER_TO_TOPIC_CONFIG.items() if not k.startswith("log.cleaner.")},
    "log.roll.hours": None,
    "unclean.leader.election.enable": "unclean.leader.election.enable",
    "log.retention.minutes": None,
    "log.retention.hours": None,
    "log.cleaner.io.max.bytes.per.second": None,
    # connection limits (cluster-wide dynamic in Kafka), applied by Broker.reconfigure
    "max.connections": None,
    "max.connections.per.ip": None,
    "max.connections.per.ip.overrides": None,
    "max.connection.creation.rate": None,
})


def is_sensitive(key: str) -> bool:
    """A PASSWORD config (also with a listener prefix): never logged nor described with its value."""
    found = dynamic_ssl_key(key)
    definition = BROKER_CONFIGS.get(found[1] if found is not None else key)
    return definition is not None and definition.sensitive


def redacted(configs: dict[str, str]) -> dict[str, str]:
    """``configs`` fit for a log line: sensitive values replaced."""
    return {k: "[hidden]" if is_sensitive(k) else v for k, v in configs.items()}


class DynamicConfigError(ValueError):
    """A dynamic broker config that cannot be set (unknown, read-only or a bad value)."""


def validate(key: str, value: str, *, cluster_default: bool = False) -> None:
    """Raise DynamicConfigError with a message fit for INVALID_CONFIG (Kafka's wording)."""
    if dynamic_ssl_key(key) is not None:  # a listener's keystore/truststore (suoi.security.dynamic)
        if cluster_default:
            raise DynamicConfigError(
                f"Cannot update these configs at default cluster level, broker id must be specified: Set({key})")
        return
    if LISTENER_LIMIT.match(key):  # listener.name.<l>.max.connections / .max.connection.creation.rate
        if not value.strip().isdigit():
            raise DynamicConfigError(f"Invalid value {value} for configuration {key}: Not a number of type INT")
        return
    if is_listener_security_key(key):  # listener.name.<l>.<a TLS/SASL setting other than a keystore>
        raise DynamicConfigError(f"suoi does not implement reloading this TLS/SASL setting at run time: set {key} "
                                 f"in server.properties and restart the node")
    definition = BROKER_CONFIGS.get(key)
    used = key in KNOWN
    if not used and definition is None:
        raise DynamicConfigError(f"Unknown broker config name: {key}")
    feature = None if used else unimplemented_security_feature(key)
    if feature is not None:
        raise DynamicConfigError(f"suoi does not implement {feature} yet: {key} cannot be set")
    if key in RECONFIGURABLE_SSL:  # Kafka: dynamic keystores are per listener
        raise DynamicConfigError(f"{key} can be updated dynamically only per listener: set "
                                 f"listener.name.<listener name, lower case>.{key}")
    if key in IMPLEMENTED_SECURITY:  # read when the listeners start (suoi.security)
        raise DynamicConfigError(f"suoi does not implement reloading this TLS/SASL setting at run time: set {key} "
                                 f"in server.properties and restart the node")
    if not (key in DYNAMIC_KEYS if used else definition is not None and definition.dynamic):
        raise DynamicConfigError(f"Cannot update these configs dynamically: Set({key})")
    if cluster_default and definition is not None and definition.mode == "per-broker":
        raise DynamicConfigError(
            f"Cannot update these configs at default cluster level, broker id must be specified: Set({key})")
    try:
        if definition is not None:  # Kafka's type (and, for keys suoi ignores, its validator)
            definition.parse(value, validators=not used)
        if used:
            KNOWN[key][0](value)  # type: ignore[operator]
    except ConfigValueError as exc:
        raise DynamicConfigError(str(exc)) from None
    except ValueError as exc:
        raise DynamicConfigError(f"Invalid value {value} for configuration {key}: {exc}") from None
    topic_name = DYNAMIC_KEYS.get(key)
    if topic_name is not None:
        try:
            LogConfig.from_topic_configs(LogConfig(), {topic_name: value})
        except ValueError as exc:
            raise DynamicConfigError(str(exc).replace(topic_name, key)) from None


class DynamicBrokerConfigs:
    """The two dynamic layers and their file. Not thread-safe (event loop thread only)."""

    def __init__(self, log_dir: Path) -> None:
        self.path = Path(log_dir) / FILE_NAME
        self.cluster_default: dict[str, str] = {}
        self.broker: dict[str, str] = {}

    def load(self) -> None:
        """The copy the last run kept (a leftover temporary file is never read). Unreadable (an OS
        crash after an unsynced write): ignored, the metadata log's records set the layers again."""
        discard_tmp(self.path)
        try:
            doc = json.loads(self.path.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable %s (the metadata log sets the dynamic configs again): %s", self.path, exc)
            return
        self.cluster_default = {str(k): str(v) for k, v in doc.get("cluster_default", {}).items()}
        self.broker = {str(k): str(v) for k, v in doc.get("broker", {}).items()}

    def layer(self, *, cluster_default: bool) -> dict[str, str]:
        return dict(self.cluster_default if cluster_default else self.broker)

    def replace(self, configs: dict[str, str], *, cluster_default: bool) -> None:
        """Set one layer (already validated) and persist both."""
        if cluster_default:
            self.cluster_default = dict(configs)
        else:
            self.broker = dict(configs)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        doc = {"version": 1, "cluster_default": self.cluster_default, "broker": self.broker}
        write_atomically(self.path, json.dumps(doc, indent=1, sort_keys=True), fsync=False)

    def merged(self, static: BrokerConfig) -> BrokerConfig:
        """`static` with both dynamic layers applied on top."""
        values = dict(static.values)
        for key, raw in {**self.cluster_default, **self.broker}.items():
            if key in KNOWN:
                values[key] = KNOWN[key][0](raw)  # type: ignore[operator]
            elif dynamic_ssl_key(key) is not None:
                values[key] = raw
            elif LISTENER_LIMIT.match(key):
                values[key] = int(raw)
        ignored = {**static.ignored, **{k: v for k, v in {**self.cluster_default, **self.broker}.items()
                                         if k not in KNOWN and dynamic_ssl_key(k) is None
                                         and not LISTENER_LIMIT.match(k)}}
        return BrokerConfig(values, ignored)
