"""Which replica a consumer should read from (KIP-392, Kafka's RackAwareReplicaSelector).

With ``replica.selector.class`` set to the rack-aware selector, the leader answers a consumer
Fetch that names its rack (``client.rack``) with a *preferred read replica*: the leader itself
if it is in that rack, else the in-sync, eligible follower in that rack that has the fetch
offset and the most data. The client then fetches from that follower, which serves records up
to its own high watermark. No rack, no match: the leader serves, as without a selector.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

#: The values of replica.selector.class that turn rack-aware selection on.
RACK_AWARE_SELECTORS = frozenset({
    "rack-aware", "org.apache.kafka.common.replica.RackAwareReplicaSelector",
})


def rack_aware(selector_class: str | None) -> bool:
    return bool(selector_class) and str(selector_class).strip() in RACK_AWARE_SELECTORS


@dataclass(frozen=True, slots=True)
class ReplicaView:
    broker_id: int
    rack: str | None
    log_end_offset: int
    in_sync: bool
    eligible: bool


def select_read_replica(leader_id: int, leader_rack: str | None, client_rack: str,
                        followers: Iterable[ReplicaView], fetch_offset: int) -> int:
    """The broker the consumer should fetch from (``leader_id`` when nothing better)."""
    if not client_rack or leader_rack == client_rack:
        return leader_id
    candidates = [f for f in followers if f.rack == client_rack and f.in_sync and f.eligible
                  and f.log_end_offset >= fetch_offset]
    if not candidates:
        return leader_id
    return max(candidates, key=lambda f: (f.log_end_offset, -f.broker_id)).broker_id
