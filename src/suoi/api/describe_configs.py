"""DescribeConfigs (key 32): topic and broker configs with sources, synonyms and documentation.

Every config Kafka 4 defines is listed (`suoi.configdefs`), with Kafka's type; the
documentation field (v3+, when asked) says which ones suoi uses, which it accepts but ignores,
and which it refuses (security features it lacks). PASSWORD configs are never echoed: value
null and is_sensitive, as Kafka answers.

Sources and synonyms follow Kafka's ConfigHelper: a topic config's value is its override
(TOPIC_CONFIG) or what the broker-wide default makes it. Its synonyms are the places where
its first broker synonym's group (`configdefs.synonyms`) has a value, grouped by source
(DYNAMIC_BROKER_CONFIG, DYNAMIC_DEFAULT_BROKER_CONFIG, STATIC_BROKER_CONFIG, DEFAULT_CONFIG)
and dropping what comes before the first entry carrying that first name; the entry's source
is the first synonym's (DEFAULT_CONFIG if none). So a plain topic's `retention.ms` lists no
synonym (only `log.retention.hours` has a default) and `compression.type` lists the broker's
`compression.type=producer`. Broker resources: this node's id lists every config; "" (the
cluster default) only its dynamic defaults. Broker loggers (KIP-412): `suoi.api.broker_loggers`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from suoi.api import broker_loggers
from suoi.api.cluster_metadata import TopicConfigView, topic_config_view
from suoi.api.registry import RequestContext, api
from suoi.api.telemetry import client_metrics_configs
from suoi.config import KNOWN
from suoi.configdefs import (
    BROKER_CONFIGS,
    CONFIG_TYPE_IDS,
    TOPIC_CONFIGS,
    ConfigDef,
    broker_config_synonyms,
    dynamic_ssl_key,
    topic_config_synonyms,
    unimplemented_security_feature,
)
from suoi.dynamic_config import DYNAMIC_KEYS
from suoi.log.config import IGNORED_TOPIC_CONFIGS
from suoi.model import ErrorCode

if TYPE_CHECKING:
    from suoi.services import Services

TOPIC = 2
BROKER = 4
# ConfigSource values (DescribeConfigsResponse)
TOPIC_CONFIG = 1
DYNAMIC_BROKER_CONFIG = 2
DYNAMIC_DEFAULT_BROKER_CONFIG = 3
STATIC_BROKER_CONFIG = 4
DEFAULT_CONFIG = 5

Synonym = tuple[str, str | None, int]


def _broker_type(name: str) -> int:
    definition = BROKER_CONFIGS.get(name)
    if definition is not None:
        return definition.type_id
    parser = KNOWN.get(name, (None, None))[0]  # suoi's own keys (broker.connection.loss.fence.ms)
    if parser is int:
        return CONFIG_TYPE_IDS["long" if name.endswith((".ms", ".bytes")) else "int"]
    return CONFIG_TYPE_IDS["boolean" if getattr(parser, "__name__", "") == "_bool" else "string"]


def _text(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _default(name: str) -> str | None:
    """The built-in default of a broker key: suoi's for the keys it uses, else Kafka's."""
    if name in KNOWN:
        default = KNOWN[name][1]
        return None if default is None else _text(default)
    definition = BROKER_CONFIGS.get(name)
    return None if definition is None else definition.default


def _sources(broker: Services, name: str) -> list[tuple[int, str | None]]:
    """(source, value) of every place broker key `name` has a value, highest precedence first."""
    dyn, static = broker.dynamic_configs, broker.static_config
    out: list[tuple[int, str | None]] = []
    if name in dyn.broker:
        out.append((DYNAMIC_BROKER_CONFIG, dyn.broker[name]))
    if name in dyn.cluster_default:
        out.append((DYNAMIC_DEFAULT_BROKER_CONFIG, dyn.cluster_default[name]))
    if name in static.values:
        out.append((STATIC_BROKER_CONFIG, _text(static.values[name])))
    elif name in static.ignored:
        out.append((STATIC_BROKER_CONFIG, static.ignored[name]))
    default = _default(name)
    if default is not None:
        out.append((DEFAULT_CONFIG, default))
    return out


def _synonyms(broker: Services, name: str, group: tuple[str, ...]) -> list[Synonym]:
    """Kafka's configSynonyms: the group's values grouped by source, from the first `name`."""
    found = {n: dict(_sources(broker, n)) for n in group}
    ordered = [(n, found[n][source], source)
               for source in (DYNAMIC_BROKER_CONFIG, DYNAMIC_DEFAULT_BROKER_CONFIG, STATIC_BROKER_CONFIG, DEFAULT_CONFIG)
               for n in group if source in found[n]]
    first = next((i for i, (n, _v, _s) in enumerate(ordered) if n == name), len(ordered))
    return ordered[first:]


def documentation(name: str, definition: ConfigDef | None, *, used: bool) -> str:
    """What DescribeConfigs' documentation field says: Kafka's facts and what suoi does with it."""
    facts = ""
    if definition is not None:
        facts = f"Kafka {definition.type} config, default {definition.default}"
        facts += f", valid values {definition.valid}" if definition.valid else ""
        facts += f", update mode {definition.mode}. " if definition.mode != "topic" else ". "
    if used:
        return facts + "Used by suoi."
    feature = unimplemented_security_feature(name)
    if feature is not None:
        return facts + f"suoi does not implement {feature} yet: setting it is refused."
    return facts + "Accepted and reported, but ignored by suoi."


def _entry(name: str, value: str | None, source: int, synonyms: list[Synonym], read_only: bool, config_type: int,
           sensitive: bool, doc: str | None) -> dict[str, Any]:
    if sensitive:  # never echo a secret, in the value or in a synonym
        value, synonyms = None, [(n, None, s) for n, _v, s in synonyms]
    return {"name": name, "value": value, "read_only": read_only, "config_source": source,
            "is_sensitive": sensitive, "config_type": config_type, "documentation": doc,
            "synonyms": [{"name": n, "value": v, "source": s} for n, v, s in synonyms]}


def topic_configs(broker: Services, topic: str, with_synonyms: bool = True,
                  with_docs: bool = False) -> list[dict[str, Any]] | None:
    """Config entries of `topic` (None if it does not exist)."""
    info = topic_config_view(broker, topic)
    if info is None:
        return None
    return topic_config_entries(broker, info, with_synonyms, with_docs)


def topic_config_entries(broker: Services, info: TopicConfigView, with_synonyms: bool = True,
                         with_docs: bool = False) -> list[dict[str, Any]]:
    """Every config of a topic with overrides ``info.configs`` (existing or about to be created:
    CreateTopics answers these, KIP-525), with its source."""
    effective = info.config.to_topic_configs()
    out = []
    for name in sorted(effective):
        definition = TOPIC_CONFIGS.get(name)
        broker_names = topic_config_synonyms(name)
        synonyms = _synonyms(broker, broker_names[0], broker_config_synonyms(broker_names[0])) if broker_names else []
        if name in info.configs:
            synonyms.insert(0, (name, info.configs[name], TOPIC_CONFIG))
        value = info.configs.get(name, effective[name])
        source = synonyms[0][2] if synonyms else DEFAULT_CONFIG
        doc = documentation(name, definition, used=name not in IGNORED_TOPIC_CONFIGS) if with_docs else None
        out.append(_entry(name, value, source, synonyms if with_synonyms else [], False,
                          definition.type_id if definition else 0, bool(definition and definition.sensitive), doc))
    return out


def broker_configs(broker: Services, *, cluster_default: bool, with_synonyms: bool = True,
                   with_docs: bool = False) -> list[dict[str, Any]]:
    out = []
    for name in sorted(set(KNOWN) | set(BROKER_CONFIGS)):
        used = name in KNOWN
        if cluster_default and name not in broker.dynamic_configs.cluster_default:
            continue
        definition = BROKER_CONFIGS.get(name)
        read_only = name not in DYNAMIC_KEYS if used else (
            definition is None or not definition.dynamic or unimplemented_security_feature(name) is not None)
        synonyms = _synonyms(broker, name, broker_config_synonyms(name))
        if cluster_default:
            synonyms = [s for s in synonyms if s[2] == DYNAMIC_DEFAULT_BROKER_CONFIG]
        own = _sources(broker, name)
        value: str | None = None
        source = DEFAULT_CONFIG
        if cluster_default:
            value, source = broker.dynamic_configs.cluster_default[name], DYNAMIC_DEFAULT_BROKER_CONFIG
        elif own:
            source, value = own[0]
        doc = documentation(name, definition, used=used) if with_docs else None
        out.append(_entry(name, value, source, synonyms if with_synonyms else [], read_only, _broker_type(name),
                          bool(definition and definition.sensitive), doc))
    if not cluster_default:  # a listener's keystore/truststore set through AlterConfigs (passwords: null)
        for name, value in sorted(broker.dynamic_configs.layer(cluster_default=False).items()):
            found = dynamic_ssl_key(name)
            if found is not None:
                definition = BROKER_CONFIGS.get(found[1])
                out.append(_entry(name, value, DYNAMIC_BROKER_CONFIG,
                                  [(name, value, DYNAMIC_BROKER_CONFIG)] if with_synonyms else [], False,
                                  _broker_type(found[1]), bool(definition and definition.sensitive),
                                  documentation(found[1], definition, used=True) if with_docs else None))
    return out


def broker_resource(broker: Services, resource_name: str) -> bool | None:
    """True for the cluster default (""), False for this broker, None for another id."""
    if resource_name == "":
        return True
    return False if resource_name.strip() == str(broker.node_id) else None


def _result(resource_type: int, name: str, error: ErrorCode, message: str | None,
            configs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"error_code": error, "error_message": message, "resource_type": resource_type,
            "resource_name": name, "configs": configs}


CLIENT_METRICS = 16


@api(32, "DescribeConfigs", 1, 4)
def handle_describe_configs(ctx: RequestContext, request: Any) -> dict[str, Any]:
    broker = ctx.services
    with_synonyms = bool(getattr(request, "include_synonyms", False))
    with_docs = bool(getattr(request, "include_documentation", False))
    results = []
    for res in request.resources:
        rtype, name = res.resource_type, res.resource_name
        if rtype == TOPIC:
            configs = topic_configs(broker, name, with_synonyms, with_docs)
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
            configs = broker_configs(broker, cluster_default=which, with_synonyms=with_synonyms, with_docs=with_docs)
        elif rtype == CLIENT_METRICS and name:  # KIP-714 subscriptions
            configs = client_metrics_configs(broker, name)
        elif rtype == broker_loggers.BROKER_LOGGER:  # KIP-412 log levels, this process's own
            refused = broker_loggers.describe_error(name, broker.node_id)
            if refused is not None:
                results.append(_result(rtype, name, ErrorCode.invalid_request, refused, []))
                continue
            configs = broker_loggers.describe(None)
        else:
            results.append(_result(rtype, name, ErrorCode.invalid_request,
                                   f"Unsupported resource type {rtype} (suoi describes topics (2), brokers (4), "
                                   "broker loggers (8) and client metrics (16))", []))
            continue
        keys = res.configuration_keys
        if keys is not None:
            wanted = set(keys)
            configs = [c for c in configs if c["name"] in wanted]
        results.append(_result(rtype, name, ErrorCode.none, None, configs))
    return {"throttle_time": 0, "results": results}
