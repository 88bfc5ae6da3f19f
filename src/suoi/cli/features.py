"""`suoi features`: kafka-features.sh -- describe, upgrade, downgrade or disable finalized features.

    suoi features --bootstrap-server HOST:PORT describe
    suoi features --bootstrap-server HOST:PORT upgrade --feature transaction.version=1 [--dry-run]
    suoi features --bootstrap-server HOST:PORT upgrade --metadata 4.0-IV3
    suoi features --bootstrap-server HOST:PORT downgrade --feature transaction.version=0 [--unsafe]
    suoi features --bootstrap-server HOST:PORT disable --feature transaction.version

`--feature F=V` is Kafka's flag (repeatable); `--feature F --version V` is accepted too. The
levels are read from ApiVersions (v4: every supported feature, KIP-584) and changed with
UpdateFeatures, which any broker forwards to the active controller (`admin_requests`). Output
lines are Kafka's; a failed update makes the exit code 1.
"""

from __future__ import annotations

import argparse
from typing import Any

from suoi.cli.admin_requests import error_name, send
from suoi.cli.common import CliError, add_common_args, guarded, print_json
from suoi.controller.features import METADATA_VERSION, metadata_version_name

_UPGRADE, _SAFE_DOWNGRADE, _UNSAFE_DOWNGRADE = 1, 2, 3


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "features", help="describe and change finalized feature levels (kafka-features)",
        description="Describe the features the cluster supports and their finalized levels, or upgrade, "
        "downgrade or disable them. Same sub-commands and flags as Kafka's kafka-features.sh.",
        epilog="examples: suoi features --bootstrap-server localhost:9092 describe\n"
        "  suoi features --bootstrap-server localhost:9092 upgrade --feature transaction.version=1",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_args(p)
    actions = p.add_subparsers(dest="action", metavar="describe|upgrade|downgrade|disable")
    described = actions.add_parser("describe", help="supported ranges and finalized levels of every feature")
    described.add_argument("--output", choices=("text", "json"), default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    for name, text in (("upgrade", "raise finalized levels"), ("downgrade", "lower finalized levels"),
                       ("disable", "set features to level 0")):
        a = actions.add_parser(name, help=text)
        # --output may also follow the sub-command (suoi features ... describe --output json)
        a.add_argument("--output", choices=("text", "json"), default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        a.add_argument("--feature", action="append", default=[], metavar="F=V",
                       help="a feature and its new level, e.g. transaction.version=1 (repeatable)"
                       if name != "disable" else "a feature to disable (repeatable)")
        if name != "disable":
            a.add_argument("--version", type=int, metavar="V", help="the level, with a single --feature F")
            a.add_argument("--metadata", metavar="RELEASE", help="metadata.version by release, e.g. 4.0-IV3 or 4.0")
        if name != "upgrade":
            a.add_argument("--unsafe", action="store_true", help="allow a downgrade that may lose metadata")
        a.add_argument("--dry-run", action="store_true", help="validate only; change nothing")
    p.set_defaults(func=guarded("features")(run))


def _describe(args: argparse.Namespace) -> int:
    from kio.schema.api_versions.v4.request import ApiVersionsRequest

    response = send(args, ApiVersionsRequest(client_software_name="suoi-features",
                                             client_software_version="1"), "features")
    finalized = {f.name: int(f.max_version_level) for f in response.finalized_features}
    epoch = int(response.finalized_features_epoch)
    rows = [{"feature": f.name, "supported_min": int(f.min_version), "supported_max": int(f.max_version),
             "finalized": finalized.get(f.name, 0), "epoch": epoch if epoch >= 0 else None}
            for f in sorted(response.supported_features, key=lambda f: f.name)]
    if args.output == "json":
        print_json({"features": rows})
        return 0
    for r in rows:
        name = metadata_version_name if r["feature"] == METADATA_VERSION else str
        print(f"Feature: {r['feature']}\tSupportedMinVersion: {name(r['supported_min'])}\t"
              f"SupportedMaxVersion: {name(r['supported_max'])}\tFinalizedVersionLevel: {name(r['finalized'])}\t"
              f"Epoch: {r['epoch'] if r['epoch'] is not None else '-'}")
    return 0


def _metadata_level(release: str) -> int:
    """4.0-IV3 -> 25; 4.0 -> the last level of release 4.0."""
    from suoi.controller.features import SUPPORTED

    low, high = SUPPORTED[METADATA_VERSION]
    matches = [lvl for lvl in range(low, high + 1)
               if metadata_version_name(lvl) == release or metadata_version_name(lvl).split("-")[0] == release]
    if not matches:
        raise CliError(f"Unknown metadata.version {release}. Supported metadata.version are "
                       f"{metadata_version_name(low)} to {metadata_version_name(high)}")
    return max(matches)


def _updates(args: argparse.Namespace) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in args.feature:
        name, sep, value = item.partition("=")
        if args.action == "disable":
            if sep:
                raise CliError(f"--feature for disable takes a feature name only, got {item!r}")
            out[name] = 0
            continue
        if not sep:
            if getattr(args, "version", None) is None or len(args.feature) != 1:
                raise CliError(f"--feature expects FEATURE=LEVEL (or one --feature with --version), got {item!r}")
            value = str(args.version)
        try:
            out[name.strip()] = int(value)
        except ValueError:
            raise CliError(f"--feature {item!r}: the level must be an integer") from None
    if getattr(args, "metadata", None):
        out[METADATA_VERSION] = _metadata_level(args.metadata)
    if not out:
        raise CliError("You must specify at least one feature to " + args.action)
    return out


def _change(args: argparse.Namespace) -> int:
    from kio.schema.update_features.v1.request import FeatureUpdateKey, UpdateFeaturesRequest
    from kio.static.primitive import i8, i16

    updates = _updates(args)
    kind = _UPGRADE if args.action == "upgrade" else _UNSAFE_DOWNGRADE if args.unsafe else _SAFE_DOWNGRADE
    request = UpdateFeaturesRequest(feature_updates=tuple(
        FeatureUpdateKey(feature=name, max_version_level=i16(level), upgrade_type=i8(kind))
        for name, level in updates.items()), validate_only=args.dry_run)
    response = send(args, request, "features")
    errors = {r.feature: (error_name(r.error_code), r.error_message) for r in response.results
              if int(r.error_code) != 0}
    if int(response.error_code) != 0 and not errors:
        errors = {name: (error_name(response.error_code), response.error_message) for name in updates}
    verb = {"upgrade": "upgraded", "downgrade": "downgraded", "disable": "disabled"}[args.action]
    rows = [{"feature": n, "level": lvl, "error": errors.get(n, (None, None))[0],
             "message": errors.get(n, (None, None))[1]} for n, lvl in updates.items()]
    if args.output == "json":
        print_json({"action": args.action, "dry_run": args.dry_run, "features": rows})
    else:
        for r in rows:
            level = r["level"]
            if r["error"] is not None:
                print(f"Could not {args.action} {r['feature']} to {level}. {r['message'] or r['error']}")
            elif args.action == "disable":
                print(f"{r['feature']} {'can be' if args.dry_run else 'was'} disabled.")
            else:
                print(f"{r['feature']} {'can be' if args.dry_run else 'was'} {verb} to {level}.")
    failed = sum(1 for r in rows if r["error"] is not None)
    if failed:
        raise CliError(f"{failed} out of {len(rows)} operation(s) failed.")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.action is None:
        raise CliError("Missing the command: describe, upgrade, downgrade or disable")
    return _describe(args) if args.action == "describe" else _change(args)
