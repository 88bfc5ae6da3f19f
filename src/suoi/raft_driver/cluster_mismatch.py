"""The loud, rate-limited ERROR for a peer of another cluster (INCONSISTENT_CLUSTER_ID, 104).

A node formatted with another cluster id than its peers can never join their quorum: every
Vote, Fetch, BeginQuorumEpoch or BrokerRegistration between them is answered
INCONSISTENT_CLUSTER_ID. The Raft core answers that by itself; this says it where an operator
looks, on both sides (the receiver names both ids, the sender what it was answered), once per
peer per minute, because the requests repeat every few hundred milliseconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

FIX = ("format every node of one cluster with the same id: suoi storage format --cluster-id ID --config FILE "
       "(suoi storage info --config FILE shows a node's)")
INTERVAL_S = 60.0


class ClusterIdMismatchLog:
    """Logs each peer's cluster-id mismatch at most once per `interval_s`."""

    def __init__(self, logger: logging.Logger, own_cluster_id: str | None, *,
                 interval_s: float = INTERVAL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.own = own_cluster_id
        self.interval_s = interval_s
        self.clock = clock
        self._last: dict[tuple[str, object], float] = {}

    def _due(self, kind: str, peer: object) -> bool:
        now = self.clock()
        last = self._last.get((kind, peer))
        if last is not None and now - last < self.interval_s:
            return False
        self._last[(kind, peer)] = now
        return True

    def received(self, peer: object, what: str, their_cluster_id: str | None) -> None:
        """A request of `what` from `peer` carried another cluster's id (we answer 104)."""
        if their_cluster_id is None or self.own is None or their_cluster_id == self.own:
            return
        if self._due("received", peer):
            self.logger.error("INCONSISTENT_CLUSTER_ID: %s from node %s of cluster.id=%s, but this node is of "
                              "cluster.id=%s; refused. To join them, %s", what, peer, their_cluster_id, self.own, FIX)

    def answered(self, peer: str, what: str) -> None:
        """`peer` ("node 3") answered our `what` with INCONSISTENT_CLUSTER_ID: another cluster's."""
        if self._due("answered", peer):
            self.logger.error("INCONSISTENT_CLUSTER_ID: %s refused our %s: it is not of cluster.id=%s (this "
                              "node's); %s", peer, what, self.own, FIX)
