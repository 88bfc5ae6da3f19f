"""What every operator tool shares: connection flags, client configs, output, errors.

The tools talk to brokers only through confluent-kafka (AdminClient, Producer, Consumer).
Failures are reported as ONE line on stderr, `suoi <tool>: error: <what went wrong>`, and
exit code 1 -- also for bad flags, where argparse would exit 2 (Kafka's tools exit 1, and
scripts then need to check one code only). Set SUOI_DEBUG=1 to get tracebacks and
librdkafka's own log lines.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from suoi.cli.errors import CliError  # the tools import it from here (it lives below client_props)

T = TypeVar("T")

#: How long a tool waits for the broker to answer before giving up (seconds).
TIMEOUT_S = 10.0
#: How long the first contact may take before "cannot reach" (seconds).
CONNECT_TIMEOUT_S = 5.0
#: Pause between two attempts of an operation that failed with a retriable error (seconds).
RETRY_BACKOFF_S = 0.1
#: Errors a tool retries within its timeout: the broker asked does not know (yet) what another
#: one already committed, or a leader or the controller is moving. Kafka's clients retry them too.
RETRIABLE_ERRORS = frozenset({
    "UNKNOWN_TOPIC_OR_PART", "LEADER_NOT_AVAILABLE", "NOT_LEADER_FOR_PARTITION", "NOT_LEADER_OR_FOLLOWER",
    "NOT_CONTROLLER", "REQUEST_TIMED_OUT", "COORDINATOR_NOT_AVAILABLE", "COORDINATOR_LOAD_IN_PROGRESS",
    "NOT_COORDINATOR", "BROKER_NOT_AVAILABLE", "_TRANSPORT", "_ALL_BROKERS_DOWN",
})


class ToolArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 1."""

    def error(self, message: str) -> NoReturn:
        self.exit(1, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def debug() -> bool:
    return os.environ.get("SUOI_DEBUG", "") not in ("", "0")


def add_common_args(p: argparse.ArgumentParser, *, command_config: bool = True, output: bool = True) -> None:
    p.add_argument("--bootstrap-server", required=True, metavar="HOST:PORT[,...]",
                   help="REQUIRED: the broker(s) to connect to")
    if command_config:
        p.add_argument("--command-config", type=Path, metavar="FILE",
                       help="properties file with client configs (librdkafka's names, or Kafka's Java ones: "
                       "sasl.jaas.config, ssl.truststore.*)")
    if output:
        p.add_argument("--output", choices=("text", "json"), default="text",
                       help="text (Kafka's layout, the default) or json for scripts")


def guarded(tool: str) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    """Run a tool's `run(args)`, turning every failure into one line and exit code 1."""

    def wrap(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        @functools.wraps(fn)
        def run(args: argparse.Namespace) -> int:
            try:
                return int(fn(args) or 0)
            except KeyboardInterrupt:
                return 130
            except BrokenPipeError:
                _silence_stdout()
                return 0
            except Exception as exc:  # every failure: one readable line
                if debug():
                    raise
                print(f"suoi {tool}: error: {describe_error(exc)}", file=sys.stderr)
                return 1

        return run

    return wrap


def _silence_stdout() -> None:
    """After EPIPE (`... | head`), keep Python from complaining when it flushes stdout at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass


def describe_error(exc: BaseException) -> str:
    from confluent_kafka import KafkaError, KafkaException

    if isinstance(exc, CliError):
        return str(exc)
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return kafka_error_text(exc.args[0])
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.strerror or exc}: {exc.filename}"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def kafka_error_text(err: Any) -> str:
    text = str(err.str() or "").strip()
    name = str(err.name() or "")
    if name and name.lstrip("_") not in text.replace(" ", "_").upper():
        return f"{text} ({name})" if text else name
    return text or name


def quiet_logger() -> logging.Logger:
    """librdkafka logs every failed connect attempt; the tools report errors themselves."""
    logger = logging.getLogger("suoi.cli.rdkafka")
    if not debug():
        logger.addHandler(logging.NullHandler())
        logger.propagate = False
    return logger


def read_props(path: Path | str | None) -> dict[str, str]:
    if path is None:
        return {}
    from suoi.config import read_properties

    try:
        return read_properties(Path(path))
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None


def read_client_props(path: Path | str | None) -> dict[str, str]:
    """A client properties file (`--command-config`, `--producer.config`, ...), Kafka's Java names
    (sasl.jaas.config, ssl.truststore.*) turned into librdkafka's (`suoi.cli.client_props`)."""
    from suoi.cli.client_props import librdkafka_names

    return librdkafka_names(read_props(path))


def parse_kv(items: Iterable[str], flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise CliError(f"{flag} expects KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        if not k.strip():
            raise CliError(f"{flag} expects KEY=VALUE, got {item!r}")
        out[k.strip()] = v
    return out


def client_config(args: argparse.Namespace, *extra: dict[str, Any]) -> dict[str, Any]:
    """bootstrap + --command-config + any later layers (later wins)."""
    conf: dict[str, Any] = {"bootstrap.servers": args.bootstrap_server,
                            "socket.connection.setup.timeout.ms": int(CONNECT_TIMEOUT_S * 1000),
                            "logger": quiet_logger(), "error_cb": _record_refusal}
    conf.update(read_client_props(getattr(args, "command_config", None)))
    for layer in extra:
        conf.update(layer)
    return conf


def make_client(factory: Callable[[dict[str, Any]], Any], conf: dict[str, Any]) -> Any:
    from confluent_kafka import KafkaException

    try:
        return factory(conf)
    except (KafkaException, ValueError, TypeError) as exc:
        raise CliError(f"invalid client configuration: {describe_error(exc)}") from None


def admin_client(args: argparse.Namespace) -> Any:
    from confluent_kafka.admin import AdminClient

    return make_client(AdminClient, client_config(args))


#: Why the brokers refused this tool's connections (librdkafka's error_cb: wrong password,
#: untrusted certificate), which its Metadata failure alone calls a "transport failure".
_REFUSALS: list[str] = []


def _record_refusal(err: Any) -> None:
    from confluent_kafka import KafkaError

    if err.code() in (KafkaError._AUTHENTICATION, KafkaError._SSL):
        _REFUSALS.append(str(err.str()).split(": ", 1)[-1])  # without "sasl_ssl://host:port/id: "


def cluster_metadata(client: Any, bootstrap: str) -> Any:
    """Metadata for every topic; the first contact, so an unreachable broker fails here."""
    from confluent_kafka import KafkaException, Producer
    from confluent_kafka.admin import AdminClient

    _probe_tcp(bootstrap)
    try:
        return client.list_topics(timeout=CONNECT_TIMEOUT_S)
    except KafkaException as exc:
        if isinstance(client, (AdminClient, Producer)):  # serve error_cb (a consumer's poll would consume)
            client.poll(0)
        why = _REFUSALS[-1] if _REFUSALS else describe_error(exc)
        raise CliError(f"cannot reach a broker at {bootstrap}: {why}") from None


def _probe_tcp(bootstrap: str) -> None:
    """Fail at once when no bootstrap address accepts a TCP connection (librdkafka would retry
    until the metadata timeout). Only a connect: the protocol is left to the client library."""
    import socket

    reasons = []
    for addr in filter(None, (a.strip() for a in bootstrap.split(","))):
        addr = addr.split("://", 1)[-1]
        host, sep, port = addr.rpartition(":")
        if not sep or not port.isdigit():
            raise CliError(f"--bootstrap-server expects HOST:PORT, got {addr!r}")
        try:
            with socket.create_connection((host.strip("[]") or "localhost", int(port)), timeout=CONNECT_TIMEOUT_S):
                return
        except OSError as exc:
            reasons.append(exc.strerror or str(exc) or type(exc).__name__)
    raise CliError(f"cannot reach a broker at {bootstrap}: {reasons[0] if reasons else 'no address given'}")


def is_internal(topic: str) -> bool:
    return topic.startswith("__")


def match_topics(names: Iterable[str], pattern: str | None, *, exclude_internal: bool = False) -> list[str]:
    """Kafka's --topic filter: a regular expression that must match the whole name."""
    try:
        regex = re.compile(pattern) if pattern is not None else None
    except re.error as exc:
        raise CliError(f"--topic {pattern!r} is not a valid regular expression: {exc}") from None
    out = []
    for name in sorted(names):
        if exclude_internal and is_internal(name):
            continue
        if regex is None or name == pattern or regex.fullmatch(name):
            out.append(name)
    return out


def result(future: Any, timeout: float = TIMEOUT_S) -> Any:
    """A confluent future's result; a timeout becomes one readable line."""
    import concurrent.futures

    try:
        return future.result(timeout=timeout)
    except concurrent.futures.TimeoutError:
        raise CliError(f"no answer from the broker within {timeout:.0f}s") from None


def retrying(attempt: Callable[[float], T], timeout: float = TIMEOUT_S) -> T:
    """``attempt(seconds left)`` until it returns, fails with a non-retriable error, or the
    tool's timeout runs out: a read right after a change, or during a controller or leader
    move, succeeds once the cluster settles instead of failing at once (or waiting for a node
    that is gone). Each attempt starts new requests, so the client looks the target up again."""
    import time

    from confluent_kafka import KafkaException

    deadline = time.monotonic() + timeout
    while True:
        try:
            return attempt(max(deadline - time.monotonic(), 0.1))
        except KafkaException as exc:
            if not is_retriable(exc) or time.monotonic() + RETRY_BACKOFF_S >= deadline:
                raise
        time.sleep(RETRY_BACKOFF_S)


def is_retriable(exc: BaseException) -> bool:
    """A confluent-kafka error worth another attempt (see RETRIABLE_ERRORS)."""
    err: Any = exc.args[0] if exc.args else None
    name = str(err.name()) if hasattr(err, "name") else ""
    return name in RETRIABLE_ERRORS or bool(getattr(err, "retriable", lambda: False)())


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, sort_keys=False))


def kafka_uuid(value: Any) -> str:
    """Kafka prints topic ids as URL-safe base64 without padding; librdkafka uses the plain alphabet."""
    return str(value).replace("+", "-").replace("/", "_").rstrip("=")
