"""Raft settings, named after Kafka's ``controller.quorum.*`` properties."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RaftConfig"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RaftConfig:
    election_timeout_ms: int = 1000  # controller.quorum.election.timeout.ms (randomised to [t, 2t))
    election_backoff_max_ms: int = 1000  # controller.quorum.election.backoff.max.ms
    fetch_timeout_ms: int = 2000  # controller.quorum.fetch.timeout.ms
    request_timeout_ms: int = 2000  # controller.quorum.request.timeout.ms
    retry_backoff_ms: int = 20  # controller.quorum.retry.backoff.ms
    fetch_max_wait_ms: int = 500  # how long the leader may park a Fetch with nothing new
    fetch_max_entries: int = 1000  # entries per Fetch response
    fetch_snapshot_max_bytes: int = 1 << 20  # bytes per FetchSnapshot response
    pre_vote: bool = True  # KIP-996
    check_quorum: bool = True  # leader resigns without fetches from a majority in 1.5 x fetch timeout
    cluster_id: str | None = None  # checked against requests that carry one

    def __post_init__(self) -> None:
        if self.request_timeout_ms <= self.fetch_max_wait_ms:
            raise ValueError("request_timeout_ms must exceed fetch_max_wait_ms")
        if min(self.election_timeout_ms, self.fetch_timeout_ms, self.retry_backoff_ms) <= 0:
            raise ValueError("timeouts must be positive")

    @property
    def check_quorum_timeout_ms(self) -> int:
        return self.fetch_timeout_ms * 3 // 2
