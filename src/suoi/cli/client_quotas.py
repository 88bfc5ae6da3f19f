"""`suoi configs` for client quotas (KIP-546): ``--entity-type users|clients|ips`` (or ``--user`` /
``--client``, both for a (user, client-id) entity; ``--entity-default`` for the default entity),
``--alter --add-config producer_byte_rate=1048576,consumer_byte_rate=...,request_percentage=...``
/ ``--delete-config``, and ``--describe``. Sent as AlterClientQuotas / DescribeClientQuotas (kio
through `admin_requests.send`: confluent-kafka's AdminClient has no client quota calls).
"""

from __future__ import annotations

import argparse
from typing import Any

from suoi.cli.admin_requests import error_name, send
from suoi.cli.common import CliError, print_json

TYPES = {"users": "user", "clients": "client-id", "ips": "ip"}
_LABEL = {"user": "user-principal", "client-id": "client-id", "ip": "ip"}


def entity(args: argparse.Namespace) -> list[tuple[str, str | None]]:
    """[(entity type, name or None for the default)] from the flags."""
    parts: list[tuple[str, str | None]] = []
    if args.entity_type in TYPES:
        parts.append((TYPES[args.entity_type], None if args.entity_default else args.entity_name))
    for kind, value in (("user", args.user), ("client-id", args.client)):
        if value is not None and all(t != kind for t, _ in parts):
            parts.append((kind, None if value == "" else value))
    if not parts:
        raise CliError("--entity-type users|clients (or --user / --client) is required")
    return parts


def run(args: argparse.Namespace, to_set: dict[str, str], to_delete: list[str]) -> int:
    parts = entity(args)
    if args.alter:
        return _alter(args, parts, to_set, to_delete)
    return _describe(args, parts)


def _alter(args: argparse.Namespace, parts: list[tuple[str, str | None]], to_set: dict[str, str],
           to_delete: list[str]) -> int:
    from kio.schema.alter_client_quotas.v1.request import AlterClientQuotasRequest, EntityData, EntryData, OpData
    from kio.static.primitive import f64

    if not to_set and not to_delete:
        raise CliError("--alter needs --add-config or --delete-config")
    ops = []
    for key, value in to_set.items():
        try:
            ops.append(OpData(key=key, value=f64(float(value)), remove=False))
        except ValueError:
            raise CliError(f"{key}={value}: a quota is a number") from None
    ops += [OpData(key=key, value=f64(0.0), remove=True) for key in to_delete]
    request = AlterClientQuotasRequest(entries=(EntryData(
        entity=tuple(EntityData(entity_type=t, entity_name=n) for t, n in parts), ops=tuple(ops)),),
        validate_only=False)
    response = send(args, request, "configs")
    for e in response.entries:
        if int(e.error_code) != 0:
            raise CliError(f"{error_name(e.error_code)}: {e.error_message or ''}".rstrip(": "))
    name = _name(parts)
    if args.output == "json":
        print_json({"entity": _entity_json(parts), "set": to_set, "deleted": to_delete})
    else:
        print(f"Completed updating config for {name}.")
    return 0


def _describe(args: argparse.Namespace, parts: list[tuple[str, str | None]]) -> int:
    response, docs = _described(args, parts)
    if args.output == "json":
        print_json({"entities": docs})
        return 0
    for entry, d in zip(response.entries, docs, strict=True):
        label = ", ".join(f"{_LABEL.get(e.entity_type, e.entity_type)} "
                          f"{'<default>' if e.entity_name is None else repr(e.entity_name)}" for e in entry.entity)
        values = ", ".join(f"{k}={v}" for k, v in sorted(d["configs"].items()))
        print(f"Quota configs for {label} are {values}")
    return 0


def describe_docs(args: argparse.Namespace, parts: list[tuple[str, str | None]]) -> list[dict[str, Any]]:
    """The quotas `--describe` finds, as JSON documents (`configs` merges them with SCRAM credentials)."""
    return _described(args, parts)[1]


def _described(args: argparse.Namespace, parts: list[tuple[str, str | None]]) -> tuple[Any, list[dict[str, Any]]]:
    from kio.schema.describe_client_quotas.v1.request import ComponentData, DescribeClientQuotasRequest
    from kio.static.primitive import i8

    components = tuple(ComponentData(entity_type=t, match_type=i8(1 if n is None else 0), match=n) for t, n in parts)
    # Kafka's tool: a named entity alone (no --entity-name) lists every entity of that type
    if len(parts) == 1 and parts[0][1] is None and not args.entity_default:
        components = (ComponentData(entity_type=parts[0][0], match_type=i8(2), match=None),)
    response = send(args, DescribeClientQuotasRequest(components=components, strict=True), "configs")
    if int(response.error_code) != 0:
        raise CliError(f"{error_name(response.error_code)}: {response.error_message or ''}")
    docs: list[dict[str, Any]] = [{"entity": _entity_json([(e.entity_type, e.entity_name) for e in entry.entity]),
             "configs": {v.key: float(v.value) for v in entry.values}} for entry in response.entries]
    return response, docs


def _entity_json(parts: list[tuple[str, str | None]]) -> dict[str, str | None]:
    return {t: n for t, n in parts}


def _name(parts: list[tuple[str, str | None]]) -> str:
    return ", ".join(f"{'user' if t == 'user' else 'client'} {n if n is not None else '<default>'}" for t, n in parts)


def describe_args(p: Any) -> None:
    """The flags `configs` adds for quotas."""
    p.add_argument("--user", metavar="USER", help="a user entity (with --client: that user's client id)")
    p.add_argument("--client", metavar="CLIENT_ID", help="a client-id entity")
