"""DescribeConfigs (key 32): topic and broker configs with their sources and synonyms.

A topic config's value is its override if the topic has one (source TOPIC_CONFIG), else
what the broker-wide default makes it; that default's own source is reported, so
`retention.ms` on a plain topic shows DEFAULT_CONFIG with the synonym
`log.retention.hours=168`, and STATIC_BROKER_CONFIG / DYNAMIC_*_BROKER_CONFIG once a
server.properties key or AlterConfigs sets it. Broker resources: the one named by this
node's id lists every known broker key; the one named "" (the cluster-wide default)
lists only the dynamic defaults, as Kafka does. Documentation is not sent (null).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from suoi.api.cluster_metadata import topic_config_view
from suoi.api.registry import RequestContext, api
from suoi.config import KNOWN
from suoi.dynamic_config import DYNAMIC_KEYS
from suoi.model import ErrorCode

if TYPE_CHECKING:
    from suoi.broker import Broker

TOPIC = 2
BROKER = 4
# ConfigSource values (DescribeConfigsResponse)
TOPIC_CONFIG = 1
DYNAMIC_BROKER_CONFIG = 2
DYNAMIC_DEFAULT_BROKER_CONFIG = 3
STATIC_BROKER_CONFIG = 4
DEFAULT_CONFIG = 5
# ConfigType values (v3+)
BOOLEAN, STRING, INT, LONG, DOUBLE, LIST = 1, 2, 3, 5, 6, 7

#: Topic config -> the broker keys that set its default, highest precedence first.
TOPIC_SYNONYMS: dict[str, tuple[str, ...]] = {
    "segment.bytes": ("log.segment.bytes",),
    "segment.ms": ("log.roll.ms", "log.roll.hours"),
    "retention.ms": ("log.retention.ms", "log.retention.minutes", "log.retention.hours"),
    "retention.bytes": ("log.retention.bytes",),
    "max.message.bytes": ("message.max.bytes",),
    "message.timestamp.type": ("log.message.timestamp.type",),
    "cleanup.policy": ("log.cleanup.policy",),
    "flush.messages": ("log.flush.interval.messages",),
    "flush.ms": ("log.flush.interval.ms",),
    "index.interval.bytes": ("log.index.interval.bytes",),
    "delete.retention.ms": ("log.cleaner.delete.retention.ms",),
    "min.compaction.lag.ms": ("log.cleaner.min.compaction.lag.ms",),
    "max.compaction.lag.ms": ("log.cleaner.max.compaction.lag.ms",),
    "min.cleanable.dirty.ratio": ("log.cleaner.min.cleanable.ratio",),
}
_BROKER_GROUPS = {name: group for group in TOPIC_SYNONYMS.values() for name in group}

_TOPIC_TYPES: dict[str, int] = {
    "segment.bytes": INT, "max.message.bytes": INT, "index.interval.bytes": INT, "segment.index.bytes": INT,
    "min.insync.replicas": INT, "message.timestamp.type": STRING, "compression.type": STRING,
    "cleanup.policy": LIST, "follower.replication.throttled.replicas": LIST,
    "leader.replication.throttled.replicas": LIST, "unclean.leader.election.enable": BOOLEAN,
    "preallocate": BOOLEAN, "message.downconversion.enable": BOOLEAN, "min.cleanable.dirty.ratio": DOUBLE,
}


def _topic_type(name: str) -> int:
    return _TOPIC_TYPES.get(name, LONG)


def _broker_type(name: str) -> int:
    parser = KNOWN.get(name, (None, None))[0]
    if parser is int:
        return LONG if name.endswith((".ms", ".bytes")) else INT
    if getattr(parser, "__name__", "") == "_bool":
        return BOOLEAN
    return LIST if name in ("listeners", "advertised.listeners", "log.dirs", "log.cleanup.policy") else STRING


def _text(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def broker_entries(broker: Broker, name: str) -> list[tuple[str, str | None, int]]:
    """Every place broker key `name` has a value, highest precedence first."""
    out: list[tuple[str, str | None, int]] = []
    dyn = broker.dynamic_configs
    if name in dyn.broker:
        out.append((name, dyn.broker[name], DYNAMIC_BROKER_CONFIG))
    if name in dyn.cluster_default:
        out.append((name, dyn.cluster_default[name], DYNAMIC_DEFAULT_BROKER_CONFIG))
    if name in broker.static_config.values:
        out.append((name, _text(broker.static_config.values[name]), STATIC_BROKER_CONFIG))
    default = KNOWN.get(name, (None, None))[1]
    if default is not None:
        out.append((name, _text(default), DEFAULT_CONFIG))
    return out


def _entry(name: str, value: str | None, source: int, synonyms: list[tuple[str, str | None, int]],
           read_only: bool, config_type: int, with_synonyms: bool) -> dict[str, Any]:
    return {"name": name, "value": value, "read_only": read_only, "config_source": source,
            "is_sensitive": False, "config_type": config_type, "documentation": None,
            "synonyms": [{"name": n, "value": v, "source": s} for n, v, s in synonyms] if with_synonyms else []}


def topic_configs(broker: Broker, topic: str, with_synonyms: bool = True) -> list[dict[str, Any]] | None:
    """Config entries of `topic` (None if it does not exist)."""
    info = topic_config_view(broker, topic)
    if info is None:
        return None
    effective = info.config.to_topic_configs()
    out = []
    for name in sorted(effective):
        synonyms: list[tuple[str, str | None, int]] = []
        if name in info.configs:
            synonyms.append((name, info.configs[name], TOPIC_CONFIG))
        for broker_name in TOPIC_SYNONYMS.get(name, ()):
            synonyms.extend(broker_entries(broker, broker_name))
        if name in info.configs:
            value, source = info.configs[name], TOPIC_CONFIG
        else:
            value, source = effective[name], (synonyms[0][2] if synonyms else DEFAULT_CONFIG)
        out.append(_entry(name, value, source, synonyms, False, _topic_type(name), with_synonyms))
    return out


def broker_configs(broker: Broker, *, cluster_default: bool, with_synonyms: bool = True) -> list[dict[str, Any]]:
    out = []
    for name in sorted(KNOWN):
        read_only = name not in DYNAMIC_KEYS
        if cluster_default:
            if name not in broker.dynamic_configs.cluster_default:
                continue
            dynamic = broker.dynamic_configs.cluster_default[name]
            out.append(_entry(name, dynamic, DYNAMIC_DEFAULT_BROKER_CONFIG,
                              [(name, dynamic, DYNAMIC_DEFAULT_BROKER_CONFIG)], read_only,
                              _broker_type(name), with_synonyms))
            continue
        own = broker_entries(broker, name)
        synonyms: list[tuple[str, str | None, int]] = [
            e for n in _BROKER_GROUPS.get(name, (name,)) for e in broker_entries(broker, n)]
        value: str | None = own[0][1] if own else None
        source = own[0][2] if own else DEFAULT_CONFIG
        out.append(_entry(name, value, source, synonyms, read_only, _broker_type(name), with_synonyms))
    return out


def broker_resource(broker: Broker, resource_name: str) -> bool | None:
    """True for the cluster default (""), False for this broker, None for another id."""
    if resource_name == "":
        return True
    return False if resource_name.strip() == str(broker.node_id) else None


def _result(resource_type: int, name: str, error: ErrorCode, message: str | None,
            configs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"error_code": error, "error_message": message, "resource_type": resource_type,
            "resource_name": name, "configs": configs}


@api(32, "DescribeConfigs", 1, 4)
def handle_describe_configs(ctx: RequestContext, request: Any) -> dict[str, Any]:
    broker = ctx.broker
    with_synonyms = bool(getattr(request, "include_synonyms", False))
    results = []
    for res in request.resources:
        rtype, name = res.resource_type, res.resource_name
        if rtype == TOPIC:
            configs = topic_configs(broker, name, with_synonyms)
            if configs is None:
                results.append(_result(rtype, name, ErrorCode.unknown_topic_or_partition,
                                       f"Topic '{name}' does not exist.", []))
                continue
        elif rtype == BROKER:
            which = broker_resource(broker, name)
            if which is None:
                results.append(_result(rtype, name, ErrorCode.invalid_request,
                                       f"Unexpected broker id {name!r}: this is broker {broker.node_id}", []))
                continue
            configs = broker_configs(broker, cluster_default=which, with_synonyms=with_synonyms)
        else:
            results.append(_result(rtype, name, ErrorCode.invalid_request,
                                   f"Unsupported resource type {rtype} (suoi describes topics (2) and brokers (4))", []))
            continue
        keys = res.configuration_keys
        if keys is not None:
            wanted = set(keys)
            configs = [c for c in configs if c["name"] in wanted]
        results.append(_result(rtype, name, ErrorCode.none, None, configs))
    return {"throttle_time": 0, "results": results}
