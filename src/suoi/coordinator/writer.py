"""How a coordinator runtime's writes reach replication: the `PartitionWriter` it is given.

A runtime appends to its internal partition's local log itself (it leads that partition);
what happens next belongs to the partition layer, so the runtime receives this interface in
its constructor: `appended(tp)` after every append (the leader's HW may move, parked fetches
wake), `wait_replicated(tp, end_offset)` before a reply that depends on the write (the error
code once the ISR has it), and `write_markers` (a cluster's transaction-marker writer, or None
when this node appends markers to its local logs itself). `suoi.partition.coordinator_writer`
is the broker's; `CommittedAtOnce` is a single replica's (tests, and a node without replication).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

from suoi.model import TopicPartition

if TYPE_CHECKING:
    from suoi.coordinator.txn.types import WriteMarkers

MarkerWriter = Callable[["WriteMarkers"], Awaitable[None]]


class PartitionWriter(Protocol):
    def appended(self, tp: TopicPartition) -> None: ...

    async def wait_replicated(self, tp: TopicPartition, end_offset: int) -> int: ...

    @property
    def write_markers(self) -> MarkerWriter | None: ...


class CommittedAtOnce:
    """A single replica: an append is committed at once; appends only wake parked fetches."""

    def __init__(self, appended: Callable[[TopicPartition], None] = lambda tp: None) -> None:
        self._appended = appended

    def appended(self, tp: TopicPartition) -> None:
        self._appended(tp)

    async def wait_replicated(self, tp: TopicPartition, end_offset: int) -> int:
        return 0

    @property
    def write_markers(self) -> MarkerWriter | None:
        return None
