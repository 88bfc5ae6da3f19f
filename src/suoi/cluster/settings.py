"""The broker properties that turn on KRaft mode, with Kafka's names."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from suoi.config import BrokerConfig
from suoi.raft_driver.driver import parse_voters


@dataclass(frozen=True, slots=True)
class KRaftSettings:
    roles: frozenset[str]  # {"broker"}, {"controller"} or both
    node_id: int
    voters: dict[int, tuple[str, int]]
    controller_listener: str  # the first of controller.listener.names
    metadata_dir: Path
    rack: str | None
    session_timeout_ms: int
    heartbeat_interval_ms: int

    @property
    def is_broker(self) -> bool:
        return "broker" in self.roles

    @property
    def is_controller(self) -> bool:
        return "controller" in self.roles

    @staticmethod
    def from_config(cfg: BrokerConfig) -> KRaftSettings | None:
        """None when process.roles is not set: the node runs standalone (single node, no quorum)."""
        raw = cfg.get("process.roles")
        if not raw:
            return None
        roles = frozenset(r.strip() for r in str(raw).split(",") if r.strip())
        if not roles or not roles <= {"broker", "controller"}:
            raise ValueError(f"process.roles must be broker, controller or broker,controller, not {raw!r}")
        voters_raw = cfg.get("controller.quorum.voters")
        if not voters_raw:
            raise ValueError("process.roles is set, so controller.quorum.voters must be too")
        voters = parse_voters(str(voters_raw))
        node_id = cfg.node_id
        if "controller" in roles and node_id not in voters:
            raise ValueError(f"node.id={node_id} has the controller role but is not in controller.quorum.voters")
        names = [n.strip().upper() for n in str(cfg.get("controller.listener.names") or "CONTROLLER").split(",")]
        metadata_dir = cfg.get("metadata.log.dir")
        return KRaftSettings(
            roles=roles, node_id=node_id, voters=voters, controller_listener=names[0],
            metadata_dir=Path(str(metadata_dir)) if metadata_dir else cfg.log_dirs[0],
            rack=str(cfg.get("broker.rack")) if cfg.get("broker.rack") else None,
            session_timeout_ms=cfg.get_int("broker.session.timeout.ms"),
            heartbeat_interval_ms=cfg.get_int("broker.heartbeat.interval.ms"),
        )
