"""`suoi acls`: kafka-acls.sh -- add, remove and list ACL bindings.

    suoi acls --bootstrap-server H:P [--command-config F] --add|--remove|--list
              [--allow-principal P ...] [--deny-principal P ...] [--allow-host H] [--deny-host H]
              [--operation OP ...] [--topic T ...] [--group G ...] [--cluster] [--transactional-id T ...]
              [--resource-pattern-type literal|prefixed|any|match] [--producer [--idempotent]] [--consumer]
              [--principal P] [--force] [--output text|json]

As Kafka's tool: `--producer` is WRITE, DESCRIBE and CREATE on the topics (WRITE and DESCRIBE
on --transactional-id, IDEMPOTENT_WRITE on the cluster with --idempotent); `--consumer` is READ
and DESCRIBE on the topics and READ on the groups. `--remove` without `--force` asks first;
`--list` prints the bindings per resource (all, or those of the given resources/principal).
Through confluent-kafka's AdminClient (CreateAcls/DescribeAcls/DeleteAcls).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from suoi.cli.common import CliError, add_common_args, admin_client, guarded, print_json, result

_OPERATIONS = ("All", "Read", "Write", "Create", "Delete", "Alter", "Describe", "ClusterAction", "DescribeConfigs",
               "AlterConfigs", "IdempotentWrite")


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "acls", help="add, remove and list ACLs (kafka-acls)",
        description="Manage ACL bindings with Kafka's kafka-acls.sh flags (needs authorizer.class.name set on "
        "the brokers).", epilog="example: suoi acls --bootstrap-server localhost:9092 --add --allow-principal "
        "User:alice --consumer --topic orders --group billing", formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    action = p.add_mutually_exclusive_group()
    action.add_argument("--add", action="store_true", help="add the ACLs described by the other flags")
    action.add_argument("--remove", action="store_true", help="remove the ACLs described by the other flags")
    action.add_argument("--list", action="store_true", help="list ACLs (of the given resources, or all)")
    p.add_argument("--allow-principal", action="append", default=[], metavar="P", help="e.g. User:alice")
    p.add_argument("--deny-principal", action="append", default=[], metavar="P")
    p.add_argument("--allow-host", action="append", default=[], metavar="H", help="default: * (every host)")
    p.add_argument("--deny-host", action="append", default=[], metavar="H")
    p.add_argument("--operation", action="append", default=[], metavar="OP", help=f"one of {', '.join(_OPERATIONS)}")
    p.add_argument("--topic", action="append", default=[], metavar="T")
    p.add_argument("--group", action="append", default=[], metavar="G")
    p.add_argument("--cluster", action="store_true", help="the cluster resource")
    p.add_argument("--transactional-id", action="append", default=[], metavar="T")
    p.add_argument("--resource-pattern-type", default=None, metavar="TYPE",
                   help="literal (default for --add), prefixed, any or match (--list/--remove)")
    p.add_argument("--producer", action="store_true", help="the ACLs a producer needs")
    p.add_argument("--idempotent", action="store_true", help="with --producer: IDEMPOTENT_WRITE on the cluster")
    p.add_argument("--consumer", action="store_true", help="the ACLs a consumer needs (with --group)")
    p.add_argument("--principal", action="append", default=[], metavar="P", help="--list: only this principal's")
    p.add_argument("--force", action="store_true", help="--remove without asking")
    p.set_defaults(func=guarded("acls")(run))


def _op(name: str) -> Any:
    from confluent_kafka.admin import AclOperation

    key = "".join(ch for ch in name.upper() if ch.isalpha())
    for op in AclOperation:
        if op.name.replace("_", "") == key:
            return op
    raise CliError(f"Invalid operation {name!r}: one of {', '.join(_OPERATIONS)}")


def _pattern(args: argparse.Namespace, default: str) -> Any:
    from confluent_kafka.admin import ResourcePatternType

    name = (args.resource_pattern_type or default).upper()
    if name not in ResourcePatternType.__members__ or name == "UNKNOWN":
        raise CliError(f"Invalid --resource-pattern-type {args.resource_pattern_type!r}")
    if args.add and name not in ("LITERAL", "PREFIXED"):
        raise CliError("A '--resource-pattern-type' value of 'literal' or 'prefixed' is required to add ACLs")
    return ResourcePatternType[name]


def _resources(args: argparse.Namespace) -> list[tuple[Any, str, tuple[Any, ...]]]:
    """(resource type, name, operations) per resource; the --producer/--consumer shortcuts expand here."""
    from confluent_kafka.admin import AclOperation as Op
    from confluent_kafka.admin import ResourceType as Rt

    ops = tuple(_op(o) for o in args.operation) or (Op.ALL,)
    out: list[tuple[Any, str, tuple[Any, ...]]] = []
    if args.producer or args.consumer:
        if args.consumer and not args.group:
            raise CliError("With --consumer you must specify a --group")
        if not args.topic:
            raise CliError("With --producer or --consumer you must specify a --topic")
        for t in args.topic:
            out.append((Rt.TOPIC, t, (Op.WRITE, Op.DESCRIBE, Op.CREATE) if args.producer else ()))
            if args.consumer:
                out.append((Rt.TOPIC, t, (Op.READ, Op.DESCRIBE)))
        out += [(Rt.GROUP, g, (Op.READ,)) for g in args.group if args.consumer]
        out += [(Rt.TRANSACTIONAL_ID, t, (Op.WRITE, Op.DESCRIBE)) for t in args.transactional_id if args.producer]
        if args.producer and args.idempotent:
            out.append((Rt.BROKER, "kafka-cluster", (Op.IDEMPOTENT_WRITE,)))
        return [r for r in out if r[2]]
    out += [(Rt.TOPIC, t, ops) for t in args.topic]
    out += [(Rt.GROUP, g, ops) for g in args.group]
    out += [(Rt.TRANSACTIONAL_ID, t, ops) for t in args.transactional_id]
    if args.cluster:
        out.append((Rt.BROKER, "kafka-cluster", ops))
    return out


def _entries(args: argparse.Namespace) -> list[tuple[str, str, Any]]:
    from confluent_kafka.admin import AclPermissionType as Perm

    allow_hosts, deny_hosts = args.allow_host or ["*"], args.deny_host or ["*"]
    return ([(p, h, Perm.ALLOW) for p in args.allow_principal for h in allow_hosts]
            + [(p, h, Perm.DENY) for p in args.deny_principal for h in deny_hosts])


def _row(b: Any) -> dict[str, str]:
    kind = "CLUSTER" if b.restype.name == "BROKER" else b.restype.name
    return {"resource_type": kind, "resource_name": b.name, "pattern_type": b.resource_pattern_type.name,
            "principal": b.principal, "host": b.host, "operation": b.operation.name,
            "permission_type": b.permission_type.name}


def _print(args: argparse.Namespace, title: str, bindings: list[Any]) -> None:
    rows = sorted((_row(b) for b in bindings), key=lambda r: tuple(r.values()))
    if args.output == "json":
        print_json(rows)
        return
    by_resource: dict[tuple[str, str, str], list[dict[str, str]]] = {}
    for r in rows:
        by_resource.setdefault((r["resource_type"], r["resource_name"], r["pattern_type"]), []).append(r)
    for (kind, name, pattern), items in by_resource.items():
        print(f"{title} `ResourcePattern(resourceType={kind}, name={name}, patternType={pattern})`:")
        for r in items:
            print(f" \t(principal={r['principal']}, host={r['host']}, operation={r['operation']}, "
                  f"permissionType={r['permission_type']})")
        print()


def run(args: argparse.Namespace) -> int:
    from confluent_kafka.admin import AclBinding, AclOperation, AclPermissionType, ResourceType
    from confluent_kafka.admin import AclBindingFilter as _Filter

    AclBindingFilter: Any = _Filter  # its stubs say str where DescribeAcls/DeleteAcls take None (any)

    if not (args.add or args.remove or args.list):
        raise CliError("Command must include exactly one action: --list, --add, --remove.")
    admin = admin_client(args)
    resources = _resources(args)
    if args.list:
        pattern = _pattern(args, "ANY")
        principals = args.principal or [None]
        filters = [AclBindingFilter(rt, name, pattern, p, None, AclOperation.ANY, AclPermissionType.ANY)
                   for rt, name, _ in resources for p in principals] or [
            AclBindingFilter(ResourceType.ANY, None, pattern, p, None, AclOperation.ANY, AclPermissionType.ANY)
            for p in principals]
        found = {b for f in filters for b in result(admin.describe_acls(f))}
        _print(args, "Current ACLs for resource", list(found))
        return 0
    if not resources:
        raise CliError("You must specify one of: --topic, --cluster, --group, --transactional-id")
    entries = _entries(args)
    if args.add:
        if not entries:
            raise CliError("You must specify one of: --allow-principal, --deny-principal when trying to add ACLs.")
        pattern = _pattern(args, "LITERAL")
        bindings = [AclBinding(rt, name, pattern, p, h, op, perm)
                    for rt, name, ops in resources for op in ops for p, h, perm in entries]
        for future in admin.create_acls(bindings).values():
            result(future)
        _print(args, "Adding ACLs for resource", bindings)
        return 0
    pattern = _pattern(args, "LITERAL")
    filters = ([AclBindingFilter(rt, name, pattern, p, h, op, perm)
                for rt, name, ops in resources for op in ops for p, h, perm in entries] if entries else
               [AclBindingFilter(rt, name, pattern, None, None, AclOperation.ANY, AclPermissionType.ANY)
                for rt, name, _ in resources])
    if not args.force:
        print("Are you sure you want to remove ACLs matching the given flags? (y/n)", flush=True)
        answer = sys.stdin.readline().strip().lower()
        if answer != "y":
            raise CliError("not removed (answer y, or pass --force)")
    removed = [b for future in admin.delete_acls(filters).values() for b in result(future)]
    _print(args, "Removed ACLs for resource", removed)
    return 0
