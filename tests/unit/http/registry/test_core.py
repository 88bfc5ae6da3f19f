"""The registry's sans-IO core: replaying `_schemas` records (Confluent's layout, as Confluent's
registry or Karapace write them) into the store, and planning writes against it. A "log" here is
a list: a write's records are appended and replayed, as the service does through the topic."""

from __future__ import annotations

import json
from typing import Any

import pytest

from suoi.http.registry import records
from suoi.http.registry.core import RegistryCore, Write
from suoi.http.registry.errors import RegistryError
from suoi.http.registry.store import SchemaStore

V1 = json.dumps({"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}]})
V2 = json.dumps({"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"},
                                                           {"name": "b", "type": "int", "default": 0}]})


class Log:
    """A topic stand-in: append a write's records, replay them into a store, as the service does."""

    def __init__(self) -> None:
        self.entries: list[tuple[bytes, bytes | None]] = []
        self.store = SchemaStore()
        self.core = RegistryCore(self.store)

    def run(self, write: Write) -> Any:
        for key, value in write.records:
            self.entries.append((key, value))
            self.store.apply(len(self.entries) - 1, records.decode(key, value))
        return write.result

    def register(self, subject: str, schema: str, **body: Any) -> Any:
        return self.run(self.core.register(subject, {"schema": schema, **body}, normalize=False))

    def replayed(self) -> SchemaStore:
        store = SchemaStore()
        for offset, (key, value) in enumerate(self.entries):
            store.apply(offset, records.decode(key, value))
        return store


def code(fn: Any, *args: Any, **kwargs: Any) -> int:
    with pytest.raises(RegistryError) as err:
        fn(*args, **kwargs)
    return err.value.error_code


def test_register_assigns_global_ids_and_versions_and_is_idempotent() -> None:
    log = Log()
    assert log.register("a-value", V1) == {"id": 1}
    assert log.register("a-value", V1) == {"id": 1}  # the same schema again: no new record
    assert len(log.entries) == 1
    assert log.register("a-value", V2) == {"id": 2}
    assert log.register("b-value", V1) == {"id": 1}  # same schema, other subject: same id, version 1
    assert [sv.version for sv in log.store.versions("b-value")] == [1]
    assert log.entries[0][0] == b'{"keytype":"SCHEMA","subject":"a-value","version":1,"magic":1}'
    assert json.loads(log.entries[0][1]) == {"subject": "a-value", "version": 1, "id": 1, "schema": V1.replace(" ", ""),
                                             "deleted": False}
    replayed = log.replayed()
    assert replayed.subjects == log.store.subjects and replayed.max_id == 2


def test_incompatible_schema_is_refused_and_nothing_is_written() -> None:
    log = Log()
    log.register("s", V1)
    breaking = json.dumps({"type": "record", "name": "R", "fields": [{"name": "a", "type": "string"}]})
    assert code(log.core.register, "s", {"schema": breaking}, normalize=False) == 409
    assert len(log.entries) == 1
    log.run(log.core.set_config("s", {"compatibility": "NONE"}))
    assert log.register("s", breaking) == {"id": 2}


def test_ids_are_never_reused_after_a_hard_delete() -> None:
    log = Log()
    log.register("s", V1)
    log.register("s", V2)
    log.run(log.core.delete_subject("s", permanent=False))
    log.run(log.core.delete_subject("s", permanent=True))
    assert log.store.subject_names(deleted=True) == []
    other = json.dumps({"type": "record", "name": "Q", "fields": []})
    assert log.register("t", other) == {"id": 3}
    assert code(log.core.schema_by_id, 2) == 40403


def test_soft_delete_keeps_ids_readable_and_versions_counting() -> None:
    log = Log()
    log.register("s", V1)
    assert log.run(log.core.delete_version("s", "1", permanent=False)) == 1
    assert code(log.core.version, "s", "1") == 40401  # no live version left
    assert log.core.version("s", "1", deleted=True).deleted
    assert log.core.schema_by_id(1).schema_id == 1
    assert log.register("s", V2) == {"id": 2}
    assert [sv.version for sv in log.store.versions("s")] == [2]  # versions are never reused either
    assert code(log.core.delete_version, "s", "2", permanent=True) == 40407


def test_modes_and_import() -> None:
    log = Log()
    log.run(log.core.set_mode(None, {"mode": "READONLY"}, force=False))
    assert code(log.core.register, "s", {"schema": V1}, normalize=False) == 42205
    log.run(log.core.set_mode(None, {"mode": "IMPORT"}, force=False))
    assert log.register("s", V1, id=42, version=7) == {"id": 42}
    assert log.core.version("s", "7").schema_id == 42
    assert code(log.core.set_mode, None, {"mode": "IMPORT"}, force=False) == 42205  # not empty any more
    log.run(log.core.delete_mode(None))
    assert log.core.mode(None, default_to_global=False) == {"mode": "READWRITE"}
    assert log.register("s", V2) == {"id": 43}  # above every id seen
    assert code(log.core.register, "s", {"schema": V1, "id": 5}, normalize=False) == 42205


def test_references_are_resolved_and_protect_the_referenced_version() -> None:
    log = Log()
    address = json.dumps({"type": "record", "name": "Address", "fields": [{"name": "city", "type": "string"}]})
    person = json.dumps({"type": "record", "name": "Person", "fields": [{"name": "home", "type": "Address"}]})
    log.register("address", address)
    refs = [{"name": "Address", "subject": "address", "version": 1}]
    assert code(log.core.register, "person", {"schema": person}, normalize=False) == 42201
    assert log.register("person", person, references=refs) == {"id": 2}
    assert log.store.referenced_by("address", 1) == [2]
    assert code(log.core.delete_subject, "address", permanent=False) == 42206
    assert log.core.version("person", "latest").references == (("Address", "address", 1),)


def test_replay_reads_records_written_by_other_registries() -> None:
    store = SchemaStore()
    entries: list[tuple[bytes, bytes | None]] = [
        # Karapace-style spacing and field order
        (b'{"subject": "x", "version": 1, "magic": 1, "keytype": "SCHEMA"}',
         b'{"subject": "x", "version": 1, "id": 5, "schema": "\\"string\\"", "deleted": false}'),
        (b'{"keytype":"SCHEMA","subject":"y","version":1,"magic":1}',
         b'{"subject":"y","version":1,"id":6,"schema":"{}","schemaType":"JSON","deleted":false}'),
        (b'{"keytype":"CONFIG","subject":null,"magic":0}', b'{"compatibilityLevel":"FULL"}'),
        (b'{"keytype":"MODE","subject":"y","magic":0}', b'{"mode":"READONLY"}'),
        (b'{"keytype":"DELETE_SUBJECT","subject":"x","magic":0}', b'{"subject":"x","version":1}'),
        (b'{"keytype":"SOMETHING_NEW","magic":0}', b'{}'),
        (b'not json', b'{}'),
        (b'{"keytype":"NOOP","magic":0}', None),
    ]
    for offset, (key, value) in enumerate(entries):
        store.apply(offset, records.decode(key, value))
    assert store.applied_offset == 7 and store.max_id == 6
    assert store.subject_names() == ["y"] and store.subject_names(deleted=True) == ["x", "y"]
    assert store.versions("y")[0].schema_type == "JSON"
    assert store.compatibility("y") == "FULL" and store.mode_of("y") == "READONLY" and store.mode_of("x") == "READWRITE"


def test_version_path_segments() -> None:
    log = Log()
    log.register("s", V1)
    log.register("s", V2)
    assert [log.core.version("s", v).version for v in ("latest", "-1", "1", "2")] == [2, 2, 1, 2]
    for bad in ("0", "-2", "abc", str(2**31)):
        assert code(log.core.version, "s", bad) == 42202
    assert code(log.core.version, "s", "3") == 40402
    assert code(log.core.version, "nope", "1") == 40401


def test_the_core_is_sans_io() -> None:
    """store, records, core, compatibility and formats: no event loop, sockets, threads or Kafka client."""
    import ast
    from pathlib import Path

    import suoi.http.registry as pkg

    root = Path(pkg.__file__).parent
    pure = [root / f for f in ("store.py", "records.py", "core.py", "compatibility.py", "errors.py")]
    pure += sorted((root / "formats").glob("*.py"))
    banned = {"asyncio", "aiohttp", "confluent_kafka", "socket", "threading", "suoi.http.registry.service",
              "suoi.http.registry.topic", "suoi.http.registry.election", "suoi.http.registry.app"}
    for path in pure:
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert not any(name == b or name.startswith(b + ".") for b in banned), f"{path.name} imports {name}"


@pytest.mark.parametrize(("value", "ok"), [("http://127.0.0.1:8081", True), ("http://[::1]:8081", True), ("", True),
                                           ("https://127.0.0.1:8081", False), ("127.0.0.1:8081", False),
                                           ("http://a:1,http://b:2", False), ("http://host", False)])
def test_schema_registry_listeners_setting_is_checked_at_start(value: str, ok: bool) -> None:
    from suoi.config import load_config

    if ok:
        assert load_config({"schema.registry.listeners": value}, {}).get("schema.registry.listeners") == value
    else:
        with pytest.raises(ValueError, match="schema.registry.listeners"):
            load_config({"schema.registry.listeners": value}, {})
