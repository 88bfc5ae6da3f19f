"""`suoi storage format --add-scram` (KIP-900): SCRAM credentials a new cluster starts with.

A cluster whose every listener is SCRAM needs its first admin before anyone can log in to create
one. As Kafka's ``kafka-storage.sh format --add-scram 'SCRAM-SHA-256=[name=admin,password=...]'``
does, ``format`` derives the credentials (salt, StoredKey, ServerKey, iterations -- the password
is not kept) and writes them as UserScramCredential records into ``BOOTSTRAP_FILE`` in the
metadata log directory; the first active controller of a new metadata log appends them with the
bootstrap feature levels. A log that already has feature levels or credentials ignores the file.
"""

from __future__ import annotations

import base64
from pathlib import Path

from suoi.atomic_file import write_atomically
from suoi.controller.records import Record, UserScramCredential, decode_batch, encode_batch
from suoi.security.scram import MAX_ITERATIONS, MECHANISMS, MIN_ITERATIONS, make_credential

__all__ = ["BOOTSTRAP_FILE", "parse_add_scram", "read_bootstrap_records", "write_bootstrap_records"]

BOOTSTRAP_FILE = "bootstrap-scram.json"


def parse_add_scram(text: str) -> UserScramCredential:
    """``SCRAM-SHA-256=[name=alice,password=alice-secret]`` (optional ``iterations=``, ``salt=``
    as base64) as a credential record; ValueError (never quoting the password) when malformed."""
    mechanism, sep, rest = text.partition("=")
    mechanism = mechanism.strip().upper()
    if not sep or mechanism not in MECHANISMS or not rest.strip().startswith("[") or not rest.strip().endswith("]"):
        raise ValueError(f"--add-scram expects 'SCRAM-SHA-256=[name=...,password=...]' or SCRAM-SHA-512, "
                         f"not a value starting {text[:16]!r}")
    fields = dict(part.split("=", 1) for part in rest.strip()[1:-1].split(",") if "=" in part)
    if not fields.get("name") or "password" not in fields:
        raise ValueError("--add-scram needs name=... and password=...")
    iterations = int(fields.get("iterations", MIN_ITERATIONS))
    if not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS:
        raise ValueError(f"--add-scram iterations must be within {MIN_ITERATIONS}..{MAX_ITERATIONS}")
    salt = base64.b64decode(fields["salt"]) if fields.get("salt") else None
    c = make_credential(mechanism, fields["password"], iterations, salt)
    return UserScramCredential(name=fields["name"], mechanism=MECHANISMS[mechanism], salt=c.salt,
                               stored_key=c.stored_key, server_key=c.server_key, iterations=c.iterations)


def write_bootstrap_records(metadata_dir: Path, records: list[UserScramCredential]) -> Path:
    """Durably (fsync, rename, fsync of the dir; at `suoi storage format`, once), owner-only: the
    records hold the credentials' salted keys."""
    path = Path(metadata_dir) / BOOTSTRAP_FILE
    write_atomically(path, encode_batch(records), mode=0o600)
    return path


def read_bootstrap_records(metadata_dir: Path) -> list[Record]:
    path = Path(metadata_dir) / BOOTSTRAP_FILE
    try:
        return decode_batch(path.read_bytes())
    except FileNotFoundError:
        return []
