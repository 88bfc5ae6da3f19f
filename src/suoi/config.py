"""Broker configuration, read with Kafka's own property names.

A user's `server.properties` from Apache Kafka mostly works as is: the keys we know are
applied, the other keys Kafka 4 defines (`suoi.configdefs`) are checked against Kafka's type
and validator, kept (DescribeConfigs reports them) and listed once at start, in one line, as
ignored by suoi; anything else is warned about as unknown rather than ignored silently.
Command-line flags override the file.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from suoi.config_security import check_security_settings
from suoi.configdefs import BROKER_CONFIGS, IMPLEMENTED_SECURITY, ConfigValueError, is_listener_security_key
from suoi.quota.connections import parse_overrides

log = logging.getLogger("suoi.config")

HOUR_MS = 3_600_000

# key -> (parser, default). Defaults are Apache Kafka's, except the listener, which binds
# loopback only so that a first `make run` does not expose a broker to the network.
_INT = int


def _bool(v: str) -> bool:
    s = v.strip().lower()
    if s in ("true", "1", "yes"):
        return True
    if s in ("false", "0", "no"):
        return False
    raise ValueError(f"not a boolean: {v!r}")


def _overrides(v: str) -> str:
    parse_overrides(v)  # host:count pairs, refused at start otherwise
    return v


def _str(v: str) -> str:
    return v.strip()


def _non_negative(v: str) -> int:
    n = int(v)
    if n < 0:
        raise ValueError("must be at least 0")
    return n


def _http_listener(v: str) -> str:
    """One http://HOST:PORT (an empty value: none): `schema.registry.listeners`, `console.listeners`.
    TLS and lists are refused at start in one line, not ignored."""
    v = v.strip()
    if v and not re.fullmatch(r"(?i)http://(\[[0-9a-f:.]+\]|[^\s:/,\[\]]*):\d{1,5}/?", v):
        raise ValueError("expected http://HOST:PORT (one listener; https is not supported)")
    return v


KNOWN: dict[str, tuple[object, object]] = {
    "node.id": (_INT, 1),
    "broker.id": (_INT, None),
    "listeners": (_str, "PLAINTEXT://127.0.0.1:9092"),
    "console.listeners": (_http_listener, None),  # http://HOST:PORT: serve the web console (suoi.http.console)
    "advertised.listeners": (_str, None),
    "listener.security.protocol.map": (_str, None),
    # Default: the first listener that is not a controller listener (see BrokerConfig).
    "inter.broker.listener.name": (_str, None),
    "log.dirs": (_str, None),
    "log.dir": (_str, "./suoi-data"),
    "num.partitions": (_INT, 1),
    "default.replication.factor": (_INT, 1),
    "auto.create.topics.enable": (_bool, True),
    "delete.topic.enable": (_bool, True),
    "log.retention.hours": (_INT, 168),
    "log.retention.minutes": (_INT, None),
    "log.retention.ms": (_INT, None),
    "log.retention.bytes": (_INT, -1),
    "log.retention.check.interval.ms": (_INT, 300_000),
    "log.segment.bytes": (_INT, 1024 * 1024 * 1024),
    "log.roll.hours": (_INT, 168),
    "log.roll.ms": (_INT, None),
    "log.index.interval.bytes": (_INT, 4096),
    "log.cleanup.policy": (_str, "delete"),
    # the codec batches are stored with when a topic has no compression.type of its own
    "compression.type": (_str, "producer"),
    # read by the active controller from the metadata log (cluster default and per topic)
    "unclean.leader.election.enable": (_bool, False),
    "log.message.timestamp.type": (_str, "CreateTime"),
    "log.message.timestamp.before.max.ms": (_INT, 9223372036854775807),
    "log.message.timestamp.after.max.ms": (_INT, 3_600_000),
    "message.max.bytes": (_INT, 1048588),
    "socket.request.max.bytes": (_INT, 104857600),
    "log.flush.interval.messages": (_INT, None),
    "log.flush.interval.ms": (_INT, None),
    "log.flush.scheduler.interval.ms": (_INT, 1000),
    "log.flush.offset.checkpoint.interval.ms": (_INT, 60_000),
    "cluster.id": (_str, None),
    "producer.id.expiration.ms": (_INT, 86_400_000),
    "offsets.topic.num.partitions": (_INT, 50),
    "offsets.topic.segment.bytes": (_INT, 100 * 1024 * 1024),
    "offsets.retention.minutes": (_INT, 10080),
    "offsets.retention.check.interval.ms": (_INT, 600_000),
    "offset.metadata.max.bytes": (_INT, 4096),
    "group.initial.rebalance.delay.ms": (_INT, 3000),
    "group.min.session.timeout.ms": (_INT, 6000),
    "group.max.session.timeout.ms": (_INT, 1_800_000),
    "group.max.size": (_INT, None),
    "log.cleaner.backoff.ms": (_INT, 15_000),
    "log.cleaner.delete.retention.ms": (_INT, 86_400_000),
    "log.cleaner.min.compaction.lag.ms": (_INT, 0),
    "log.cleaner.max.compaction.lag.ms": (_INT, 9223372036854775807),
    "log.cleaner.min.cleanable.ratio": (float, 0.5),
    "log.cleaner.io.max.bytes.per.second": (float, 1.7976931348623157e308),
    "transaction.state.log.num.partitions": (_INT, 50),
    "transaction.state.log.segment.bytes": (_INT, 100 * 1024 * 1024),
    "transaction.max.timeout.ms": (_INT, 900_000),
    "transactional.id.expiration.ms": (_INT, 604_800_000),
    "process.roles": (_str, None),
    "controller.quorum.voters": (_str, None),
    "controller.quorum.bootstrap.servers": (_str, None),
    "controller.listener.names": (_str, "CONTROLLER"),
    "metadata.log.dir": (_str, None),
    "broker.rack": (_str, None),
    "broker.session.timeout.ms": (_INT, 9000),
    "broker.heartbeat.interval.ms": (_INT, 2000),
    "controlled.shutdown.enable": (_bool, True),
    # suoi: a broker whose heartbeat connection to the controller closes is fenced if it does
    # not heartbeat again within this long (0: only broker.session.timeout.ms, as Kafka).
    "broker.connection.loss.fence.ms": (_INT, 3000),
    "controller.quorum.election.timeout.ms": (_INT, 1000),
    "controller.quorum.election.backoff.max.ms": (_INT, 1000),
    "controller.quorum.fetch.timeout.ms": (_INT, 2000),
    "controller.quorum.request.timeout.ms": (_INT, 2000),
    "controller.quorum.retry.backoff.ms": (_INT, 20),
    "metadata.log.max.record.bytes.between.snapshots": (_INT, 20 * 1024 * 1024),
    "log.cleaner.enable": (_bool, True),
    # suoi: re-check the CRC32C of sealed segments in the background (suoi.log.scrubber)
    "log.scrubber.enable": (_bool, False),
    "log.scrubber.bytes.per.second": (_INT, 4 * 1024 * 1024),
    # partition replication (KRaft mode)
    "min.insync.replicas": (_INT, 1),
    "offsets.topic.replication.factor": (_INT, 3),
    "transaction.state.log.replication.factor": (_INT, 3),
    "transaction.state.log.min.isr": (_INT, 2),
    "replica.lag.time.max.ms": (_INT, 30_000),
    "replica.fetch.wait.max.ms": (_INT, 500),
    "replica.fetch.min.bytes": (_INT, 1),
    "replica.fetch.max.bytes": (_INT, 1024 * 1024),
    "replica.fetch.response.max.bytes": (_INT, 10 * 1024 * 1024),
    "replica.fetch.backoff.ms": (_INT, 1000),
    "replica.socket.timeout.ms": (_INT, 30_000),
    "replica.high.watermark.checkpoint.interval.ms": (_INT, 5000),
    # KIP-392: "rack-aware" (or Kafka's class name RackAwareReplicaSelector) lets consumers with
    # client.rack read from a follower in their rack; unset: consumers read from leaders.
    "replica.selector.class": (_str, None),
    # KIP-227 incremental fetch sessions kept by this node (suoi.partition.fetch_session); 0: none
    "max.incremental.fetch.session.cache.slots": (_non_negative, 1000),
    # leader balance (KRaft mode, the active controller)
    "auto.leader.rebalance.enable": (_bool, True),
    "leader.imbalance.check.interval.seconds": (_INT, 300),
    "leader.imbalance.per.broker.percentage": (_INT, 10),
    # suoi: the node's own schema registry (suoi.http.registry), e.g. http://127.0.0.1:8081; unset: none
    "schema.registry.listeners": (_http_listener, None),
    # suoi: the admin HTTP endpoint (suoi.http.admin): /metrics, /v1/status/ready; unset = off.
    # http://host:port[,...]; https:// and admin.auth.type other than none are refused at start.
    "admin.listeners": (_str, None),
    "admin.auth.type": (_str, "none"),
    # per-partition kafka_log_log_* series only while the node hosts at most this many partitions (-1: always)
    "admin.metrics.log.partitions.max": (_INT, 1000),
    # authorization (suoi.authorizer): Kafka's StandardAuthorizer, its super users and default
    "authorizer.class.name": (_str, None),
    "super.users": (_str, None),
    "allow.everyone.if.no.acl.found": (_bool, False),
    # client quotas (KIP-546): the rate sampler's windows, as Kafka's quota managers
    "quota.window.num": (_INT, 11),
    "quota.window.size.seconds": (_INT, 1),
    # connection limits (suoi.quota.connections, applied by net)
    # close client connections idle this long (suoi.net, Kafka's Selector); <= 0: never
    "connections.max.idle.ms": (_INT, 600000),
    "max.connections": (_INT, 2147483647),
    "max.connections.per.ip": (_INT, 2147483647),
    "max.connection.creation.rate": (_INT, 2147483647),  # KIP-612, also listener.name.<l>.max.connection.creation.rate
    "max.connections.per.ip.overrides": (_overrides, ""),
}

# TLS and SASL (suoi.security): Kafka's names and defaults; listener.name.NAME.<key> overrides are kept as given.
KNOWN.update({key: (_str, BROKER_CONFIGS[key].default if key in BROKER_CONFIGS else None)
              for key in sorted(IMPLEMENTED_SECURITY)})

# Pre-KRaft keys an older server.properties may carry: ignored like the Kafka 4 keys suoi does not use.
NOT_YET = {"zookeeper.connect", "zookeeper.connection.timeout.ms"}


@dataclass(frozen=True, slots=True)
class Listener:
    name: str
    host: str
    port: int

    @staticmethod
    def parse_many(value: str) -> list[Listener]:
        out = []
        for item in filter(None, (x.strip() for x in value.split(","))):
            m = _LISTENER.match(item if "://" in item else f"PLAINTEXT://{item}")
            if m is None:
                raise ValueError(f"listener {item!r} is not NAME://host:port")
            host = m["host"][1:-1] if m["host"].startswith("[") else m["host"]
            out.append(Listener(m["name"].upper(), host, int(m["port"])))
        if not out:
            raise ValueError("no listeners configured")
        return out


# NAME://host:port, host may be empty (all interfaces) or a bracketed IPv6 address. Names
# are Kafka's listener names (letters, digits, underscores: SASL_SSL, REPLICATION_1...).
#: Per-listener connection limits (Kafka's ConnectionQuotas reads them with the listener prefix).
LISTENER_LIMIT = re.compile(r"^listener\.name\.[A-Za-z0-9_]+\.(max\.connections|max\.connection\.creation\.rate)$")
_LISTENER = re.compile(r"^(?P<name>[A-Za-z0-9_]+)://(?P<host>\[[0-9A-Fa-f:.]*\]|[^:/\[\]]*):(?P<port>\d{1,5})$")


@dataclass(slots=True)
class BrokerConfig:
    """Typed view of the properties the broker uses."""

    values: dict[str, object] = field(default_factory=dict)
    #: Kafka configs given that suoi does not use (raw strings), reported by DescribeConfigs.
    ignored: dict[str, str] = field(default_factory=dict)

    def get(self, key: str) -> object:
        if key in self.values:
            return self.values[key]
        return KNOWN[key][1]

    @property
    def node_id(self) -> int:
        # broker.id is the pre-KRaft name; node.id wins when both are given.
        if "node.id" not in self.values and self.get("broker.id") is not None:
            return self.get_int("broker.id")
        return self.get_int("node.id")

    @property
    def listeners(self) -> list[Listener]:
        return Listener.parse_many(str(self.get("listeners")))

    @property
    def advertised_listeners(self) -> list[Listener]:
        adv = self.get("advertised.listeners")
        listeners = Listener.parse_many(str(adv)) if adv else self.listeners
        # A wildcard bind address cannot be advertised; tell clients the loopback name.
        return [Listener(x.name, x.host if x.host not in ("", "0.0.0.0", "::") else "127.0.0.1", x.port) for x in listeners]

    @property
    def controller_listener_names(self) -> list[str]:
        raw = str(self.get("controller.listener.names") or "CONTROLLER")
        return [n.strip().upper() for n in raw.split(",") if n.strip()]

    @property
    def inter_broker_listener_name(self) -> str | None:
        """The listener brokers reach each other on (replica fetches): inter.broker.listener.name,
        by default the first listener that is not a controller listener (None on a node that has
        only controller listeners)."""
        explicit = self.get("inter.broker.listener.name")
        if explicit:
            return str(explicit).upper()
        controllers = set(self.controller_listener_names)
        by_protocol = str(self.values.get("security.inter.broker.protocol") or "").upper()
        if by_protocol and any(x.name == by_protocol for x in self.listeners):  # Kafka: the listener named so
            return by_protocol
        return next((x.name for x in self.listeners if x.name not in controllers), None)

    @property
    def log_dirs(self) -> list[Path]:
        raw = self.get("log.dirs") or self.get("log.dir")
        return [Path(p.strip()) for p in str(raw).split(",") if p.strip()]

    @property
    def retention_ms(self) -> int:
        for key, factor in (("log.retention.ms", 1), ("log.retention.minutes", 60_000), ("log.retention.hours", HOUR_MS)):
            v = self.get(key)
            if v is not None and (key in self.values or key == "log.retention.hours"):
                return -1 if int(v) < 0 else int(v) * factor  # type: ignore[call-overload]
        return 168 * HOUR_MS

    @property
    def segment_ms(self) -> int:
        if self.get("log.roll.ms") is not None:
            return int(self.get("log.roll.ms"))  # type: ignore[call-overload]
        return int(self.get("log.roll.hours")) * HOUR_MS  # type: ignore[call-overload]

    def get_int(self, key: str) -> int:
        return int(self.get(key))  # type: ignore[call-overload]

    def optional_int(self, key: str) -> int | None:
        v = self.get(key)
        return None if v is None else int(v)  # type: ignore[call-overload]

    def get_float(self, key: str) -> float:
        return float(self.get(key))  # type: ignore[arg-type]

    def get_bool(self, key: str) -> bool:
        return bool(self.get(key))


def read_properties(path: Path) -> dict[str, str]:
    """Parse a Java .properties file as java.util.Properties.load does (javaproperties): `key=value`,
    `key: value` and `key value`, `#`/`!` comments, backslash escapes (`\\uXXXX`, `\\=`, ...) and
    `\\` line continuations; a key given twice keeps its last value. Values are trimmed, as Kafka's
    ConfigDef trims them when it parses them. UTF-8 (a superset of what Kafka's files hold), or
    ISO-8859-1, Java's own encoding, when the file is not UTF-8."""
    import javaproperties

    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("iso-8859-1")
    return {key: value.strip() for key, value in javaproperties.loads(text).items()}


def load_config(file_values: Mapping[str, str], overrides: Mapping[str, str]) -> BrokerConfig:
    """Merge file values and command-line overrides; warn about unknown keys."""
    merged = {**file_values, **overrides}
    check_security_settings(merged)  # before anything else is logged: one line, then exit
    values: dict[str, object] = {}
    ignored: dict[str, str] = {}
    for key, raw in merged.items():
        if key in KNOWN:
            parser = KNOWN[key][0]
            try:
                values[key] = parser(raw)  # type: ignore[operator]
            except ValueError as exc:
                raise ValueError(f"invalid value for {key}: {raw!r} ({exc})") from None
        elif is_listener_security_key(key):
            values[key] = raw
        elif LISTENER_LIMIT.match(key):  # listener.name.<l>.max.connections / .max.connection.creation.rate
            try:
                values[key] = _INT(raw)
            except ValueError as exc:
                raise ValueError(f"invalid value for {key}: {raw!r} ({exc})") from None
        elif key == "confluent.schema.registry.url":  # Confluent Server's: validation against a remote registry
            raise ValueError(f"{key} is not supported: schema id validation reads the node's own registry "
                             "(set schema.registry.listeners instead)")
        elif key in BROKER_CONFIGS or key in NOT_YET:
            if key in BROKER_CONFIGS:
                try:
                    BROKER_CONFIGS[key].parse(raw)
                except ConfigValueError as exc:
                    raise ValueError(str(exc)) from None
            ignored[key] = raw
        else:
            log.warning("unknown config key %s (ignored)", key)
    if ignored:
        log.warning("Kafka configs accepted but ignored by suoi: %s", ", ".join(sorted(ignored)))
    cfg = BrokerConfig(values, ignored)
    cfg.listeners  # validate early  # noqa: B018
    inter = cfg.get("inter.broker.listener.name")
    if inter:
        names = {x.name for x in cfg.advertised_listeners}
        if str(inter).upper() not in names or str(inter).upper() in cfg.controller_listener_names:
            raise ValueError(f"inter.broker.listener.name={inter} must name a non-controller listener in "
                             f"advertised.listeners (or listeners): {', '.join(sorted(names))}")
    return cfg
