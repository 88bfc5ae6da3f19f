"""Follower-side state of one partition: where to fetch from and what HW it has learned.

Kafka's follower fetch state (`PartitionFetchState`) for one partition: after a new leader
or leader epoch the follower must first find where its log diverges (OffsetForLeaderEpoch,
or a diverging epoch in a fetch response) and truncate there; only then does it fetch from
its LEO. The HW it learns from a fetch response is min(leader HW, own LEO) (Kafka's
`updateHighWatermark` on a follower, which can move down, e.g. after a leader change).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FetchPosition:
    fetch_offset: int
    current_leader_epoch: int


class FollowerPartitionState:
    def __init__(
        self,
        topic: str,
        partition: int,
        leader_id: int,
        leader_epoch: int,
        partition_epoch: int,
        log_end_offset: int,
        high_watermark: int = 0,
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.leader_id = leader_id
        self.leader_epoch = leader_epoch
        self.partition_epoch = partition_epoch
        self.log_end_offset = log_end_offset
        self.high_watermark = min(max(high_watermark, 0), log_end_offset)
        self.truncation_needed = True  # a new follower always validates its log first

    @property
    def fetch_offset(self) -> int:
        return self.log_end_offset

    def fetch_position(self) -> FetchPosition | None:
        """What to fetch next, or None while the log must be truncated first."""
        if self.truncation_needed:
            return None
        return FetchPosition(self.log_end_offset, self.leader_epoch)

    def update_registration(self, leader_id: int, leader_epoch: int, partition_epoch: int) -> bool:
        """A new registration that keeps this broker a follower; False if stale (ignored)."""
        if leader_epoch < self.leader_epoch or (leader_epoch == self.leader_epoch and partition_epoch < self.partition_epoch):
            return False
        if leader_epoch > self.leader_epoch or leader_id != self.leader_id:
            self.truncation_needed = True
        self.leader_id = leader_id
        self.leader_epoch = leader_epoch
        self.partition_epoch = partition_epoch
        return True

    def on_truncated(self, log_end_offset: int) -> None:
        """The runtime truncated the log (or found nothing to truncate) to `log_end_offset`."""
        self.log_end_offset = log_end_offset
        self.high_watermark = min(self.high_watermark, log_end_offset)
        self.truncation_needed = False

    def on_diverging_epoch(self) -> None:
        """The leader reported a diverging epoch (or fenced our epoch view): truncate again."""
        self.truncation_needed = True

    def on_fetch_response(self, leader_high_watermark: int, log_end_offset: int) -> int:
        """Records were appended up to `log_end_offset`; returns the follower's new HW."""
        if self.truncation_needed:
            raise ValueError("fetch response while truncation is needed")
        if log_end_offset < self.log_end_offset:
            raise ValueError(f"LEO went back from {self.log_end_offset} to {log_end_offset}; use on_truncated")
        self.log_end_offset = log_end_offset
        self.high_watermark = max(0, min(leader_high_watermark, log_end_offset))
        return self.high_watermark
