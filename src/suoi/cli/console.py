"""`suoi console`: the web console (issue 17) for any Kafka-compatible cluster.

    suoi console --bootstrap-server HOST:PORT [--listen 127.0.0.1:8080] [--command-config FILE] [--read-only]
                 [--schema-registry URL]

Serves `suoi.http.console` until Ctrl-C/SIGTERM. It reads the cluster over the Kafka protocol
through suoi's internal client, with the TLS/SASL a --command-config asks for (Kafka's client
properties, as `suoi.security.client.from_client_properties` reads them); a mechanism that
client lacks (GSSAPI, OAUTHBEARER) is refused at start rather than tried.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path
from typing import Any

from suoi.cli.common import CliError, guarded, read_props

TOOL = "console"


def add_parser(sub: Any) -> None:
    p = sub.add_parser(TOOL, help="web console: the cluster's brokers, partitions, topics, groups and messages",
                       description="Serve a web console that draws a live Kafka-compatible cluster.")
    p.add_argument("--bootstrap-server", required=True, metavar="HOST:PORT[,...]", help="the cluster to show")
    p.add_argument("--listen", default="127.0.0.1:8080", metavar="HOST:PORT",
                   help="where the console serves HTTP (default 127.0.0.1:8080; port 0 picks a free one)")
    p.add_argument("--command-config", type=Path, metavar="FILE",
                   help="client properties: security.protocol, ssl.* (librdkafka's or the Java client's PEM/PKCS12 "
                        "truststore and keystore), sasl.mechanism (PLAIN, SCRAM-SHA-256/512), sasl.username/password "
                        "or sasl.jaas.config")
    p.add_argument("--interval", type=float, default=1.0, metavar="SECONDS",
                   help="how often the one shared poll loop reads the cluster while a page is open (default 1)")
    p.add_argument("--schema-registry", metavar="URL",
                   help="decode Avro/JSON Schema values in the message browser through this schema registry")
    p.add_argument("--read-only", action="store_true",
                   help="no writes (create/delete topics, configs, produce, offset resets): the console has no login")
    p.set_defaults(func=guarded(TOOL)(run))


def run(args: argparse.Namespace) -> int:
    from suoi.http.console import Console, parse_listener
    from suoi.http.console.kafka_reads import parse_bootstrap
    from suoi.security.client import from_client_properties
    from suoi.security.sasl import SCRAM_MECHANISMS

    # what Kafka client properties give credentials for (OAUTHBEARER needs a login callback, which
    # client properties do not configure here)
    mechanisms = ("PLAIN", *SCRAM_MECHANISMS)

    try:
        security = from_client_properties(read_props(args.command_config))
    except (ValueError, OSError) as exc:  # never the file's values: they may hold a password
        raise CliError(f"--command-config: {exc}") from None
    if security.sasl is not None and security.sasl.mechanism not in mechanisms:
        raise CliError(f"--command-config: sasl.mechanism={security.sasl.mechanism}: suoi console authenticates "
                       f"with {', '.join(mechanisms)}")
    if not 0.1 <= args.interval <= 60:
        raise CliError("--interval must be between 0.1 and 60 seconds")
    try:
        bootstrap = parse_bootstrap(args.bootstrap_server)
        listen = parse_listener(args.listen)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    asyncio.run(_serve(Console(bootstrap, interval=args.interval, read_only=args.read_only,
                                schema_registry=args.schema_registry, security=security), listen))
    return 0


async def _serve(console: Any, listen: tuple[str, int]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        host, port = await console.start(*listen)
    except OSError as exc:
        await console.stop()
        raise CliError(f"cannot listen on {listen[0]}:{listen[1]}: {exc.strerror or exc}") from None
    print(f"suoi console on http://{host}:{port}/ (Ctrl-C to stop)", flush=True)
    try:
        await stop.wait()
    finally:
        await console.stop()
