"""Kafka's config definitions as objects: parsing with Kafka's types and validators, and
Kafka's error wording ("Invalid value abc for configuration retention.ms: Not a number of
type LONG"), so a client sees the message a Kafka broker would give.

Pure functions over the table in `kafka_tables`; no suoi imports (every layer may use it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from suoi.configdefs.kafka_tables import BROKER_ROWS, EXTENSION_TOPIC_ROWS, TOPIC_ROWS

#: DescribeConfigs' ConfigType ids (KIP-569).
CONFIG_TYPE_IDS: Mapping[str, int] = MappingProxyType({
    "boolean": 1, "string": 2, "int": 3, "short": 4, "long": 5, "double": 6, "list": 7, "class": 8, "password": 9})

_INTEGER_BITS = {"short": 16, "int": 32, "long": 64}
_INTEGER = re.compile(r"[+-]?\d+")
_RANGE = re.compile(r"\[(-?[\d.]+),\.\.\.(?:,(-?[\d.]+))?\](?: or (-?\d+))?")
_ONE_OF = re.compile(r"(\(case insensitive\) )?\[([^\]]*)\]")
_REPLICA = re.compile(r"\d+:\d+")


class ConfigValueError(ValueError):
    """A value Kafka would refuse; str() is Kafka's ConfigException message."""

    def __init__(self, name: str, value: object, reason: str) -> None:
        super().__init__(f"Invalid value {value} for configuration {name}: {reason}")


@dataclass(frozen=True, slots=True)
class ConfigDef:
    """One Kafka config: its type, default (as Kafka prints it), validator and update mode
    (brokers: read-only, per-broker or cluster-wide; topics: always dynamic)."""

    name: str
    type: str
    default: str | None
    valid: str = ""
    mode: str = "topic"

    @property
    def type_id(self) -> int:
        return CONFIG_TYPE_IDS.get(self.type, 0)

    @property
    def sensitive(self) -> bool:
        """Kafka never returns a PASSWORD config's value (DescribeConfigs: null, isSensitive)."""
        return self.type == "password"

    @property
    def dynamic(self) -> bool:
        return self.mode != "read-only"

    def parse(self, raw: str, *, validators: bool = True) -> object:
        """The typed value of ``raw``; raises ConfigValueError with Kafka's wording.
        ``validators=False`` checks the type only (for keys whose range suoi checks itself)."""
        value = _parse_type(self.name, self.type, raw)
        if validators:
            _validate(self, raw, value)
        return value


def _parse_type(name: str, kind: str, raw: str) -> object:
    trimmed = raw.strip()
    if kind == "boolean":
        if trimmed.lower() in ("true", "false"):
            return trimmed.lower() == "true"
        raise ConfigValueError(name, raw, "Expected value to be either true or false")
    if kind in _INTEGER_BITS:
        bits = _INTEGER_BITS[kind]
        if _INTEGER.fullmatch(trimmed) and -(1 << (bits - 1)) <= int(trimmed) < (1 << (bits - 1)):
            return int(trimmed)
        raise ConfigValueError(name, raw, f"Not a number of type {kind.upper()}")
    if kind == "double":
        try:
            if "_" not in trimmed:
                return float(trimmed)
        except ValueError:
            pass
        raise ConfigValueError(name, raw, "Not a number of type DOUBLE")
    if kind == "list":
        return [item.strip() for item in trimmed.split(",") if item.strip()]
    return trimmed


def _validate(d: ConfigDef, raw: str, value: object) -> None:
    valid = d.valid
    if not valid:
        return
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        m = _RANGE.fullmatch(valid)
        if m is None:
            return
        low, high, alt = (float(x) if x is not None else None for x in m.groups())
        if alt is not None and value == alt:
            return
        if low is not None and value < low:
            raise ConfigValueError(d.name, raw, f"Value must be at least {m.group(1)}")
        if high is not None and value > high:
            raise ConfigValueError(d.name, raw, f"Value must be no more than {m.group(2)}")
        return
    items = value if isinstance(value, list) else [value]
    if valid.startswith("non-empty"):
        if not items or items == [""]:
            raise ConfigValueError(d.name, raw, f"{'Empty list' if d.type == 'list' else 'Empty string'} not allowed")
        return
    if valid.startswith("[partitionId]"):  # the throttled-replicas lists
        if items != ["*"] and not all(_REPLICA.fullmatch(str(i)) for i in items):
            raise ConfigValueError(d.name, raw, f"must be the literal '*' or a list of replicas in the following "
                                                f"format: {valid}")
        return
    m = _ONE_OF.fullmatch(valid)
    if m is None:
        return
    choices = [c.strip() for c in m.group(2).split(",")]
    fold = m.group(1) is not None
    allowed = {c.lower() for c in choices} if fold else set(choices)
    for item in items:
        if (str(item).lower() if fold else str(item)) not in allowed:
            how = " (case insensitive)" if fold else ""
            raise ConfigValueError(d.name, raw, f"String must be one of{how}: {', '.join(choices)}")


def _load(rows: str) -> Mapping[str, ConfigDef]:
    out: dict[str, ConfigDef] = {}
    for line in rows.splitlines():
        name, kind, default, *rest = line.split("|")
        default_value = None if default == "null" else "" if default == '""' else default
        out[name] = ConfigDef(name, kind, default_value, rest[0] if rest else "", rest[1] if len(rest) > 1 else "topic")
    return MappingProxyType(out)


#: Every broker config Kafka 4.0 defines, by name.
BROKER_CONFIGS: Mapping[str, ConfigDef] = _load(BROKER_ROWS)
#: Every topic config Kafka 4.0 defines, by name, and the Confluent Server/Redpanda ones suoi implements.
TOPIC_CONFIGS: Mapping[str, ConfigDef] = MappingProxyType({**_load(TOPIC_ROWS), **_load(EXTENSION_TOPIC_ROWS)})

#: Configs of Kafka's LIST type, the only ones IncrementalAlterConfigs may APPEND to or SUBTRACT from.
LIST_CONFIGS = frozenset(n for table in (BROKER_CONFIGS, TOPIC_CONFIGS) for n, d in table.items() if d.type == "list")

_SECURITY_PREFIXES = (("ssl.", "this TLS (SSL) setting"), ("sasl.", "this SASL setting"),
                      ("delegation.token.", "delegation tokens"), ("password.encoder.", "password encoding"))
#: The TLS and SASL settings suoi implements (suoi.security), also per listener
#: (listener.name.NAME.<key>); every other ssl.*/sasl.* setting is refused.
IMPLEMENTED_SECURITY = frozenset({
    "ssl.keystore.type", "ssl.keystore.location", "ssl.keystore.password", "ssl.key.password",
    "ssl.keystore.certificate.chain", "ssl.keystore.key", "ssl.truststore.type", "ssl.truststore.location",
    "ssl.truststore.password", "ssl.truststore.certificates", "ssl.client.auth", "ssl.principal.mapping.rules",
    "ssl.enabled.protocols", "ssl.protocol", "ssl.cipher.suites", "ssl.endpoint.identification.algorithm",
    "sasl.enabled.mechanisms", "sasl.mechanism.inter.broker.protocol", "sasl.mechanism.controller.protocol",
    "sasl.jaas.config", "security.inter.broker.protocol", "connection.failed.authentication.delay.ms",
    "connections.max.reauth.ms",
    "sasl.oauthbearer.jwks.endpoint.url", "sasl.oauthbearer.jwks.endpoint.refresh.ms",
    "sasl.oauthbearer.expected.audience", "sasl.oauthbearer.expected.issuer", "sasl.oauthbearer.sub.claim.name",
    "sasl.oauthbearer.scope.claim.name", "sasl.oauthbearer.clock.skew.seconds",
    # a node's own tokens from an identity provider (KIP-768's login callback handler)
    "sasl.login.callback.handler.class", "sasl.oauthbearer.token.endpoint.url", "sasl.login.connect.timeout.ms",
    "sasl.login.read.timeout.ms", "sasl.login.retry.backoff.ms", "sasl.login.retry.backoff.max.ms",
    "sasl.login.refresh.window.factor", "sasl.login.refresh.window.jitter", "sasl.login.refresh.min.period.seconds",
    "sasl.login.refresh.buffer.seconds",
})
#: listener.name.NAME.<implemented key>, and listener.name.NAME.<mechanism>.sasl.jaas.config
_LISTENER_IMPLEMENTED = re.compile(
    r"^listener\.name\.[^.]+\.(?:(?:plain|scram-sha-256|scram-sha-512|oauthbearer)\.sasl\.jaas\.config"
    r"|oauthbearer\.sasl\.server\.callback\.handler\.class"
    r"|oauthbearer\.(?P<mechanism_key>sasl\.(?:login|oauthbearer)\..+)|(?P<key>.+))$", re.I)
#: Per-listener overrides of security settings: listener.name.NAME.ssl.*, .sasl.*,
#: .MECHANISM.sasl.* (e.g. listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config), ...
_LISTENER_SECURITY = re.compile(
    r"^listener\.name\.[^.]+\.(ssl\.|sasl\.|[^.]+\.sasl\.|principal\.builder\.class$)")
_SECURITY_NAMES = {
    "principal.builder.class": "a custom principal builder", "security.providers": "TLS (SSL) security providers",
}


#: Kafka's SslConfigs.RECONFIGURABLE_CONFIGS: a listener's keystore and truststore, which
#: AlterConfigs may change per broker with the listener prefix (suoi.security.dynamic applies them).
RECONFIGURABLE_SSL = frozenset({
    "ssl.keystore.type", "ssl.keystore.location", "ssl.keystore.password", "ssl.key.password",
    "ssl.keystore.certificate.chain", "ssl.keystore.key", "ssl.truststore.type", "ssl.truststore.location",
    "ssl.truststore.password", "ssl.truststore.certificates",
})
_DYNAMIC_SSL = re.compile(r"^listener\.name\.(?P<listener>[A-Za-z0-9_]+)\.(?P<key>ssl\..+)$")


def dynamic_ssl_key(name: str) -> tuple[str, str] | None:
    """(LISTENER, ssl key) of ``listener.name.<l>.<reconfigurable ssl key>``, else None."""
    m = _DYNAMIC_SSL.match(name)
    if m is None or m["key"] not in RECONFIGURABLE_SSL:
        return None
    return m["listener"].upper(), m["key"]


def is_listener_security_key(name: str) -> bool:
    """A per-listener security setting suoi implements (listener.name.NAME.ssl.keystore.location, ...)."""
    m = _LISTENER_IMPLEMENTED.match(name)
    if m is None:
        return False
    key = m.group("key") or m.group("mechanism_key")
    return key is None or key in IMPLEMENTED_SECURITY


def unimplemented_security_feature(name: str) -> str | None:
    """The security feature a config belongs to which suoi does not implement yet, or None.

    Such settings are refused, never accepted as if they worked: a broker that seems to have
    an authorizer configured but lets everyone do everything is worse than an error."""
    if name in IMPLEMENTED_SECURITY or is_listener_security_key(name):
        return None
    if name in _SECURITY_NAMES:
        return _SECURITY_NAMES[name]
    if _LISTENER_SECURITY.match(name):
        return "this per-listener security setting"
    return next((feature for prefix, feature in _SECURITY_PREFIXES if name.startswith(prefix)), None)
