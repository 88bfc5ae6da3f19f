"""`suoi` command line: `suoi broker` runs a broker; the operator tools are subcommands named
after Kafka's scripts (kafka-topics.sh -> `suoi topics`), one module each in this package."""

from __future__ import annotations

import argparse
import sys

from suoi import __version__


def build_parser() -> argparse.ArgumentParser:
    from suoi.cli.common import ToolArgumentParser

    parser = ToolArgumentParser(
        prog="suoi",
        description="suoi: a Kafka-compatible streaming platform. Real Kafka clients work unchanged. "
        "The operator tools take the flags of Kafka's own (kafka-topics.sh -> suoi topics, ...).",
        epilog="Run 'suoi COMMAND --help' for a command's flags. Errors are one line on stderr, exit code 1.",
    )
    parser.add_argument("--version", action="version", version=f"suoi {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    from suoi.cli import broker as broker_cmd
    from suoi.cli import (
        cluster,
        configs,
        console_consumer,
        console_producer,
        consumer_groups,
        delete_records,
        get_offsets,
        leader_election,
        reassign_partitions,
        topics,
    )

    broker_cmd.add_parser(sub)
    topics.add_parser(sub)
    console_producer.add_parser(sub)
    console_consumer.add_parser(sub)
    consumer_groups.add_parser(sub)
    configs.add_parser(sub)
    delete_records.add_parser(sub)
    get_offsets.add_parser(sub)
    leader_election.add_parser(sub)
    reassign_partitions.add_parser(sub)
    cluster.add_parser(sub)

    # Kafka's operator scripts for the quorum, API versions, transactions and performance tests.
    from suoi.cli import broker_api_versions, consumer_perf_test, metadata_quorum, producer_perf_test, transactions

    metadata_quorum.add_parser(sub)
    broker_api_versions.add_parser(sub)
    transactions.add_parser(sub)
    producer_perf_test.add_parser(sub)
    consumer_perf_test.add_parser(sub)

    from suoi.cli import dump_log, storage  # offline: read or write files on disk, no broker

    dump_log.add_parser(sub)
    storage.add_parser(sub)

    from suoi.cli import features, log_dirs  # kafka-features.sh, kafka-log-dirs.sh

    features.add_parser(sub)
    log_dirs.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # let the subcommand say it, so the message names the command
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        command = sub.choices.get(getattr(args, "command", None) or "", parser)
        command.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
