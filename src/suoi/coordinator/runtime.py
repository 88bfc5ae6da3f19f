"""What every coordinator runtime shares: state kept in an internal, compacted topic,
replayed at start, and a sans-IO machine whose timers this loop fires.

Subclasses name their `topic`, decode what they replay (`_replay_batch`), finish loading
(`_loaded`), and process the machine's outputs (`_process`). While the replay runs,
`loading` is True and the APIs answer COORDINATOR_LOAD_IN_PROGRESS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Any

from suoi.log.errors import LogError
from suoi.log.manager import LogManager
from suoi.model import TopicPartition
from suoi.protocol.records import BatchHeader, SimpleRecord, decode_batch_records, iter_batches

log = logging.getLogger("suoi.coordinator")

LOAD_CHUNK_BYTES = 1 << 20


class CoordinatorRuntime:
    topic: str = ""
    #: Standalone: this node creates the internal topic on first use. KRaft mode: the
    #: controller does (FindCoordinator asks it), and `owns` says which partitions lead here.
    local_topics = True

    def __init__(self, logs: LogManager, appended: Callable[[TopicPartition], None],
                 now_ms: Callable[[], int]) -> None:
        self._logs = logs
        self._appended = appended
        self._now_ms = now_ms
        self.machine: Any = None
        self.loading = False
        self._wake: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.owns: Callable[[int], bool] = lambda partition: True
        #: How many partitions a topic has (None: no such topic). Standalone: the local logs;
        #: KRaft mode: the metadata image (the topic may live on other brokers).
        self.partition_count: Callable[[str], int | None] = self._local_partition_count

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        self._wake = asyncio.Event()
        if self.topic in self._logs.topics():
            self.loading = True
            self._spawn(self._load(), f"{self.topic}-load")
        self._spawn(self._timer_loop(), f"{self.topic}-timers")

    def _spawn(self, coro: Any, name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=name))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- replay ------------------------------------------------------------------------
    async def _load(self) -> None:
        """Replay every partition of the topic, yielding to the event loop between chunks."""
        started = self._now_ms()
        info = self._logs.topics()[self.topic]
        for partition in range(info.partitions):
            plog = self._logs.get_log(self.topic, partition)
            if plog is None:
                continue
            offset = plog.log_start_offset
            while offset < plog.high_watermark:
                data = plog.read(offset, LOAD_CHUNK_BYTES)
                if not data:
                    break
                for pos, header in iter_batches(data):
                    offset = header.next_offset
                    self._replay_batch(partition, header, decode_batch_records(data, pos, header))
                await asyncio.sleep(0)
        now = self._now_ms()
        self._loaded(now)
        self.loading = False
        log.info("loaded %s in %d ms", self.topic, now - started)
        self._kick()

    def _replay_batch(self, partition: int, header: BatchHeader, records: list[SimpleRecord]) -> None:
        raise NotImplementedError

    def _loaded(self, now: int) -> None:
        raise NotImplementedError

    def _local_partition_count(self, topic: str) -> int | None:
        info = self._logs.topics().get(topic)
        return None if info is None else info.partitions

    def _ensure_internal_topic(self, partitions: int, segment_bytes: int) -> None:
        """Create the compacted internal topic on first use (standalone mode only)."""
        if self.local_topics and self.topic not in self._logs.topics():
            self._logs.create_topic(self.topic, partitions, {"cleanup.policy": "compact",
                                                             "segment.bytes": str(segment_bytes)})
            log.info("created %s with %d partitions", self.topic, partitions)

    # -- writes ------------------------------------------------------------------------
    def _append_to(self, partition: int, batch: bytes) -> None:
        """Append one batch to the internal topic's partition; raises LogError/OSError."""
        plog = self._logs.get_log(self.topic, partition)
        if plog is None:
            raise LogError(f"{self.topic}-{partition} is missing")
        plog.append(batch)
        self._appended(TopicPartition(self.topic, partition))

    # -- timers ------------------------------------------------------------------------
    def _process(self, outputs: Iterable[Any]) -> Any:
        raise NotImplementedError

    def _kick(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _timer_loop(self) -> None:
        """Fire the machine's timers: sleep until its next deadline or until an event
        (`_kick`) may have moved it."""
        wake = self._wake
        assert wake is not None
        while True:
            deadline = self.machine.next_deadline()
            now = self._now_ms()
            if deadline is not None and deadline <= now:
                self._process(self.machine.poll(now))
                continue
            wake.clear()
            timeout = None if deadline is None else (deadline - now) / 1000
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout)
