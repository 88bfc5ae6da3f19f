"""`suoi schemas`: a schema registry's REST API (Confluent's, so suoi's, Confluent's or Karapace's) from the
shell: list subjects, get / register / delete schemas, check compatibility, read or set the compatibility
level. Errors are the registry's own message and code, on one line (exit 1)."""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from suoi.cli.common import CliError, guarded, print_json

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "schemas", help="list, get, register, delete and check schemas in a schema registry",
        description="Talk to a schema registry (Confluent's REST API v1): suoi's, Confluent's or Karapace's.",
        epilog="example: suoi schemas register --subject orders-value --schema-file order.avsc",
    )
    p.add_argument("action", choices=("list", "get", "register", "delete", "check", "config"))
    p.add_argument("--schema-registry", default="http://127.0.0.1:8081", metavar="URL",
                   help="the registry (default http://127.0.0.1:8081)")
    p.add_argument("--subject", help="the subject (e.g. orders-value)")
    p.add_argument("--version", default=None, help="a version number or latest (get, delete, check)")
    p.add_argument("--id", type=int, help="get: a schema id instead of --subject")
    p.add_argument("--schema", help="register/check: the schema text")
    p.add_argument("--schema-file", type=Path, metavar="FILE", help="register/check: a file with the schema")
    p.add_argument("--type", default="AVRO", choices=("AVRO", "JSON", "PROTOBUF"), help="the schema type")
    p.add_argument("--references", metavar="JSON", help='register/check: [{"name": ..., "subject": ..., "version": 1}]')
    p.add_argument("--permanent", action="store_true", help="delete: hard delete (after a soft one)")
    p.add_argument("--deleted", action="store_true", help="list/get: include soft-deleted subjects and versions")
    p.add_argument("--compatibility", help="config: set this level (BACKWARD, FULL_TRANSITIVE, NONE, ...)")
    p.add_argument("--output", choices=("text", "json"), default="text", help="text (default) or json")
    p.set_defaults(func=guarded("schemas")(run))


def call(base: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base.rstrip("/") + path, data=data, method=method,
                                 headers={"Content-Type": CONTENT_TYPE, "Accept": CONTENT_TYPE})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        try:
            detail = json.loads(err.read())
            raise CliError(f"{detail['message']} (error code {detail['error_code']})") from None
        except (ValueError, KeyError, TypeError):
            raise CliError(f"HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError) as err:
        raise CliError(f"cannot reach the schema registry at {base}: {getattr(err, 'reason', err)}") from None


def _need(value: Any, flag: str, action: str) -> Any:
    if value is None:
        raise CliError(f"{action} needs {flag}")
    return value


def _schema_body(args: argparse.Namespace) -> dict[str, Any]:
    if (args.schema is None) == (args.schema_file is None):
        raise CliError(f"{args.action} needs --schema or --schema-file (one of them)")
    try:
        text = args.schema if args.schema is not None else args.schema_file.read_text()
        refs = json.loads(args.references) if args.references else []
    except OSError as exc:
        raise CliError(f"cannot read {args.schema_file}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise CliError(f"--references is not JSON: {exc}") from None
    body: dict[str, Any] = {"schema": text, "schemaType": args.type}
    if refs:
        body["references"] = refs
    return body


def _q(subject: str) -> str:
    return urllib.parse.quote(subject, safe="")


def run(args: argparse.Namespace) -> int:
    url, action = args.schema_registry, args.action
    deleted = "?deleted=true" if args.deleted else ""
    if action == "list":
        out: Any = call(url, "GET", f"/subjects{deleted}")
        text = "\n".join(out)
    elif action == "get" and args.id is not None:
        out = call(url, "GET", f"/schemas/ids/{args.id}")
        text = out["schema"]
    elif action == "get":
        subject = _q(_need(args.subject, "--subject or --id", action))
        out = call(url, "GET", f"/subjects/{subject}/versions/{args.version or 'latest'}{deleted}")
        text = f"subject {out['subject']} version {out['version']} id {out['id']}\n{out['schema']}"
    elif action == "register":
        subject = _q(_need(args.subject, "--subject", action))
        out = call(url, "POST", f"/subjects/{subject}/versions", _schema_body(args))
        text = f"id {out['id']}"
    elif action == "delete":
        subject = _q(_need(args.subject, "--subject", action))
        path = f"/subjects/{subject}" + (f"/versions/{args.version}" if args.version else "")
        out = call(url, "DELETE", path + ("?permanent=true" if args.permanent else ""))
        text = f"deleted version(s) {out}"
    elif action == "check":
        subject = _q(_need(args.subject, "--subject", action))
        path = f"/compatibility/subjects/{subject}/versions" + (f"/{args.version}" if args.version else "")
        out = call(url, "POST", path + "?verbose=true", _schema_body(args))
        text = "compatible" if out["is_compatible"] else "\n".join(["incompatible", *out.get("messages", [])])
    else:  # config
        path = "/config" + (f"/{_q(args.subject)}" if args.subject else "")
        if args.compatibility:
            out = call(url, "PUT", path, {"compatibility": args.compatibility.upper()})
            text = out["compatibility"]
        else:
            out = call(url, "GET", path + ("?defaultToGlobal=true" if args.subject else ""))
            text = out["compatibilityLevel"]
    if args.output == "json":
        print_json(out)
    elif text:
        print(text)
    return 1 if action == "check" and not out["is_compatible"] else 0
