"""`suoi configs`: kafka-configs.sh for topics and brokers (describe, add, delete configs),
client quotas of users and client ids (`client_quotas`) and a broker's log levels
(broker-loggers, `configs_loggers`).

Changes go through IncrementalAlterConfigs, as Kafka's tool does. The cluster-wide broker
default (Kafka's --entity-default) is not offered: librdkafka cannot name the "" broker
resource; set the broker's own (`--entity-name <node id>`) instead.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from suoi.cli import client_quotas, configs_loggers
from suoi.cli.common import (
    TIMEOUT_S,
    CliError,
    add_common_args,
    admin_client,
    cluster_metadata,
    guarded,
    print_json,
    read_props,
    result,
)

#: What "Dynamic configs for ..." shows without --all, per entity type.
DYNAMIC_SOURCE = {"topics": 1, "brokers": 2}


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "configs", help="describe and change topic and broker configs (kafka-configs)",
        description="Describe, add or delete configs of topics and brokers. Same flags as Kafka's "
        "kafka-configs.sh. Broker configs that may change at run time (log.retention.ms, log.segment.bytes, "
        "message.max.bytes, log.cleanup.policy, ...) apply at once and are persisted.",
        epilog="example: suoi configs --alter --entity-type topics --entity-name orders "
        "--add-config retention.ms=60000,max.message.bytes=200000 --bootstrap-server localhost:9092",
    )
    add_common_args(p)
    action = p.add_mutually_exclusive_group(required=True)
    action.add_argument("--describe", action="store_true", help="list configs (dynamic ones; all with --all)")
    action.add_argument("--alter", action="store_true", help="change configs (--add-config, --delete-config)")
    p.add_argument("--entity-type", choices=("topics", "brokers", "broker-loggers", "users", "clients", "ips"),
                   help="topics, brokers, broker-loggers (a broker's log levels, until it restarts), "
                        "users (SCRAM credentials, client quotas), clients (client quotas) "
                        "or ips (connection_creation_rate)")
    p.add_argument("--entity-name", metavar="NAME",
                   help="topic name, broker id, user name or client id (all of them if left out)")
    p.add_argument("--entity-default", action="store_true", help="users/clients: the default entity")
    client_quotas.describe_args(p)
    p.add_argument("--topic", metavar="TOPIC", help="same as --entity-type topics --entity-name TOPIC")
    p.add_argument("--broker", metavar="ID", help="same as --entity-type brokers --entity-name ID")
    p.add_argument("--add-config", metavar="K=V[,K=[V1,V2],...]",
                   help="configs to set, comma-separated; a list value goes in square brackets")
    p.add_argument("--add-config-file", type=Path, metavar="FILE", help="a properties file of configs to set")
    p.add_argument("--delete-config", metavar="K[,K...]", help="configs to remove (back to the default)")
    p.add_argument("--all", action="store_true", help="--describe: every config, defaults included")
    p.set_defaults(func=guarded("configs")(run))


def parse_add_config(text: str) -> dict[str, str]:
    """Kafka's syntax: `k1=v1,k2=[v1,v2,v2],k3=v3`."""
    out: dict[str, str] = {}
    depth = 0
    item = ""
    items = []
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "," and depth == 0:
            items.append(item)
            item = ""
        else:
            item += ch
    items.append(item)
    for raw in filter(str.strip, items):
        if "=" not in raw:
            raise CliError(f"--add-config expects KEY=VALUE pairs separated by commas, got {raw!r}")
        k, v = raw.split("=", 1)
        v = v.strip()
        if v.startswith("[") and v.endswith("]"):
            v = v[1:-1]
        out[k.strip()] = v
    return out


def _entity(args: argparse.Namespace) -> tuple[str, str | None]:
    if args.topic and args.broker:
        raise CliError("give --topic or --broker, not both")
    if args.topic:
        return "topics", args.topic
    if args.broker:
        return "brokers", args.broker
    if args.entity_default:
        raise CliError("--entity-default (cluster-wide broker default) is not supported by this tool; "
                       "use --entity-name <broker id>")
    if not args.entity_type:
        raise CliError("--entity-type (topics or brokers) is required, or --topic / --broker")
    return args.entity_type, args.entity_name


def _is_scram(key: str) -> bool:
    return key.upper().startswith("SCRAM-SHA-")


def run(args: argparse.Namespace) -> int:
    if args.entity_type in client_quotas.TYPES or args.user is not None or args.client is not None:
        # users carry two kinds of config, as in kafka-configs.sh: SCRAM credentials
        # (SCRAM-SHA-256=[...]) and client quotas (producer_byte_rate=...); clients only quotas
        to_set, to_delete = _changes(args) if args.alter else ({}, [])
        scram_set = {k: v for k, v in to_set.items() if _is_scram(k)}
        scram_delete = [k for k in to_delete if _is_scram(k)]
        quota_set = {k: v for k, v in to_set.items() if not _is_scram(k)}
        quota_delete = [k for k in to_delete if not _is_scram(k)]
        scram_entity = args.entity_type == "users" and args.client is None and not args.entity_default
        if scram_set or scram_delete:
            if not scram_entity:
                raise CliError("SCRAM credentials belong to a named user: --entity-type users --entity-name NAME")
            code = _users(admin_client(args), args.entity_name or args.user, args, scram_set, scram_delete)
            if code or not (quota_set or quota_delete):
                return code
            return client_quotas.run(args, quota_set, quota_delete)
        if not args.alter and scram_entity and args.output == "json":  # one document: quotas and credentials
            from suoi.cli.configs_users import scram_rows

            quotas = client_quotas.describe_docs(args, client_quotas.entity(args))
            print_json({"entities": quotas, "credentials": scram_rows(admin_client(args), args.entity_name or args.user)})
            return 0
        if not args.alter and scram_entity:
            code = _users(admin_client(args), args.entity_name or args.user, args, {}, [])
            if code:
                return code
        return client_quotas.run(args, quota_set, quota_delete)
    etype, name = _entity(args)
    if args.describe and (args.add_config or args.delete_config or args.add_config_file):
        raise CliError("--add-config/--delete-config are only valid with --alter")
    if args.all and not args.describe:
        raise CliError("--all is only valid with --describe")
    admin = admin_client(args)
    md = cluster_metadata(admin, args.bootstrap_server)
    if args.alter:
        if name is None:
            raise CliError("--alter needs --entity-name (or --topic / --broker)")
        if etype == "broker-loggers":
            return configs_loggers.alter(admin, args, name, *_changes(args))
        return _alter(admin, etype, name, args)
    if etype == "broker-loggers":
        return configs_loggers.describe(admin, args, [name] if name is not None else [str(b) for b in sorted(md.brokers)])
    if name is not None:
        names = [name]
    elif etype == "topics":
        names = sorted(md.topics)
    else:
        names = [str(b) for b in sorted(md.brokers)]
    return _describe(admin, etype, names, args)


def _users(admin: Any, name: str | None, args: argparse.Namespace, to_set: dict[str, str],
           to_delete: list[str]) -> int:
    """SCRAM credentials of users (`configs_users`)."""
    from suoi.cli.configs_users import alter_users, describe_users

    if not args.alter:
        return describe_users(admin, name, args)
    if name is None:
        raise CliError("--alter needs --entity-name for users")
    return alter_users(admin, name, to_set, to_delete, args)


def _resource(etype: str, name: str, entries: list[Any] | None = None) -> Any:
    from confluent_kafka.admin import ConfigResource

    if etype == "brokers" and not name.strip().isdigit():
        raise CliError(f"a broker entity name is the broker id (a number), got {name!r}")
    return ConfigResource("topic" if etype == "topics" else "broker", name, incremental_configs=entries)


def _source_name(source: Any) -> str:
    from confluent_kafka.admin import ConfigSource

    try:
        return ConfigSource(int(getattr(source, "value", source))).name
    except ValueError:
        return "UNKNOWN_CONFIG"


_SCALE = {"log.retention.hours": 3_600_000, "log.retention.minutes": 60_000, "log.roll.hours": 3_600_000}


def _synonyms(key: str, e: Any) -> list[dict[str, Any]]:
    """confluent-kafka hands synonyms over as a dict by name, so of two entries for one name
    (say STATIC and DEFAULT) only the last, lowest-precedence one survives. The entry's own
    value and source are those of the highest-precedence synonym, whose name is the dict's
    first key: put that entry back."""
    items = list((e.synonyms or {}).values())
    out = [{"name": s.name, "value": s.value, "source": _source_name(s.source)} for s in items]
    source = _source_name(e.source)
    if items and all(x["source"] != source for x in out):
        top, value = out[0]["name"], e.value
        if top in _SCALE and value is not None and value.lstrip("-").isdigit():
            value = str(int(value) // _SCALE[top])
        out.insert(0, {"name": top, "value": value, "source": source})
    return out


def _describe(admin: Any, etype: str, names: list[str], args: argparse.Namespace) -> int:
    resources = [_resource(etype, n) for n in names]
    futures = admin.describe_configs(resources, request_timeout=TIMEOUT_S) if resources else {}
    by_name = {r.name: f for r, f in futures.items()}
    wanted = None if args.all else DYNAMIC_SOURCE[etype]
    docs: list[dict[str, Any]] = []
    for name in names:
        entries = result(by_name[name])
        rows = []
        for key, e in sorted(entries.items()):
            source = int(getattr(e.source, "value", e.source))
            if wanted is not None and source != wanted:
                continue
            rows.append({"name": key, "value": e.value, "source": _source_name(e.source),
                         "sensitive": bool(e.is_sensitive), "read_only": bool(e.is_read_only),
                         "synonyms": _synonyms(key, e)})
        docs.append({"entity_type": etype, "entity_name": name, "configs": rows})
    if args.output == "json":
        print_json({"entities": docs})
        return 0
    singular = {"topics": "topic", "brokers": "broker"}[etype]
    for d in docs:
        print(f"{'All' if args.all else 'Dynamic'} configs for {singular} {d['entity_name']} are:")
        for r in d["configs"]:
            value = "null" if r["value"] is None else r["value"]
            synonyms = ", ".join(f"{s['source']}:{s['name']}={s['value']}" for s in r["synonyms"])
            print(f"  {r['name']}={value} sensitive={str(r['sensitive']).lower()} synonyms={{{synonyms}}}")
    return 0


def _changes(args: argparse.Namespace) -> tuple[dict[str, str], list[str]]:
    to_set = parse_add_config(args.add_config) if args.add_config else {}
    if args.add_config_file:
        to_set.update(read_props(args.add_config_file))
    return to_set, [k.strip() for k in (args.delete_config or "").split(",") if k.strip()]


def _alter(admin: Any, etype: str, name: str, args: argparse.Namespace) -> int:
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry

    to_set, to_delete = _changes(args)
    if not to_set and not to_delete:
        raise CliError("--alter needs --add-config, --add-config-file or --delete-config")
    both = sorted(set(to_set) & set(to_delete))
    if both:
        raise CliError(f"{both[0]} is both added and deleted")
    entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in to_set.items()]
    entries += [ConfigEntry(k, None, incremental_operation=AlterConfigOpType.DELETE) for k in to_delete]
    resource = _resource(etype, name, entries)
    for f in admin.incremental_alter_configs([resource], request_timeout=TIMEOUT_S).values():
        result(f)
    singular = {"topics": "topic", "brokers": "broker"}[etype]
    if args.output == "json":
        print_json({"entity_type": etype, "entity_name": name, "set": to_set, "deleted": to_delete})
    else:
        print(f"Completed updating config for {singular} {name}.")
    return 0
