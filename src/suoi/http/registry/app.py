"""Confluent Schema Registry's REST API v1 as an aiohttp app.

Reads answer from this registry's replayed store. Writes run on the primary; any other registry
forwards the request unchanged (method, path, query, body) to the primary's URL and relays its
answer, as Confluent's followers do. A forwarded request carries ``X-Suoi-Forwarded`` so it is never
forwarded twice (a registry that gets one while not primary answers 50003: elections are moving).

Bodies: JSON, ``application/vnd.schemaregistry.v1+json`` both ways (``application/json`` and
``application/vnd.schemaregistry+json`` accepted too); at most ``MAX_BODY`` bytes (413).
Errors: ``{"error_code": ..., "message": ...}`` with Confluent's codes (``errors``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from suoi.http.registry import errors as E
from suoi.http.registry.core import RegistryCore, Write, schema_json, version_json
from suoi.http.registry.errors import RegistryError
from suoi.http.registry.formats import SCHEMA_TYPES
from suoi.http.registry.service import NotPrimary, RegistryService
from suoi.http.registry.store import SchemaVersion

__all__ = ["CONTENT_TYPE", "MAX_BODY", "build_app"]

log = logging.getLogger("suoi.http.registry")

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
_ACCEPTED_BODY_TYPES = {CONTENT_TYPE, "application/vnd.schemaregistry+json", "application/json",
                        "application/octet-stream"}
MAX_BODY = 4 * 1024 * 1024
_FORWARDED = "X-Suoi-Forwarded"
_WRITE_ATTEMPTS = 3  # a write that finds this registry not the primary, then the primary again (a flapping election)
_SERVICE = web.AppKey("service", RegistryService)
_SESSION = web.AppKey("session", aiohttp.ClientSession)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def reply(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(body).encode(), status=status, content_type=CONTENT_TYPE)


def error_reply(err: RegistryError) -> web.Response:
    return reply(err.body(), err.http_status)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure as Confluent's JSON error body; bad input is one log line, never a traceback."""
    try:
        return await handler(request)
    except RegistryError as err:
        if err.http_status >= 500:
            log.warning("schema registry: %s %s: %s", request.method, request.path, err.message)
        return error_reply(err)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_reply(RegistryError(exc.status, f"HTTP {exc.status} {exc.reason}"))
    except Exception:  # a bug of ours, not bad input: logged with its traceback, answered as Confluent's 50001
        log.exception("schema registry: %s %s failed", request.method, request.path)
        return error_reply(RegistryError(E.STORE_ERROR, "Error in the schema registry"))


def _flag(request: web.Request, name: str, default: bool = False) -> bool:
    value = request.query.get(name)
    return default if value is None else value.lower() == "true"


async def _body(request: web.Request) -> Any:
    if request.content_type not in _ACCEPTED_BODY_TYPES:
        raise RegistryError(415, f"HTTP 415 Unsupported Media Type: {request.content_type}")
    raw = await request.read()  # aiohttp raises 413 past client_max_size
    try:
        return json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError) as exc:
        raise RegistryError(400, f"Unrecognized JSON body: {exc}") from None


def _id(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise E.schema_not_found(text) from None


class Routes:
    """One method per endpoint; ``build_app`` wires them."""

    def __init__(self, service: RegistryService) -> None:
        self.service = service

    @property
    def core(self) -> RegistryCore:
        return self.service.core

    def _text(self, request: web.Request, sv: SchemaVersion) -> str:
        """The schema as asked: ``format=serialized`` turns Protobuf text into base64 descriptors (what
        confluent-kafka's Protobuf clients ask for); otherwise as registered."""
        if request.query.get("format") == "serialized" and sv.schema_type == "PROTOBUF":
            return self.core.parsed(sv).serialized()  # type: ignore[attr-defined, no-any-return]
        return sv.schema

    def _json(self, request: web.Request, sv: SchemaVersion, *, with_version: bool) -> dict[str, Any]:
        out = version_json(sv) if with_version else schema_json(sv)
        out["schema"] = self._text(request, sv)
        return out

    async def _ready(self) -> None:
        await self.service.wait_ready(30.0)

    async def _write(self, request: web.Request, plan: Callable[[RegistryCore], Write]) -> web.Response:
        await self._ready()
        for _ in range(_WRITE_ATTEMPTS):
            try:
                return reply(await self.service.write(plan))
            except NotPrimary:
                url = await self.service.primary_url(10.0)
            if url != self.service.election.my_url:
                return await self._forward(request, url)
            # this registry became the primary while it looked for one: the write is its own
        raise RegistryError(E.FORWARDING_ERROR, "Error while forwarding the request: the primary keeps changing")

    async def _forward(self, request: web.Request, url: str) -> web.Response:
        if request.headers.get(_FORWARDED):
            raise RegistryError(E.FORWARDING_ERROR, "Error while forwarding the request: this registry is not the primary")
        session = request.app[_SESSION]
        headers = {"Content-Type": request.headers.get("Content-Type", CONTENT_TYPE), _FORWARDED: "1"}
        try:
            async with session.request(request.method, url.rstrip("/") + request.rel_url.path_qs,
                                       data=await request.read(), headers=headers,
                                       timeout=aiohttp.ClientTimeout(total=self.service.write_timeout + 5)) as resp:
                answer = web.Response(body=await resp.read(), status=resp.status, content_type=CONTENT_TYPE)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RegistryError(E.FORWARDING_ERROR, f"Error while forwarding the request to the primary {url}: "
                                f"{exc or type(exc).__name__}") from None
        if answer.status == 200:  # read your writes: answer once our own replay has the primary's write
            await self.service.read_to_end()
        return answer

    # ------------------------------------------------------------------ /
    async def root(self, request: web.Request) -> web.Response:
        return reply({})

    async def schema_types(self, request: web.Request) -> web.Response:
        return reply(list(SCHEMA_TYPES))

    # ------------------------------------------------------------------ /subjects
    async def subjects(self, request: web.Request) -> web.Response:
        await self._ready()
        prefix = request.query.get("subjectPrefix", "")
        names = self.core.store.subject_names(deleted=_flag(request, "deleted"))
        return reply([s for s in names if s.startswith(prefix)])

    async def versions(self, request: web.Request) -> web.Response:
        await self._ready()
        subject = request.match_info["subject"]
        versions = self.core.store.versions(subject, deleted=_flag(request, "deleted"))
        if not versions:
            raise E.subject_not_found(subject)
        return reply([sv.version for sv in versions])

    async def get_version(self, request: web.Request) -> web.Response:
        await self._ready()
        sv = self.core.version(request.match_info["subject"], request.match_info["version"],
                               deleted=_flag(request, "deleted"))
        return reply(self._json(request, sv, with_version=True))

    async def get_version_schema(self, request: web.Request) -> web.Response:
        await self._ready()
        sv = self.core.version(request.match_info["subject"], request.match_info["version"],
                               deleted=_flag(request, "deleted"))
        return web.Response(body=self._text(request, sv).encode(), content_type=CONTENT_TYPE)

    async def referenced_by(self, request: web.Request) -> web.Response:
        await self._ready()
        sv = self.core.version(request.match_info["subject"], request.match_info["version"], deleted=True)
        return reply(self.core.store.referenced_by(sv.subject, sv.version))

    async def register(self, request: web.Request) -> web.Response:
        subject, body = request.match_info["subject"], await _body(request)
        normalize = _flag(request, "normalize")
        return await self._write(request, lambda core: core.register(subject, body, normalize=normalize))

    async def lookup(self, request: web.Request) -> web.Response:
        body = await _body(request)
        await self._ready()
        return reply(self.core.lookup(request.match_info["subject"], body, normalize=_flag(request, "normalize"),
                                      deleted=_flag(request, "deleted")))

    async def delete_subject(self, request: web.Request) -> web.Response:
        subject, permanent = request.match_info["subject"], _flag(request, "permanent")
        return await self._write(request, lambda core: core.delete_subject(subject, permanent=permanent))

    async def delete_version(self, request: web.Request) -> web.Response:
        subject, version = request.match_info["subject"], request.match_info["version"]
        permanent = _flag(request, "permanent")
        return await self._write(request, lambda core: core.delete_version(subject, version, permanent=permanent))

    # ------------------------------------------------------------------ /schemas
    async def schemas(self, request: web.Request) -> web.Response:
        await self._ready()
        prefix, deleted = request.query.get("subjectPrefix", ""), _flag(request, "deleted")
        store = self.core.store
        out = []
        for subject in store.subject_names(deleted=deleted):
            if subject.startswith(prefix):
                versions = store.versions(subject, deleted=deleted)
                out += [version_json(sv) for sv in (versions[-1:] if _flag(request, "latestOnly") else versions)]
        return reply(out)

    async def schema_by_id(self, request: web.Request) -> web.Response:
        await self._ready()
        return reply(self._json(request, self.core.schema_by_id(_id(request.match_info["id"])), with_version=False))

    async def schema_by_id_text(self, request: web.Request) -> web.Response:
        await self._ready()
        sv = self.core.schema_by_id(_id(request.match_info["id"]))
        return web.Response(body=self._text(request, sv).encode(), content_type=CONTENT_TYPE)

    async def schema_id_versions(self, request: web.Request) -> web.Response:
        await self._ready()
        svs = self.core.id_versions(_id(request.match_info["id"]), deleted=_flag(request, "deleted"))
        return reply([{"subject": sv.subject, "version": sv.version} for sv in svs])

    async def schema_id_subjects(self, request: web.Request) -> web.Response:
        await self._ready()
        svs = self.core.id_versions(_id(request.match_info["id"]), deleted=_flag(request, "deleted"))
        return reply(sorted({sv.subject for sv in svs}))

    # ------------------------------------------------------------------ /config, /mode, /compatibility
    async def get_config(self, request: web.Request) -> web.Response:
        await self._ready()
        return reply(self.core.config(request.match_info.get("subject"),
                                      default_to_global=_flag(request, "defaultToGlobal")))

    async def put_config(self, request: web.Request) -> web.Response:
        subject, body = request.match_info.get("subject"), await _body(request)
        return await self._write(request, lambda core: core.set_config(subject, body))

    async def delete_config(self, request: web.Request) -> web.Response:
        subject = request.match_info.get("subject")
        return await self._write(request, lambda core: core.delete_config(subject))

    async def get_mode(self, request: web.Request) -> web.Response:
        await self._ready()
        return reply(self.core.mode(request.match_info.get("subject"),
                                    default_to_global=_flag(request, "defaultToGlobal")))

    async def put_mode(self, request: web.Request) -> web.Response:
        subject, body, force = request.match_info.get("subject"), await _body(request), _flag(request, "force")
        return await self._write(request, lambda core: core.set_mode(subject, body, force=force))

    async def delete_mode(self, request: web.Request) -> web.Response:
        subject = request.match_info.get("subject")
        return await self._write(request, lambda core: core.delete_mode(subject))

    async def compatibility(self, request: web.Request) -> web.Response:
        body = await _body(request)
        await self._ready()
        return reply(self.core.is_compatible(request.match_info["subject"], request.match_info.get("version"), body,
                                             verbose=_flag(request, "verbose")))


def build_app(service: RegistryService) -> web.Application:
    app = web.Application(middlewares=[_errors], client_max_size=MAX_BODY)
    app[_SERVICE] = service
    r = Routes(service)
    s, v = "/subjects/{subject}", "/subjects/{subject}/versions/{version}"
    app.router.add_routes([
        web.get("/", r.root),
        web.get("/schemas/types", r.schema_types),
        web.get("/schemas", r.schemas),
        web.get("/schemas/ids/{id}", r.schema_by_id),
        web.get("/schemas/ids/{id}/schema", r.schema_by_id_text),
        web.get("/schemas/ids/{id}/versions", r.schema_id_versions),
        web.get("/schemas/ids/{id}/subjects", r.schema_id_subjects),
        web.get("/subjects", r.subjects),
        web.post(s, r.lookup),
        web.delete(s, r.delete_subject),
        web.get(f"{s}/versions", r.versions),
        web.post(f"{s}/versions", r.register),
        web.get(v, r.get_version),
        web.delete(v, r.delete_version),
        web.get(f"{v}/schema", r.get_version_schema),
        web.get(f"{v}/referencedby", r.referenced_by),
        web.post("/compatibility/subjects/{subject}/versions", r.compatibility),
        web.post("/compatibility/subjects/{subject}/versions/{version}", r.compatibility),
        web.get("/config", r.get_config), web.put("/config", r.put_config), web.delete("/config", r.delete_config),
        web.get("/config/{subject}", r.get_config), web.put("/config/{subject}", r.put_config),
        web.delete("/config/{subject}", r.delete_config),
        web.get("/mode", r.get_mode), web.put("/mode", r.put_mode), web.delete("/mode", r.delete_mode),
        web.get("/mode/{subject}", r.get_mode), web.put("/mode/{subject}", r.put_mode),
        web.delete("/mode/{subject}", r.delete_mode),
    ])

    async def session_ctx(app: web.Application) -> Any:
        app[_SESSION] = aiohttp.ClientSession()
        yield
        await app[_SESSION].close()

    app.cleanup_ctx.append(session_ctx)
    return app
