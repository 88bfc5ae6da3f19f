"""What each REST call means, decided on the replayed state: reads answer from the store; writes
return the records to append to ``_schemas`` and the answer to give once they are read back.

Sans-IO: no sockets, no topic. ``service.RegistryService`` appends a write's records (on the
primary, one write at a time) and waits until its own replay has applied them, so a write's
answer is only given once every registry that replays the topic can see it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from suoi.http.registry import errors as E
from suoi.http.registry import records
from suoi.http.registry.compatibility import LEVELS, check
from suoi.http.registry.errors import RegistryError
from suoi.http.registry.formats import ParsedSchema, Reference, SchemaParseError, parse_schema
from suoi.http.registry.store import SchemaStore, SchemaVersion

__all__ = ["MODES", "RegistryCore", "Write"]

MODES = ("READWRITE", "READONLY", "READONLY_OVERRIDE", "IMPORT")
MAX_VERSION = 2**31 - 1


@dataclass
class Write:
    """Records to append (key, value or None for a tombstone), then ``result`` is the answer."""

    records: list[tuple[bytes, bytes | None]] = field(default_factory=list)
    result: Any = None


def parse_version(text: str) -> int | None:
    """A version path segment: a number in [1, 2^31-1], or "latest"/-1 (None). Else 42202."""
    if text == "latest":
        return None
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v == -1:
        return None
    if not 1 <= v <= MAX_VERSION:
        raise RegistryError(E.INVALID_VERSION, f"The specified version '{text}' is not a valid version id. "
                            "Allowed values are between [1, 2^31-1] and the string \"latest\"")
    return v


def version_json(sv: SchemaVersion) -> dict[str, Any]:
    out: dict[str, Any] = {"subject": sv.subject, "version": sv.version, "id": sv.schema_id}
    out.update(schema_json(sv))
    return out


def schema_json(sv: SchemaVersion) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if sv.schema_type != "AVRO":
        out["schemaType"] = sv.schema_type
    if sv.references:
        out["references"] = sv.references_json()
    out["schema"] = sv.schema
    return out


class RegistryCore:
    def __init__(self, store: SchemaStore) -> None:
        self.store = store
        self._parsed: dict[int, ParsedSchema] = {}  # by id: a schema id's text never changes

    # ------------------------------------------------------------------ helpers
    def _subject_versions(self, subject: str, deleted: bool = False) -> list[SchemaVersion]:
        versions = self.store.versions(subject, deleted=deleted)
        if not versions:
            raise E.subject_not_found(subject)
        return versions

    def version(self, subject: str, version_text: str, *, deleted: bool = False) -> SchemaVersion:
        wanted = parse_version(version_text)
        versions = self._subject_versions(subject, deleted)
        if wanted is None:
            return versions[-1]
        for sv in versions:
            if sv.version == wanted:
                return sv
        raise E.version_not_found(subject, wanted)

    def _resolve_references(self, refs: list[dict[str, Any]] | tuple[tuple[str, str, int], ...],
                            out: list[Reference], seen: set[tuple[str, int]], depth: int = 0) -> None:
        """Append the referenced schemas, their own references first (dependency order)."""
        if depth > 32:
            raise E.invalid_schema("references nested more than 32 deep")
        for ref in refs:
            name, subject, version = (ref if isinstance(ref, tuple) else
                                      (ref.get("name"), ref.get("subject"), ref.get("version", -1)))
            if not isinstance(name, str) or not isinstance(subject, str):
                raise E.invalid_schema(f"a reference needs a name and a subject: {ref}")
            try:
                sv = self.version(subject, str(version), deleted=True)
            except RegistryError:
                raise E.invalid_schema(f"reference {name!r} names subject {subject!r} version {version}, "
                                       "which is not registered") from None
            if (subject, sv.version) in seen:
                continue
            seen.add((subject, sv.version))
            self._resolve_references(sv.references, out, seen, depth + 1)
            out.append((name, sv.schema))

    def parsed(self, sv: SchemaVersion) -> ParsedSchema:
        p = self._parsed.get(sv.schema_id)
        if p is None:
            p = self._parse(sv.schema_type, sv.schema, sv.references)
            self._parsed[sv.schema_id] = p
        return p

    def _parse(self, schema_type: str, text: Any, refs: Any) -> ParsedSchema:
        if not isinstance(text, str):
            raise RegistryError(E.INVALID_SCHEMA, "Invalid schema: the request has no \"schema\" string")
        resolved: list[Reference] = []
        self._resolve_references(refs or (), resolved, set())
        try:
            return parse_schema(schema_type, text, resolved)
        except SchemaParseError as exc:
            raise E.invalid_schema(f"{schema_type} {exc}") from None

    def _request_schema(self, body: Any) -> tuple[ParsedSchema, str, list[dict[str, Any]]]:
        if not isinstance(body, dict):
            raise RegistryError(E.INVALID_SCHEMA, "Invalid schema: the request body is not a JSON object")
        schema_type = body.get("schemaType") or "AVRO"
        refs = body.get("references") or []
        if not isinstance(schema_type, str) or not isinstance(refs, list):
            raise RegistryError(E.INVALID_SCHEMA, "Invalid schema: bad schemaType or references")
        parsed = self._parse(schema_type.upper(), body.get("schema"), refs)
        refs_json = [{"name": r["name"], "subject": r["subject"], "version": self.version(
            r["subject"], str(r.get("version", -1)), deleted=True).version} for r in refs]
        return parsed, schema_type.upper(), refs_json

    @staticmethod
    def _identity(parsed: ParsedSchema, text: str, refs: list[dict[str, Any]] | tuple[Any, ...]) -> tuple[Any, ...]:
        return (parsed.schema_type, text,
                tuple((r["name"], r["subject"], r["version"]) if isinstance(r, dict) else r for r in refs))

    def _same(self, sv: SchemaVersion, parsed: ParsedSchema, normalize: bool) -> bool:
        if sv.schema_type != parsed.schema_type:
            return False
        if sv.schema == parsed.text:
            return True
        return normalize and self.parsed(sv).normalized() == parsed.normalized()

    # ------------------------------------------------------------------ reads
    def lookup(self, subject: str, body: Any, *, normalize: bool, deleted: bool) -> dict[str, Any]:
        versions = self._subject_versions(subject, deleted)
        parsed, _, refs = self._request_schema(body)
        normalize = normalize or self.store.normalize(subject)
        for sv in versions:
            if self._same(sv, parsed, normalize) and sv.references_json() == refs:
                return version_json(sv)
        raise E.schema_not_found()

    def schema_by_id(self, schema_id: int, *, deleted: bool = True) -> SchemaVersion:
        for versions in self.store.subjects.values():
            for sv in versions.values():
                if sv.schema_id == schema_id and (deleted or not sv.deleted):
                    return sv
        raise E.schema_not_found(schema_id)

    def id_versions(self, schema_id: int, *, deleted: bool) -> list[SchemaVersion]:
        self.schema_by_id(schema_id)
        return [sv for s in sorted(self.store.subjects) for sv in self.store.versions(s, deleted=deleted)
                if sv.schema_id == schema_id]

    def config(self, subject: str | None, *, default_to_global: bool) -> dict[str, Any]:
        scope = subject
        if subject is not None and subject not in self.store.config:
            if not default_to_global:
                raise RegistryError(E.SUBJECT_LEVEL_COMPATIBILITY_NOT_CONFIGURED,
                                    f"Subject '{subject}' does not have subject-level compatibility configured")
            scope = None
        out: dict[str, Any] = {"compatibilityLevel": self.store.compatibility(scope)}
        if "normalize" in self.store.config.get(scope, {}):
            out["normalize"] = bool(self.store.config[scope]["normalize"])
        return out

    def mode(self, subject: str | None, *, default_to_global: bool) -> dict[str, Any]:
        if subject is not None and subject not in self.store.mode and not default_to_global:
            raise RegistryError(E.SUBJECT_LEVEL_MODE_NOT_CONFIGURED,
                                f"Subject '{subject}' does not have subject-level mode configured")
        return {"mode": self.store.mode_of(subject)}

    def is_compatible(self, subject: str, version_text: str | None, body: Any, *, verbose: bool) -> dict[str, Any]:
        parsed, _, _ = self._request_schema(body)
        level = self.store.compatibility(subject)
        if version_text is None:
            against = self.store.versions(subject)
        else:
            against = [self.version(subject, version_text)]
            level = level.removesuffix("_TRANSITIVE")
        messages = check(level, parsed, [(sv.version, self.parsed(sv)) for sv in against])
        out: dict[str, Any] = {"is_compatible": not messages}
        if verbose:
            out["messages"] = messages
        return out

    # ------------------------------------------------------------------ writes
    def _writable(self, subject: str | None) -> str:
        mode = self.store.mode_of(subject)
        if mode in ("READONLY", "READONLY_OVERRIDE"):
            raise RegistryError(E.OPERATION_NOT_PERMITTED, f"Subject {subject or '(global)'} is in read-only mode")
        return mode

    def register(self, subject: str, body: Any, *, normalize: bool) -> Write:
        mode = self._writable(subject)
        parsed, schema_type, refs = self._request_schema(body)
        normalize = normalize or self.store.normalize(subject)
        text = parsed.normalized() if normalize else parsed.text
        want_id, want_version = body.get("id"), body.get("version")
        if (want_id is not None or want_version is not None) and mode != "IMPORT":
            raise RegistryError(E.OPERATION_NOT_PERMITTED,
                                "Subject is not in import mode: a schema id or version cannot be given")
        live = self.store.versions(subject)
        for sv in live:
            if self._same(sv, parsed, normalize) and sv.references_json() == refs:
                if want_id is not None and want_id != sv.schema_id:
                    break  # IMPORT of the same text under another id: Confluent allows it as a new version
                return Write([], {"id": sv.schema_id})
        if mode != "IMPORT":
            level = self.store.compatibility(subject)
            messages = check(level, parsed, [(sv.version, self.parsed(sv)) for sv in live])
            if messages:
                raise RegistryError(E.INCOMPATIBLE_SCHEMA, "Schema being registered is incompatible with an earlier "
                                    f"schema for subject \"{subject}\", details: [{', '.join(messages)}]")
        schema_id = self._id_for(parsed, text, refs, want_id)
        every = self.store.versions(subject, deleted=True)
        version = want_version if isinstance(want_version, int) else (every[-1].version + 1 if every else 1)
        if not 1 <= version <= MAX_VERSION or any(sv.version == version for sv in every):
            raise RegistryError(E.INVALID_VERSION if not 1 <= version <= MAX_VERSION else E.OPERATION_NOT_PERMITTED,
                                f"Version {version} of subject {subject} cannot be used")
        value = records.schema_value(subject=subject, version=version, schema_id=schema_id, schema=text,
                                     schema_type=schema_type, references=refs, deleted=False)
        return Write([(records.schema_key(subject, version), value)], {"id": schema_id})

    def _id_for(self, parsed: ParsedSchema, text: str, refs: list[dict[str, Any]], want_id: Any) -> int:
        """The id of this schema: the one it already has under any subject, else a new one (ids are never
        reused: a new one is above every id the topic has held)."""
        mine = self._identity(parsed, text, refs)
        for sv in self.store.schemas.values():
            if self._identity(self.parsed(sv), sv.schema, sv.references) == mine and want_id in (None, sv.schema_id):
                return sv.schema_id
        if want_id is None:
            return self.store.max_id + 1
        if not isinstance(want_id, int) or want_id < 1:
            raise RegistryError(E.INVALID_SCHEMA, f"Invalid schema id {want_id}")
        if want_id in self.store.schemas:
            raise RegistryError(E.OPERATION_NOT_PERMITTED, f"Overwrite new schema with id {want_id} is not permitted.")
        return int(want_id)

    def delete_version(self, subject: str, version_text: str, *, permanent: bool) -> Write:
        self._writable(subject)
        sv = self.version(subject, version_text, deleted=permanent)
        if sv.deleted is False and permanent:
            raise RegistryError(E.SCHEMA_VERSION_NOT_SOFT_DELETED, f"Subject '{subject}' Version {sv.version} was not "
                                "deleted first before being permanently deleted")
        if not permanent:
            self._not_referenced(sv)
        return Write([self._deleted_record(sv, permanent)], sv.version)

    def delete_subject(self, subject: str, *, permanent: bool) -> Write:
        self._writable(subject)
        every = self._subject_versions(subject, deleted=True)
        live = [sv for sv in every if not sv.deleted]
        if permanent and live:
            raise RegistryError(E.SUBJECT_NOT_SOFT_DELETED,
                                f"Subject '{subject}' was not deleted first before being permanently deleted")
        if not permanent and not live:
            raise RegistryError(E.SUBJECT_SOFT_DELETED,
                                f"Subject '{subject}' was soft deleted. Set permanent=true to delete permanently")
        targets = every if permanent else live
        for sv in targets:
            self._not_referenced(sv)
        out = [self._deleted_record(sv, permanent) for sv in targets]
        if permanent:  # the subject's own settings go with it, as Confluent's do
            out += [(k, None) for k, present in ((records.config_key(subject), subject in self.store.config),
                                                 (records.mode_key(subject), subject in self.store.mode)) if present]
        return Write(out, [sv.version for sv in targets])

    def _not_referenced(self, sv: SchemaVersion) -> None:
        if self.store.referenced_by(sv.subject, sv.version):
            raise RegistryError(E.REFERENCE_EXISTS, f"One or more references exist to the schema "
                                f"{{subject={sv.subject},version={sv.version}}}")

    @staticmethod
    def _deleted_record(sv: SchemaVersion, permanent: bool) -> tuple[bytes, bytes | None]:
        key = records.schema_key(sv.subject, sv.version)
        if permanent:
            return key, None
        return key, records.schema_value(subject=sv.subject, version=sv.version, schema_id=sv.schema_id,
                                         schema=sv.schema, schema_type=sv.schema_type,
                                         references=sv.references_json(), deleted=True)

    def set_config(self, subject: str | None, body: Any) -> Write:
        level = body.get("compatibility", body.get("compatibilityLevel")) if isinstance(body, dict) else None
        if not isinstance(level, str) or level.upper() not in LEVELS:
            raise RegistryError(E.INVALID_COMPATIBILITY_LEVEL, "Invalid compatibility level. Valid values are none, "
                                "backward, forward, full, backward_transitive, forward_transitive, and full_transitive")
        value: dict[str, Any] = {"compatibilityLevel": level.upper()}
        result: dict[str, Any] = {"compatibility": level.upper()}
        if isinstance(body.get("normalize"), bool):
            value["normalize"] = result["normalize"] = body["normalize"]
        return Write([(records.config_key(subject), records.encode_value(value))], result)

    def delete_config(self, subject: str | None) -> Write:
        if subject is not None and not self.store.versions(subject, deleted=True) and subject not in self.store.config:
            raise E.subject_not_found(subject)
        previous = self.config(subject, default_to_global=True)
        return Write([(records.config_key(subject), None)], previous)

    def set_mode(self, subject: str | None, body: Any, *, force: bool) -> Write:
        mode = body.get("mode") if isinstance(body, dict) else None
        if not isinstance(mode, str) or mode.upper() not in MODES:
            raise RegistryError(E.INVALID_MODE, "Invalid mode. Valid values are READWRITE, READONLY, "
                                "READONLY_OVERRIDE and IMPORT.")
        mode = mode.upper()
        if mode == "IMPORT" and not force:
            has = self.store.versions(subject, deleted=True) if subject is not None else self.store.subject_names()
            if has:
                raise RegistryError(E.OPERATION_NOT_PERMITTED, "Cannot import since found existing subjects")
        return Write([(records.mode_key(subject), records.encode_value({"mode": mode}))], {"mode": mode})

    def delete_mode(self, subject: str | None) -> Write:
        previous = self.mode(subject, default_to_global=True)
        return Write([(records.mode_key(subject), None)], previous)
