"""The fetching side of a KIP-227 fetch session: Kafka's FetchSessionHandler, as the follower uses it.

The leader keeps the follower's partitions and fetch positions in a session
(`suoi.partition.fetch_session`); the follower then names only partitions whose fetch
parameters changed since its previous request (a new fetch offset after an append, a new
leader epoch, an added partition) and the ones it stopped fetching (forgotten), and the
leader answers only partitions with something new. A follower caught up on hundreds of
partitions sends and receives near-empty fetches.

Sans-IO: `build(wanted)` before each request, `on_response(error, session_id)` or `on_error()`
after it. Metadata rules (Kafka's FetchMetadata): the first request is full with epoch 0 (asks
for a session); an answer with a session id continues it at epoch 1, 2, ...; a top-level
FETCH_SESSION_ID_NOT_FOUND starts over at (0, 0); any other error or a lost connection closes the
session with the next full request (id, 0), as Kafka's `nextCloseExisting`.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

INVALID_SESSION_ID = 0
INITIAL_EPOCH = 0
FETCH_SESSION_ID_NOT_FOUND = 70  # Kafka's error code


def _next_epoch(epoch: int) -> int:
    return 1 if epoch == 2**31 - 1 else epoch + 1


K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class FetchData(Generic[K]):
    """What one request names: `session_id`/`epoch`, the partitions to send (all of them when
    `full`) and the partitions to forget."""

    session_id: int
    epoch: int
    full: bool
    to_send: dict[K, tuple[int, ...]]
    forgotten: list[K]


class FetchSessionHandler(Generic[K]):
    """One per leader the follower fetches from. Partition keys are opaque (e.g. TopicPartition);
    a partition's fetch parameters are a tuple compared for changes."""

    def __init__(self) -> None:
        self.session_id = INVALID_SESSION_ID
        self.epoch = INITIAL_EPOCH
        #: what the leader's session holds, as of the last request built
        self.session: dict[K, tuple[int, ...]] = {}

    def build(self, wanted: Mapping[K, tuple[int, ...]]) -> FetchData[K]:
        previous = self.session
        self.session = dict(wanted)
        if self.epoch == INITIAL_EPOCH:
            return FetchData(self.session_id, self.epoch, True, self.session, [])
        to_send = {key: params for key, params in wanted.items() if previous.get(key) != params}
        forgotten = [key for key in previous if key not in wanted]
        return FetchData(self.session_id, self.epoch, False, to_send, forgotten)

    def on_response(self, error: int, session_id: int) -> bool:
        """The answer's top-level error and session id; False if it must be ignored (a session error)."""
        if error:
            if error == FETCH_SESSION_ID_NOT_FOUND:
                self.session_id = INVALID_SESSION_ID
            self.epoch = INITIAL_EPOCH
            return False
        if session_id == INVALID_SESSION_ID:  # no session (cache full) or the leader closed it
            self.session_id, self.epoch = INVALID_SESSION_ID, INITIAL_EPOCH
        elif self.epoch == INITIAL_EPOCH:
            self.session_id, self.epoch = session_id, 1
        else:
            self.epoch = _next_epoch(self.epoch)
        return True

    def on_error(self) -> None:
        """The request failed (connection lost, timeout): close the session with the next request."""
        self.epoch = INITIAL_EPOCH
