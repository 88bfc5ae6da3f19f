"""The quorum's settings from Kafka's property names: ``controller.quorum.voters`` and the
``controller.quorum.*`` timeouts, parsed apart from the driver (the cluster settings need the
voters before any driver exists)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from suoi.raft import RaftConfig

__all__ = ["parse_voters", "raft_config_from_properties"]


def parse_voters(value: str | Mapping[int, tuple[str, int]]) -> dict[int, tuple[str, int]]:
    """``controller.quorum.voters``: ``"1@host:port,2@host:port"`` (IPv6 as ``[::1]:9093``)."""
    if isinstance(value, Mapping):
        return {int(k): (str(h), int(p)) for k, (h, p) in value.items()}
    voters: dict[int, tuple[str, int]] = {}
    for item in (x.strip() for x in value.split(",")):
        if not item:
            continue
        try:
            node, address = item.split("@", 1)
            host, port = address.rsplit(":", 1)
            node_id = int(node)
            voters[node_id] = (host.strip("[]"), int(port))
        except ValueError:
            raise ValueError(f"controller.quorum.voters: {item!r} is not id@host:port") from None
        if node_id < 0:
            raise ValueError(f"controller.quorum.voters: negative node id in {item!r}")
    if not voters:
        raise ValueError("controller.quorum.voters is empty")
    return voters


_RAFT_PROPERTIES = {
    "controller.quorum.election.timeout.ms": "election_timeout_ms",
    "controller.quorum.election.backoff.max.ms": "election_backoff_max_ms",
    "controller.quorum.fetch.timeout.ms": "fetch_timeout_ms",
    "controller.quorum.request.timeout.ms": "request_timeout_ms",
    "controller.quorum.retry.backoff.ms": "retry_backoff_ms",
}


def raft_config_from_properties(props: Mapping[str, Any], cluster_id: str | None = None) -> RaftConfig:
    """A RaftConfig from Kafka property names (missing ones keep RaftConfig's defaults)."""
    kwargs: dict[str, Any] = {}
    for name, field_name in _RAFT_PROPERTIES.items():
        value = props.get(name)
        if value is not None and value != "":
            kwargs[field_name] = int(value)
    return RaftConfig(cluster_id=cluster_id, **kwargs)
