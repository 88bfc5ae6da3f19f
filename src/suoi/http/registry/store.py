"""The registry's state, rebuilt by replaying ``_schemas`` records (sans-IO).

Every node running the registry holds one ``SchemaStore`` fed by the topic in offset order, so
every node answers reads alike; only the primary writes (``suoi.http.registry.service``). The
store never decides anything: it applies what the topic says, including records written by
Confluent's registry or Karapace (the same layout, ``records``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from suoi.http.registry.records import Record

__all__ = ["SchemaStore", "SchemaVersion"]

log = logging.getLogger("suoi.http.registry")


@dataclass(frozen=True, slots=True)
class SchemaVersion:
    subject: str
    version: int
    schema_id: int
    schema: str
    schema_type: str  # AVRO, JSON or PROTOBUF
    references: tuple[tuple[str, str, int], ...]  # (name, subject, version)
    deleted: bool

    def references_json(self) -> list[dict[str, Any]]:
        return [{"name": n, "subject": s, "version": v} for n, s, v in self.references]


@dataclass
class SchemaStore:
    #: subject -> version -> the version (soft-deleted ones too; hard-deleted ones are gone)
    subjects: dict[str, dict[int, SchemaVersion]] = field(default_factory=dict)
    #: id -> (schema text, type, references) of every id ever read (ids are never reused)
    schemas: dict[int, SchemaVersion] = field(default_factory=dict)
    config: dict[str | None, dict[str, Any]] = field(default_factory=dict)  # None: global
    mode: dict[str | None, str] = field(default_factory=dict)
    max_id: int = 0
    #: the offset of the last record applied (-1: none); the writer waits for its record's offset
    applied_offset: int = -1

    # ------------------------------------------------------------------ replay
    def apply(self, offset: int, record: Record | None) -> None:
        """Apply one record of the topic at ``offset`` (None: a record we do not understand)."""
        self.applied_offset = max(self.applied_offset, offset)
        if record is None:
            return
        handler = getattr(self, f"_apply_{record.keytype.lower()}", None)
        if handler is None:
            log.info("_schemas offset %d: key type %s skipped", offset, record.keytype)
            return
        try:
            handler(record.key, record.value)
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("_schemas offset %d: malformed %s record skipped: %s", offset, record.keytype, exc)

    def _apply_schema(self, key: dict[str, Any], value: dict[str, Any] | None) -> None:
        subject, version = str(key["subject"]), int(key["version"])
        if value is None:  # hard delete
            versions = self.subjects.get(subject, {})
            versions.pop(version, None)
            if not versions:
                self.subjects.pop(subject, None)
            return
        refs = tuple((str(r["name"]), str(r["subject"]), int(r["version"])) for r in value.get("references") or ())
        sv = SchemaVersion(subject, version, int(value["id"]), str(value["schema"]),
                           str(value.get("schemaType") or "AVRO"), refs, bool(value.get("deleted", False)))
        self.subjects.setdefault(subject, {})[version] = sv
        self.schemas.setdefault(sv.schema_id, sv)
        self.max_id = max(self.max_id, sv.schema_id)

    def _apply_config(self, key: dict[str, Any], value: dict[str, Any] | None) -> None:
        if value is None:
            self.config.pop(key.get("subject"), None)
        else:
            self.config[key.get("subject")] = dict(value)

    def _apply_mode(self, key: dict[str, Any], value: dict[str, Any] | None) -> None:
        if value is None:
            self.mode.pop(key.get("subject"), None)
        else:
            self.mode[key.get("subject")] = str(value["mode"])

    def _apply_delete_subject(self, key: dict[str, Any], value: dict[str, Any] | None) -> None:
        if value is None:
            return
        subject, upto = str(value["subject"]), int(value["version"])
        for v, sv in list(self.subjects.get(subject, {}).items()):
            if v <= upto:
                self.subjects[subject][v] = SchemaVersion(sv.subject, v, sv.schema_id, sv.schema, sv.schema_type,
                                                          sv.references, True)

    def _apply_clear_subject(self, key: dict[str, Any], value: dict[str, Any] | None) -> None:
        if value is None:
            return
        subject, upto = str(value["subject"]), int(value["version"])
        versions = self.subjects.get(subject, {})
        for v in [v for v, sv in versions.items() if v <= upto and sv.deleted]:
            del versions[v]
        if not versions:
            self.subjects.pop(subject, None)

    def _apply_noop(self, key: dict[str, Any], value: dict[str, Any] | None) -> None:
        pass

    # ------------------------------------------------------------------ reads
    def versions(self, subject: str, *, deleted: bool = False) -> list[SchemaVersion]:
        """The subject's versions, oldest first (soft-deleted ones only with ``deleted``)."""
        return [sv for _, sv in sorted(self.subjects.get(subject, {}).items()) if deleted or not sv.deleted]

    def live_ids(self, subject: str) -> frozenset[int]:
        """Ids of the subject's live versions (broker-side schema id validation)."""
        return frozenset(sv.schema_id for sv in self.subjects.get(subject, {}).values() if not sv.deleted)

    def subject_names(self, *, deleted: bool = False) -> list[str]:
        return sorted(s for s in self.subjects if self.versions(s, deleted=deleted))

    def compatibility(self, subject: str | None) -> str:
        for scope in (subject, None):
            level = self.config.get(scope, {}).get("compatibilityLevel")
            if level:
                return str(level)
        return "BACKWARD"

    def normalize(self, subject: str | None) -> bool:
        for scope in (subject, None):
            if "normalize" in self.config.get(scope, {}):
                return bool(self.config[scope]["normalize"])
        return False

    def mode_of(self, subject: str | None) -> str:
        return self.mode.get(subject) or self.mode.get(None) or "READWRITE"

    def referenced_by(self, subject: str, version: int) -> list[int]:
        """Ids of live schema versions that reference ``subject`` version ``version``."""
        return sorted({sv.schema_id for versions in self.subjects.values() for sv in versions.values()
                       if not sv.deleted and any(r[1] == subject and r[2] == version for r in sv.references)})

    def id_in_use(self, schema_id: int) -> bool:
        return any(sv.schema_id == schema_id for versions in self.subjects.values() for sv in versions.values())
