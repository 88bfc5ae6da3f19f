"""`suoi configs --entity-type broker-loggers`: a broker's log levels (KIP-412), as kafka-configs.sh.

librdkafka (behind the other entity types) has no BROKER_LOGGER resource type, so these two
requests, DescribeConfigs and IncrementalAlterConfigs on resource type 8, go straight to the named
broker with suoi's own client (kio schemas, `admin_requests.send`: ``--command-config`` security
applies). The levels are that broker process's only and reset
when it restarts. Output follows Kafka's tool: "Dynamic configs for broker-logger 1 are:" and one
``name=LEVEL sensitive=false synonyms={}`` line per logger.
"""

from __future__ import annotations

import argparse
from typing import Any

from suoi.cli.admin_requests import at, send
from suoi.cli.common import CliError, cluster_metadata, print_json

BROKER_LOGGER = 8
SET, DELETE = 0, 1
_SOURCES = {6: "DYNAMIC_BROKER_LOGGER_CONFIG"}


def _broker(admin: Any, args: argparse.Namespace, name: str) -> argparse.Namespace:
    """``args`` aimed at broker ``name`` (its loggers are its own: no other broker answers for them)."""
    if not name.strip().isdigit():
        raise CliError(f"a broker-loggers entity name is the broker id (a number), got {name!r}")
    broker = cluster_metadata(admin, args.bootstrap_server).brokers.get(int(name))
    if broker is None:
        raise CliError(f"broker {name} is not in the cluster")
    return at(args, str(broker.host), int(broker.port))


def _check(error_code: Any, message: str | None) -> None:
    if int(error_code.value) != 0:
        raise CliError(f"{error_code.name.upper()}: {message or error_code.name}")


def describe(admin: Any, args: argparse.Namespace, names: list[str]) -> int:
    """Every logger's level on each broker of ``names``."""
    from kio.schema.describe_configs.v4.request import DescribeConfigsRequest, DescribeConfigsResource
    from kio.static.primitive import i8

    docs: list[dict[str, Any]] = []
    for name in names:
        request = DescribeConfigsRequest(resources=(DescribeConfigsResource(
            resource_type=i8(BROKER_LOGGER), resource_name=name, configuration_keys=None),),
            include_synonyms=False, include_documentation=False)
        (res,) = send(_broker(admin, args, name), request, "configs").results
        _check(res.error_code, res.error_message)
        docs.append({"entity_type": "broker-loggers", "entity_name": name, "configs": [
            {"name": c.name, "value": c.value, "source": _SOURCES.get(int(c.config_source), "UNKNOWN_CONFIG"),
             "sensitive": bool(c.is_sensitive), "read_only": bool(c.read_only), "synonyms": []}
            for c in res.configs]})
    if args.output == "json":
        print_json({"entities": docs})
        return 0
    for d in docs:
        print(f"{'All' if args.all else 'Dynamic'} configs for broker-logger {d['entity_name']} are:")
        for c in d["configs"]:
            print(f"  {c['name']}={c['value']} sensitive={str(c['sensitive']).lower()} synonyms={{}}")
    return 0


def alter(admin: Any, args: argparse.Namespace, name: str, to_set: dict[str, str], to_delete: list[str]) -> int:
    """SET and DELETE (back to the parent's level) loggers' levels on broker ``name``."""
    from kio.schema.incremental_alter_configs.v1.request import (
        AlterableConfig,
        AlterConfigsResource,
        IncrementalAlterConfigsRequest,
    )
    from kio.static.primitive import i8

    if not to_set and not to_delete:
        raise CliError("--alter needs --add-config, --add-config-file or --delete-config")
    ops = [AlterableConfig(name=k, config_operation=i8(SET), value=v) for k, v in to_set.items()]
    ops += [AlterableConfig(name=k, config_operation=i8(DELETE), value=None) for k in to_delete]
    request = IncrementalAlterConfigsRequest(resources=(AlterConfigsResource(
        resource_type=i8(BROKER_LOGGER), resource_name=name, configs=tuple(ops)),), validate_only=False)
    (res,) = send(_broker(admin, args, name), request, "configs").responses
    _check(res.error_code, res.error_message)
    if args.output == "json":
        print_json({"entity_type": "broker-loggers", "entity_name": name, "set": to_set, "deleted": to_delete})
    else:
        print(f"Completed updating config for broker-logger {name}.")
    return 0
