"""`suoi` command line: `suoi broker` runs a broker; the operator tools are subcommands named
after Kafka's scripts (kafka-topics.sh -> `suoi topics`), one module each in this package."""

from __future__ import annotations

import argparse
import sys

from suoi import __version__

#: The subcommands' modules, in the order `suoi --help` lists them: Kafka's scripts for topics,
#: clients and groups; the quorum, API versions, transactions and performance tests; offline
#: tools that read or write files on disk (no broker); kafka-features.sh, kafka-log-dirs.sh.
COMMAND_MODULES = (
    "broker", "topics", "console_producer", "console_consumer", "consumer_groups", "configs", "delete_records",
    "get_offsets", "leader_election", "reassign_partitions", "cluster",
    "metadata_quorum", "broker_api_versions", "transactions", "producer_perf_test", "consumer_perf_test",
    "dump_log", "storage",
    "features", "log_dirs", "schema_registry", "schemas", "metrics", "console", "acls",
)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `suoi` parser with every subcommand, or with only `command`'s (a process runs one
    command: importing the other tools' modules cost ~70 ms of every start, `suoi broker`'s too).
    The parser of one command parses and reports errors exactly as the full one does for it."""
    import importlib

    from suoi.cli.common import ToolArgumentParser

    parser = ToolArgumentParser(
        prog="suoi",
        description="suoi: a Kafka-compatible streaming platform. Real Kafka clients work unchanged. "
        "The operator tools take the flags of Kafka's own (kafka-topics.sh -> suoi topics, ...).",
        epilog="Run 'suoi COMMAND --help' for a command's flags. Errors are one line on stderr, exit code 1.",
    )
    parser.add_argument("--version", action="version", version=f"suoi {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = (command.replace("-", "_"),) if command is not None else COMMAND_MODULES
    for name in modules:
        importlib.import_module(f"suoi.cli.{name}").add_parser(sub)
    return parser


def _command_parser(argv: list[str]) -> argparse.ArgumentParser:
    """The parser for this command line: only its command's when the first word names one."""
    first = argv[0] if argv else ""
    if first.replace("-", "_") in COMMAND_MODULES:
        parser = build_parser(first)
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        if first in sub.choices:
            return parser
    return build_parser()


def console_main() -> int:
    """`python -m suoi` and the `suoi` script: a process that runs one command, with hypothesis
    hidden. When hypothesis is installed (every test environment), kio's phantom types import it
    and register a test strategy per kio type, building hypothesis's unicode tables in a
    `.hypothesis` dir of the cwd: 0.2 s, and 2-3 s in a fresh cwd (every test's temp dir), of
    each broker and tool start, for strategies no such process uses. `sys.modules[name] = None`
    makes kio's `import hypothesis.strategies` raise ImportError, which kio takes as "not
    installed". A test process calling `main()` itself keeps kio's strategies."""
    hidden = "hypothesis" not in sys.modules
    if hidden:
        sys.modules["hypothesis"] = None  # type: ignore[assignment]
    try:
        return main()
    finally:
        if hidden and sys.modules.get("hypothesis", 0) is None:
            del sys.modules["hypothesis"]


def main(argv: list[str] | None = None) -> int:
    parser = _command_parser(sys.argv[1:] if argv is None else list(argv))
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
    sys.exit(console_main())
