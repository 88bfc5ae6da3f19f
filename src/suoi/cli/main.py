"""`suoi` command line: `suoi broker` runs a broker; more tools come as subcommands."""

from __future__ import annotations

import argparse
import sys

from suoi import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="suoi",
        description="suoi: a Kafka-compatible streaming platform. Real Kafka clients work unchanged.",
    )
    parser.add_argument("--version", action="version", version=f"suoi {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    from suoi.cli import broker as broker_cmd

    broker_cmd.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
