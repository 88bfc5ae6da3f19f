"""`suoi configs --entity-type users`: SCRAM credentials, as kafka-configs.sh manages them.

    --alter --add-config 'SCRAM-SHA-256=[iterations=8192,password=alice-secret]' --entity-name alice
    --alter --delete-config SCRAM-SHA-512 --entity-name alice
    --describe [--entity-name alice]

Sent with confluent-kafka's AlterUserScramCredentials / DescribeUserScramCredentials (KIP-554):
the client salts and hashes the password, so it never crosses the wire or reaches a log.
Quota configs of users (producer_byte_rate, ...) are not implemented yet.
"""

from __future__ import annotations

import argparse
from typing import Any

from suoi.cli.common import CliError, print_json, result

_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
DEFAULT_ITERATIONS = 4096  # Kafka's default for --add-config SCRAM-SHA-*=[password=...]


def _mechanism(name: str) -> Any:
    from confluent_kafka.admin import ScramMechanism

    if name.upper() not in _MECHANISMS:
        raise CliError(f"{name}: users configs support {', '.join(_MECHANISMS)} only (quotas are not implemented)")
    return ScramMechanism.SCRAM_SHA_256 if name.upper() == "SCRAM-SHA-256" else ScramMechanism.SCRAM_SHA_512


def _credential(mechanism: str, value: str) -> tuple[int, str]:
    fields = dict(part.split("=", 1) for part in value.split(",") if "=" in part)
    if "password" not in fields:
        raise CliError(f"{mechanism} needs password=... (e.g. {mechanism}=[iterations=8192,password=...])")
    try:
        iterations = int(fields.get("iterations", DEFAULT_ITERATIONS))
    except ValueError:
        raise CliError(f"{mechanism}: iterations must be a number") from None
    return iterations, fields["password"]


def alter_users(admin: Any, name: str, to_set: dict[str, str], to_delete: list[str], args: argparse.Namespace) -> int:
    from confluent_kafka.admin import ScramCredentialInfo, UserScramCredentialDeletion, UserScramCredentialUpsertion

    alterations: list[Any] = [UserScramCredentialDeletion(name, _mechanism(m)) for m in to_delete]
    for mechanism, value in to_set.items():
        iterations, password = _credential(mechanism, value)
        info = ScramCredentialInfo(_mechanism(mechanism), iterations)
        alterations.append(UserScramCredentialUpsertion(name, info, password.encode()))
    for f in admin.alter_user_scram_credentials(alterations).values():
        result(f)
    if args.output == "json":
        print_json({"entity_type": "users", "entity_name": name, "set": sorted(to_set), "deleted": to_delete})
    else:
        print(f"Completed updating config for user {name}.")
    return 0


def scram_rows(admin: Any, name: str | None) -> list[dict[str, Any]]:
    """[{"user", "credentials": [{"mechanism", "iterations"}]}] from DescribeUserScramCredentials."""
    from confluent_kafka.admin import ScramMechanism

    futures = admin.describe_user_scram_credentials([name] if name else None)
    described = {user: result(f) for user, f in futures.items()} if isinstance(futures, dict) else result(futures)
    return [{"user": u, "credentials": [{"mechanism": ScramMechanism(i.mechanism).name.replace("_", "-"),
                                          "iterations": i.iterations} for i in d.scram_credential_infos]}
            for u, d in sorted(described.items())]


def describe_users(admin: Any, name: str | None, args: argparse.Namespace) -> int:
    from confluent_kafka.admin import ScramMechanism

    futures = admin.describe_user_scram_credentials([name] if name else None)
    described = {user: result(f) for user, f in futures.items()} if isinstance(futures, dict) else result(futures)
    rows = {user: [(ScramMechanism(i.mechanism).name.replace("_", "-"), i.iterations)
                   for i in d.scram_credential_infos] for user, d in sorted(described.items())}
    if args.output == "json":
        print_json([{"user": u, "credentials": [{"mechanism": m, "iterations": n} for m, n in infos]}
                    for u, infos in rows.items()])
        return 0
    for user, infos in rows.items():
        creds = ", ".join(f"{m}=iterations={n}" for m, n in infos)
        print(f"SCRAM credential configs for user-principal '{user}' are {creds}")
    return 0
