"""`suoi schema-registry`: run a schema registry (Confluent's REST API v1) against any Kafka cluster,
as Karapace runs: its state is the cluster's `_schemas` topic, so several can run side by side
(one is elected primary; the others forward writes to it). Stops on SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "schema-registry", help="run a schema registry (Confluent's REST API) against a Kafka cluster",
        description="Serve Confluent Schema Registry's REST API v1, storing schemas in the cluster's "
        "compacted _schemas topic (Confluent's record layout).",
        epilog="example: suoi schema-registry --bootstrap-server localhost:9092 --listen 127.0.0.1:8081",
    )
    p.add_argument("--bootstrap-server", required=True, metavar="HOST:PORT[,...]",
                   help="REQUIRED: the broker(s) to connect to")
    p.add_argument("--listen", default="http://127.0.0.1:8081", metavar="[http://]HOST:PORT",
                   help="where to serve HTTP (default http://127.0.0.1:8081)")
    p.add_argument("--advertised-url", metavar="URL",
                   help="the URL other registries forward writes to (default: the --listen URL)")
    p.add_argument("--topic", default="_schemas", help="the schemas topic (Confluent's kafkastore.topic)")
    p.add_argument("--group-id", default="schema-registry",
                   help="the group that elects the primary (Confluent's schema.registry.group.id)")
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO (default), WARNING, ERROR")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from suoi.http.registry.node import parse_listener

    try:
        parse_listener(args.listen)
    except ValueError as exc:
        print(f"suoi schema-registry: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_serve(args))
    except OSError as exc:  # the port is in use
        print(f"suoi schema-registry: {exc}", file=sys.stderr)
        return 1


async def _serve(args: argparse.Namespace) -> int:
    from suoi.http.registry.server import SchemaRegistryServer

    server = SchemaRegistryServer(args.bootstrap_server, args.listen, advertised=args.advertised_url,
                                  topic=args.topic, group=args.group_id)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.close()
    return 0
