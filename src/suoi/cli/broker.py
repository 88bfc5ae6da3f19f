"""`suoi broker`: run a broker in the foreground until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger("suoi")


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "broker",
        help="run a broker",
        description="Run a Kafka-compatible broker. Accepts Apache Kafka's server.properties keys; "
        "flags override the file.",
    )
    p.add_argument("--config", "-c", type=Path, help="a server.properties file")
    p.add_argument("--listeners", help="e.g. PLAINTEXT://127.0.0.1:9092 (default)")
    p.add_argument("--advertised-listeners", help="addresses given to clients (default: listeners)")
    p.add_argument("--log-dirs", help="comma-separated data directories (default ./suoi-data)")
    p.add_argument("--node-id", type=int, help="this broker's node.id (default 1)")
    p.add_argument("--override", "-o", action="append", default=[], metavar="KEY=VALUE",
                   help="set any property, repeatable (e.g. -o log.retention.ms=60000)")
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR (default INFO)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from suoi.config import load_config, read_properties
    from suoi.config_security import UnsupportedSecuritySetting

    file_values = read_properties(args.config) if args.config else {}
    overrides: dict[str, str] = {}
    for item in args.override:
        if "=" not in item:
            print(f"suoi broker: --override expects KEY=VALUE, got {item!r}", file=sys.stderr)
            return 2
        k, v = item.split("=", 1)
        overrides[k.strip()] = v.strip()
    for flag, key in (("listeners", "listeners"), ("advertised_listeners", "advertised.listeners"),
                      ("log_dirs", "log.dirs"), ("node_id", "node.id")):
        value = getattr(args, flag)
        if value is not None:
            overrides[key] = str(value)
    try:
        config = load_config(file_values, overrides)
        from suoi.cluster.settings import KRaftSettings

        KRaftSettings.from_config(config)  # process.roles, voters/bootstrap servers: fail here, in one line
    except UnsupportedSecuritySetting as exc:  # asks for TLS/SASL/ACLs: refuse to start at all
        print(f"suoi broker: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"suoi broker: {exc}", file=sys.stderr)
        return 2
    from suoi.security.listeners import check_node_security

    try:
        check_node_security(config)  # keystores readable, SASL users and inter-node credentials present
    except ValueError as exc:  # a TLS/SASL listener that cannot work: refuse before binding anything
        print(f"suoi broker: {exc}", file=sys.stderr)
        return 1
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    from suoi.cli.malloc_tuning import tune_malloc
    from suoi.log.dir_lock import LogDirLockedError
    from suoi.log.meta_properties import StorageFormatError

    tune_malloc()  # produce buffers reuse mapped heap instead of faulting in fresh pages (issue 19)
    _tune_gc()
    _tune_gil()
    try:
        return int(runner(_serve(config)))
    except (StorageFormatError, LogDirLockedError) as exc:  # unformatted, another cluster's, in use: one ERROR line
        log.error("%s", exc)
        return 1
    except (OSError, RuntimeError) as exc:  # a port in use, a data dir of another node or mode
        print(f"suoi broker: {exc}", file=sys.stderr)
        return 1


#: gen0 threshold of the broker process's cyclic GC (Python's default: 700). Start-up and topic
#: creation allocate hundreds of thousands of long-lived objects (logs, partition states, image
#: records); at 700 the collector ran a full pass every time the heap had grown by a quarter and
#: took 60% of the CPU of a restart with 10,000 partitions. Almost everything is freed by
#: reference counting, so a larger young generation only delays collecting rare cycles.
GC_GEN0_THRESHOLD = 20_000


def _tune_gc() -> None:
    """Tune the cyclic garbage collector for a long-running server process: collections run
    less often (`GC_GEN0_THRESHOLD`, the figure that matters), and the objects made by the
    imports (~40,000: modules, classes, kio's schemas), which live as long as the process, are
    frozen out of every collection.
    Only the `suoi broker` process: an in-process node leaves its host process's GC alone."""
    import gc

    import suoi.broker  # noqa: F401 - the broker's modules too (imported here first, then frozen)

    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, max(gen1, 20), max(gen2, 20))


#: How long a thread running Python keeps the GIL from the event loop once the loop asks for it
#: (Python's default: 5 ms). The node's threads (the /metrics encoding, the admin endpoint's import,
#: the log cleaner, `to_thread` jobs) take the GIL whenever the loop releases it for a syscall - every
#: read and write - and the loop then waits out the whole interval for it: a 20 ms CPU-bound thread
#: left the loop 5-10 % of its speed with gaps of 6-17 ms at 5 ms, 17-60 % with gaps of 2-9 ms at
#: 0.5 ms (benchmarks/README.md, "The 10,000 msg/s tail, sixth session").
GIL_SWITCH_INTERVAL_S = 0.0005


def _tune_gil() -> None:
    """A shorter GIL switch interval (`GIL_SWITCH_INTERVAL_S`): the loop waits less behind the
    node's own threads. Nothing changes while only the loop runs Python (no thread asks for the
    GIL); while one does, a forced switch every 0.5 ms costs a few µs. Only the `suoi broker`
    process, like `_tune_gc`."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)


#: The least time between two refreezes of `_refreeze_after_topic_changes`.
REFREEZE_CHECK_S = 1.0
#: How long one wait for a changed image lasts before the next (a bound, not a cadence).
REFREEZE_WAIT_S = 3600.0


async def _refreeze_after_topic_changes(broker: Any) -> None:
    """Freeze again what topics and partitions created at run time made (their logs, segments,
    partition states, image records): like start-up's, it lives as long as the topic, and left
    in the collector's generations the next young collection walks all of it - one ~5-10 ms
    pause on the event loop (measured at 1,000 msg/s just after a topic was created: the run's
    only collection). Done once the local partitions were brought to an image whose topics or
    their partition counts changed (their logs are made then), at most once a
    `REFREEZE_CHECK_S`, only on such changes. Woken by the image's changes, not a timer: it used
    to look once a second, a wake-up of an idle node for nothing (issue 19).
    The price: a garbage cycle made since the last collection is frozen with them (never
    freed); the broker makes few (a young collection of 20,000 objects finds some hundreds), and
    topic changes are rare."""
    kraft = getattr(broker, "kraft", None)
    if kraft is None:  # no metadata image: no topics created at run time this way
        return
    seen_topics: list[Any] = [None]  # the topics mapping looked at last
    seen: frozenset[tuple[object, int]] | None = None  # the first look freezes once too

    def new_topics(image: Any) -> bool:
        # a new image's topics mapping (every published image, an ISR change or a producer id
        # block too, has a new one), once the local partitions follow it
        if image.topics is seen_topics[0]:
            return False
        seen_topics[0] = image.topics
        return True

    while True:
        if not await kraft.wait_image(new_topics, REFREEZE_WAIT_S, applied=True):
            continue
        topics = seen_topics[0]
        # not the mapping's identity alone: each freeze keeps the garbage cycles of that moment
        shape = frozenset((tid, len(t.partitions)) for tid, t in topics.items())
        if shape != seen:
            seen = shape
            gc.freeze()
            await asyncio.sleep(REFREEZE_CHECK_S)


async def _serve(config: Any) -> int:
    from suoi.broker import Broker

    broker = Broker(config)
    await broker.start()
    # What start-up made (modules, the metadata image, logs, handlers) lives as long as the
    # node: moved out of the collector's generations, a full collection no longer walks it
    # (a pause on the one event loop every client waits behind).
    gc.freeze()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    refreeze = loop.create_task(_refreeze_after_topic_changes(broker), name="gc-refreeze")
    await stop.wait()
    refreeze.cancel()
    log.info("shutting down")
    await broker.stop()
    return 0
