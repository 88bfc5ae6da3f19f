"""The registry at run time: replay ``_schemas`` into the store, answer reads from it, and on the
primary append writes one at a time, answering once the write is read back.

Ids are unique because only the primary allocates them and it does so under one lock, after
its replay has reached the partition's end (every earlier write, by any earlier primary, is then
in its store): the next id is above every id the topic has held. "Only the primary" does not rest
on the election's timing: each primary term starts by initialising the shared transactional id,
which fences the previous primary's producer (``topic``), and only then reads to the end. The primary is elected through
a consumer group (``election``); the other registries forward writes to it over HTTP
(``app``). One registry alone is simply always the primary once the group has formed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from suoi.http.registry import errors as E
from suoi.http.registry import records
from suoi.http.registry.core import RegistryCore, Write
from suoi.http.registry.election import PrimaryElection
from suoi.http.registry.errors import RegistryError
from suoi.http.registry.store import SchemaStore
from suoi.http.registry.topic import Batch, SchemaTopic

__all__ = ["RegistryService"]

log = logging.getLogger("suoi.http.registry")


class RegistryService:
    def __init__(self, bootstrap: str, my_url: str, *, topic: str = "_schemas", group: str = "schema-registry",
                 write_timeout: float = 30.0) -> None:
        self.store = SchemaStore()
        self.core = RegistryCore(self.store)
        self.topic = SchemaTopic(bootstrap, topic, self._replayed, transactional_id=f"{group}-{topic}-writer")
        self.election = PrimaryElection(bootstrap, topic, group, my_url)
        self.write_timeout = write_timeout
        self.ready = asyncio.Event()  # set once the replay reached the end the topic had at start
        self._write_lock = asyncio.Lock()
        self._applied = asyncio.Event()  # pulsed on every replayed batch
        self._task: asyncio.Task[None] | None = None
        self.position = 0  # the next offset the replay will read
        self._writer_term = -1  # the election term our transactional writer was initialised in

    async def start(self) -> None:
        """Connect in the background: the HTTP port is up at once, calls wait for ``ready``."""
        self._task = asyncio.create_task(self._start(), name="schema-registry-start")

    async def _start(self) -> None:
        delay = 0.5
        while True:
            try:
                await self.topic.start()
                end = await self.topic.end_offset()
                break
            except Exception as exc:  # the cluster is not up yet: keep trying, one line each time
                log.warning("schema registry: cannot reach the cluster yet (%s); retrying", exc)
                await self.topic.close()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        await self._catch_up(end, timeout=None)
        self.election.start()
        self.ready.set()
        log.info("schema registry ready: %d subjects, %d schema ids replayed from %s",
                 len(self.store.subjects), len(self.store.schemas), self.topic.topic)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.ready.is_set():
            await self.election.close()
        await self.topic.close()

    def _replayed(self, batch: Batch, position: int) -> None:
        for offset, key, value in batch:
            self.store.apply(offset, records.decode(key, value))
        self.position = max(self.position, position)
        self._applied.set()
        self._applied = asyncio.Event()

    async def _catch_up(self, end_offset: int, timeout: float | None) -> None:
        """Wait until the replay has applied every record below ``end_offset``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if self.position < end_offset:
            self.topic.wake_reader()  # an idle reader looks only now and then (`SchemaTopic._read_loop`)
        while self.position < end_offset:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise RegistryError(E.OPERATION_TIMEOUT, "Timed out waiting for the schemas topic to be read back")
            try:
                await asyncio.wait_for(self._applied.wait(), left)
            except TimeoutError:
                continue

    async def read_to_end(self) -> None:
        """Wait until the replay has every record the topic holds now."""
        await self._catch_up(await self.topic.end_offset(), self.write_timeout)

    async def wait_ready(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self.ready.wait(), timeout)
        except TimeoutError:
            raise RegistryError(E.STORE_ERROR, "The schema registry is still reading the schemas topic") from None

    async def write(self, plan: Callable[[RegistryCore], Write]) -> object:
        """Run a write on this registry, the primary: plan it on a store that has read everything,
        append its records, and answer once they are replayed."""
        async with self._write_lock:
            if not self.election.is_primary:
                raise NotPrimary()
            if self._writer_term != self.election.term:  # a new term: fence every earlier primary first
                try:
                    await self.topic.init_writer(self.write_timeout)
                except Exception as exc:
                    raise RegistryError(E.STORE_ERROR, f"Cannot become the schemas topic's writer: {exc}") from None
                await self.read_to_end()  # after the fencing: every earlier write is committed or aborted
                self._writer_term = self.election.term
            # From here on we are the only writer (a newer one would fence our next append), and each of our
            # writes is replayed before it is answered: the store is complete without asking the topic.
            write = plan(self.core)
            if write.records:
                try:
                    last = await self.topic.append(write.records, self.write_timeout)
                except Exception as exc:  # fenced by a newer primary, or the cluster is unavailable
                    self._writer_term = -1
                    log.warning("schema registry: append to %s failed: %s", self.topic.topic, exc)
                    raise RegistryError(E.STORE_ERROR, f"Error while writing to the schemas topic: {exc}") from None
                await self._catch_up(last + 1, self.write_timeout)
            return write.result

    async def primary_url(self, timeout: float) -> str:
        """The primary's URL, waiting up to ``timeout`` for an election to finish. This registry's own
        only once it is the primary: the group coordinator names a new owner of the partition before
        librdkafka's on_assign tells that registry (`election`), and a write it forwarded to itself
        meanwhile was refused there as "not the primary" (50003, an answer without an id)."""
        deadline = time.monotonic() + timeout
        while True:
            url = await self.election.primary_url()
            if url is not None and (url != self.election.my_url or self.election.is_primary):
                return url
            if time.monotonic() >= deadline:
                raise RegistryError(E.FORWARDING_ERROR, "No primary schema registry is elected yet")
            self.election.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.election.changed.wait(), 0.5)


class NotPrimary(Exception):
    """This registry is not the primary: the caller forwards the request."""
