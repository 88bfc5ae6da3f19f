"""`suoi broker-api-versions` (kafka-broker-api-versions.sh): the API versions every broker of
the cluster advertises, in Kafka's layout (<TAB> is a tab character):

    127.0.0.1:9092 (id: 1 rack: null isFenced: false) -> (
    <TAB>Produce(0): 3 to 13 [usable: 13],
    <TAB>...
    )

The brokers come from a Metadata request to the bootstrap server; each is then asked for
ApiVersions (kio, sent with `suoi.client`). "usable" is the highest version both the broker and
this tool's protocol library (kio) know, as Kafka's client computes it against its own; APIs a
broker does not offer are listed as UNSUPPORTED (Kafka's controller-only APIs excepted).
"""

from __future__ import annotations

import argparse
from typing import Any

from suoi import __version__
from suoi.cli.admin_requests import at, error_name, send
from suoi.cli.common import CliError, add_common_args, guarded, print_json

TOOL = "broker-api-versions"
#: APIs only controllers serve in Kafka 4 (KRaft RPCs, registration, ISR changes, producer id
#: blocks): not listed as UNSUPPORTED when a broker does not advertise them.
CONTROLLER_ONLY_KEYS = frozenset({52, 53, 54, 56, 58, 59, 62, 63, 67, 70, 73, 82})


def add_parser(sub: Any) -> None:
    p = sub.add_parser(TOOL, help="list the API versions every broker supports (kafka-broker-api-versions.sh)",
                       description="This tool helps to retrieve broker version information.")
    add_common_args(p)
    p.set_defaults(func=guarded(TOOL)(run))


def known_apis() -> dict[int, tuple[str, int, int]]:
    """api key -> (Kafka's name, oldest, latest version) as this tool's kio knows them."""
    from kio.schema.index import api_key_map, schema_name_map
    from kio.static.constants import EntityType

    out = {}
    for key, module in api_key_map.items():
        versions = schema_name_map[module]
        latest = max(versions)
        cls = versions[latest][EntityType.request].rsplit(":", 1)[1]
        out[int(key)] = (cls.removesuffix("Request"), min(versions), latest)
    return out


def brokers(args: argparse.Namespace) -> list[dict[str, Any]]:
    from kio.schema.metadata.v12.request import MetadataRequest

    md = send(args, MetadataRequest(topics=(), allow_auto_topic_creation=False,
                                    include_topic_authorized_operations=False), TOOL)
    found = [{"id": int(b.node_id), "host": str(b.host), "port": int(b.port), "rack": b.rack} for b in md.brokers]
    if not found:
        raise CliError(f"{args.bootstrap_server} lists no brokers")
    return sorted(found, key=lambda b: b["id"])


def api_versions(args: argparse.Namespace, broker: dict[str, Any]) -> list[tuple[int, int, int]]:
    from kio.schema.api_versions.v3.request import ApiVersionsRequest

    request = ApiVersionsRequest(client_software_name="suoi-broker-api-versions", client_software_version=__version__)
    response = send(at(args, broker["host"], broker["port"]), request, TOOL)
    if response.error_code.value != 0:
        raise CliError(error_name(response.error_code))
    return sorted((int(k.api_key), int(k.min_version), int(k.max_version)) for k in response.api_keys)


def api_entries(advertised: list[tuple[int, int, int]], known: dict[int, tuple[str, int, int]]) -> list[dict[str, Any]]:
    """Every API the broker advertises, and the ones it lacks, with the highest usable version
    (None: not usable, "too new"/"too old" says why; an unsupported API has no versions)."""
    entries: dict[int, dict[str, Any]] = {}
    for key, lo, hi in advertised:
        name, oldest, latest = known.get(key, (None, 0, -1))
        entry: dict[str, Any] = {"api_key": key, "name": name or "UNKNOWN", "min_version": lo, "max_version": hi,
                                 "usable": None, "unusable": None}
        if name is not None:
            if latest < lo:
                entry["unusable"] = "node too new"
            elif hi < oldest:
                entry["unusable"] = "node too old"
            else:
                entry["usable"] = min(latest, hi)
        entries[key] = entry
    for key, (name, _, _) in known.items():
        if key not in entries and key not in CONTROLLER_ONLY_KEYS:
            entries[key] = {"api_key": key, "name": name, "min_version": None, "max_version": None,
                            "usable": None, "unusable": "UNSUPPORTED"}
    return [entries[k] for k in sorted(entries)]


def entry_text(e: dict[str, Any]) -> str:
    """One API in Kafka's `NodeApiVersions.toString` wording."""
    head = f"{e['name']}({e['api_key']}): "
    if e["min_version"] is None:
        return head + "UNSUPPORTED"
    lo, hi = e["min_version"], e["max_version"]
    text = head + (str(lo) if lo == hi else f"{lo} to {hi}")
    if e["usable"] is not None:
        return text + f" [usable: {e['usable']}]"
    return text + (f" [unusable: {e['unusable']}]" if e["unusable"] else "")


def run(args: argparse.Namespace) -> int:
    known = known_apis()
    report = []
    for b in brokers(args):
        try:
            report.append({**b, "apis": api_entries(api_versions(args, b), known), "error": None})
        except CliError as exc:
            report.append({**b, "apis": [], "error": str(exc)})
    if args.output == "json":
        print_json(report)
        return 0
    for b in report:
        node = f"{b['host']}:{b['port']} (id: {b['id']} rack: {b['rack'] or 'null'} isFenced: false)"
        if b["error"]:
            print(f"{node} -> ERROR: {b['error']}")
        else:
            print(f"{node} -> (\n\t" + ",\n\t".join(entry_text(e) for e in b["apis"]) + "\n)")
    return 0
