"""`suoi storage`: kafka-storage.sh -- format a node's directories for a cluster, offline.

    suoi storage random-uuid
    suoi storage format --cluster-id ID --config FILE [--ignore-formatted] [--standalone]
    suoi storage info --config FILE

`format` stamps every log directory and the metadata log directory with meta.properties
(version=1, cluster.id, node.id, directory.id) after checking the configuration the broker
would load; run it on every node of a cluster with one id from `random-uuid` before their first
start. The work is `suoi.log.meta_properties`, the code the broker runs at start-up (and
`suoi cluster up` formats its nodes through it too).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from suoi.cli.common import CliError, guarded


def add_parser(sub: Any) -> None:
    p = sub.add_parser("storage", help="format log directories, make a cluster id (kafka-storage)",
                       description="Format a KRaft node's storage directories for a cluster, as Kafka's "
                       "kafka-storage.sh does. Works on disk: no broker needed (or running).")
    actions = p.add_subparsers(dest="storage_command", metavar="ACTION")
    uid = actions.add_parser("random-uuid", help="print a new cluster id")
    uid.set_defaults(func=run_random_uuid)
    fmt = actions.add_parser("format", help="stamp the node's directories with a cluster id",
                             epilog="example: suoi storage format --cluster-id $(suoi storage random-uuid) "
                             "--config server.properties")
    fmt.add_argument("--cluster-id", "-t", required=True, metavar="ID", help="REQUIRED: the cluster id "
                     "(from random-uuid; the same on every node)")
    fmt.add_argument("--config", "-c", type=Path, required=True, metavar="FILE",
                     help="REQUIRED: the node's server.properties")
    fmt.add_argument("--ignore-formatted", "-g", action="store_true",
                     help="skip directories already formatted for this cluster instead of failing")
    fmt.add_argument("--standalone", "-s", action="store_true",
                     help="this controller is the whole quorum (its controller.quorum.voters, or its "
                     "one controller.quorum.bootstrap.servers, names only itself)")
    fmt.add_argument("--add-scram", "-S", action="append", default=[], metavar="'MECH=[name=U,password=P]'",
                     help="a SCRAM credential the new cluster starts with (KIP-900), e.g. "
                     "'SCRAM-SHA-512=[name=admin,password=admin-secret]'; repeatable")
    fmt.set_defaults(func=run_format)
    info = actions.add_parser("info", help="show the meta.properties of the node's directories")
    info.add_argument("--config", "-c", type=Path, required=True, metavar="FILE",
                      help="REQUIRED: the node's server.properties")
    info.set_defaults(func=run_info)
    p.set_defaults(func=lambda args: (p.print_help(), 1)[1])


def _layout(path: Path) -> tuple[Any, Any]:
    """The storage layout and KRaft settings of a properties file, validated as the broker does."""
    from suoi.cluster.settings import KRaftSettings, storage_layout
    from suoi.config import load_config, read_properties

    if not path.is_file():
        raise CliError(f"{path} is not a file")
    try:
        config = load_config(read_properties(path), {})
        settings = KRaftSettings.from_config(config)
    except ValueError as exc:
        raise CliError(f"{path}: {exc}") from None
    return storage_layout(config), settings


@guarded("storage")
def run_random_uuid(args: argparse.Namespace) -> int:
    from suoi.log.meta_properties import random_uuid

    print(random_uuid())
    return 0


def format_config(path: Path, cluster_id: str, *, ignore_formatted: bool = False,
                  standalone: bool = False, add_scram: list[str] | None = None) -> list[str]:
    """Format the directories of the node `path` configures (`suoi storage format`, `suoi cluster up`)."""
    from suoi.log.meta_properties import StorageFormatError, format_storage

    layout, settings = _layout(path)
    if standalone and (not settings.is_controller or set(settings.voters) != {layout.node_id}):
        raise CliError("--standalone is for a controller that is the whole quorum; this configuration names "
                       "other voters (or no controller role): format without --standalone")
    scram = _scram_records(add_scram or [], settings)
    try:
        lines = format_storage(layout, cluster_id, ignore_formatted=ignore_formatted)
    except StorageFormatError as exc:
        raise CliError(str(exc)) from None
    if scram:
        from suoi.cluster.scram_bootstrap import write_bootstrap_records

        path = write_bootstrap_records(settings.metadata_dir, scram)
        lines.append(f"Wrote {len(scram)} SCRAM credential(s) for {', '.join(sorted({r.name for r in scram}))} "
                     f"to {path} (added to the metadata log when the cluster first starts).")
    return lines


def _scram_records(items: list[str], settings: Any) -> list[Any]:
    if not items:
        return []
    if settings is None or not settings.is_controller:
        raise CliError("--add-scram is for a KRaft controller's storage (process.roles with controller)")
    from suoi.cluster.scram_bootstrap import parse_add_scram

    try:
        return [parse_add_scram(item) for item in items]
    except ValueError as exc:
        raise CliError(str(exc)) from None


@guarded("storage")
def run_format(args: argparse.Namespace) -> int:
    print("\n".join(format_config(args.config, args.cluster_id, ignore_formatted=args.ignore_formatted,
                                  standalone=args.standalone, add_scram=args.add_scram)))
    return 0


@guarded("storage")
def run_info(args: argparse.Namespace) -> int:
    from suoi.log.meta_properties import read_meta

    layout, _ = _layout(args.config)
    dirs = layout.directories
    print(f"Found log director{'y' if len(dirs) == 1 else 'ies'}:")
    print("".join(f"  {d}\n" for d in dirs))
    problems = []
    metas = {}
    for d in dirs:
        if not d.is_dir():
            problems.append(f"{d} does not exist")
        elif (meta := read_meta(d)) is None:
            problems.append(f"{d} is not formatted.")
        else:
            metas[d] = meta
    for d, meta in metas.items():
        shown = ", ".join(f"{k}={v}" for k, v in sorted(meta.items()))
        print(f"Found metadata: {{{shown}}}" + (f" in {d}" if len(dirs) > 1 else ""))
    if len({m.get("cluster.id") for m in metas.values()}) > 1:
        problems.append("the directories name different cluster ids")
    if problems:
        print("\nFound problem" + ("s" if len(problems) > 1 else "") + ":")
        print("\n".join(f"  {p}" for p in problems))
        return 1
    return 0
