"""AlterUserScramCredentials on the controller (KIP-554): Kafka's per-user rules, records that
hold no password, replay and snapshots."""

from __future__ import annotations

import os
from pathlib import Path

from suoi.controller.image import MetadataImage
from suoi.controller.records import RemoveUserScramCredential, UserScramCredential, decode_batch, encode_batch
from suoi.controller.scram import ScramDeletion, ScramUpsertion
from suoi.model import ErrorCode
from suoi.security.scram import ScramClient, ScramCredential, ScramServer, salted_password

from .helpers import Harness


def _upsert(name: str, mechanism: int = 1, iterations: int = 4096, password: str = "pw") -> ScramUpsertion:
    salt = os.urandom(16)
    mech = {1: "SCRAM-SHA-256", 2: "SCRAM-SHA-512"}.get(mechanism, "SCRAM-SHA-256")
    return ScramUpsertion(name, mechanism, iterations, salt, salted_password(mech, password, salt, iterations))


def test_upsert_stores_keys_that_authenticate_and_never_the_password() -> None:
    h = Harness()
    result = h.ctl.alter_user_scram_credentials([], [_upsert("alice", 2, 8192, "s3cret")])
    assert result.response == [("alice", ErrorCode.none, None)]
    (record,) = result.records
    assert isinstance(record, UserScramCredential) and (record.name, record.mechanism, record.iterations) == (
        "alice", 2, 8192)
    assert b"s3cret" not in encode_batch(result.records) and "s3cret" not in repr(record)
    assert decode_batch(encode_batch(result.records)) == [record]
    stored = h.replayed().scram_credential("alice", 2)
    assert stored == record
    cred = ScramCredential(record.salt, record.stored_key, record.server_key, record.iterations)
    server, client = ScramServer("SCRAM-SHA-512", lambda u: cred), ScramClient("SCRAM-SHA-512", "alice", "s3cret")
    assert client.step(server.step(client.step(server.step(client.first())) or b"")) is None
    assert MetadataImage.from_snapshot(h.replayed().to_snapshot()).scram_credential("alice", 2) == record


def test_kafkas_per_user_errors_fail_every_alteration_of_that_user() -> None:
    h = Harness()
    result = h.ctl.alter_user_scram_credentials(
        [ScramDeletion("carol", 1), ScramDeletion("dave", 2)],
        [_upsert("alice", 1, 1000), _upsert("bob", 3), _upsert("dave", 1), _upsert("erin", 1), _upsert("erin", 1),
         _upsert("", 1), _upsert("frank", 2, 20000), _upsert("grace", 1)])
    assert result.response == [
        ("carol", ErrorCode.resource_not_found, "Attempt to delete a user credential that does not exist"),
        ("dave", ErrorCode.resource_not_found, "Attempt to delete a user credential that does not exist"),
        ("alice", ErrorCode.unacceptable_credential, "Too few iterations"),
        ("bob", ErrorCode.unsupported_sasl_mechanism, "Unknown SCRAM mechanism"),
        ("erin", ErrorCode.duplicate_resource, "A user credential cannot be altered twice in the same request"),
        ("", ErrorCode.unacceptable_credential, "Username must not be empty"),
        ("frank", ErrorCode.unacceptable_credential, "Too many iterations"),
        ("grace", ErrorCode.none, None),
    ]
    assert [(r.name, r.mechanism) for r in result.records] == [("grace", 1)]  # dave's upsert failed with his deletion
    removed = h.ctl.alter_user_scram_credentials([ScramDeletion("grace", 1)], [])
    assert removed.response == [("grace", ErrorCode.none, None)]
    assert removed.records == (RemoveUserScramCredential(name="grace", mechanism=1),)
    assert dict(h.replayed().scram) == {}


def test_bootstrap_credentials_are_written_only_into_a_new_log() -> None:
    from suoi.cluster.scram_bootstrap import parse_add_scram

    admin = parse_add_scram("SCRAM-SHA-512=[name=admin,iterations=8192,password=pw]")
    assert (admin.name, admin.mechanism, admin.iterations) == ("admin", 2, 8192)
    h = Harness()
    first = h.ctl.bootstrap_features([admin])
    assert admin in first.records
    assert h.replayed().scram_credential("admin", 2) == admin
    h.ctl.alter_user_scram_credentials([ScramDeletion("admin", 2)], [])
    h.restart_controller()
    assert h.ctl.bootstrap_features([admin]).records == ()  # not a new log: the deletion stands
    assert h.replayed().scram_credential("admin", 2) is None


def test_the_bootstrap_records_are_owner_only_and_replace_a_leftover(tmp_path: Path) -> None:
    import stat

    from suoi.cluster.scram_bootstrap import BOOTSTRAP_FILE, parse_add_scram, read_bootstrap_records, write_bootstrap_records

    leftover = tmp_path / (BOOTSTRAP_FILE + ".tmp")
    leftover.write_bytes(b"torn")
    leftover.chmod(0o644)
    record = parse_add_scram("SCRAM-SHA-256=[name=alice,password=alice-secret]")
    path = write_bootstrap_records(tmp_path, [record])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_bootstrap_records(tmp_path) == [record]
    assert sorted(p.name for p in tmp_path.iterdir()) == [BOOTSTRAP_FILE]
