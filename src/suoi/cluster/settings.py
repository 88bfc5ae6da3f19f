"""The broker properties that turn on KRaft mode, with Kafka's names."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from suoi.config import BrokerConfig
from suoi.log.meta_properties import StorageLayout
from suoi.raft_driver.properties import parse_voters


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
    #: controller.quorum.bootstrap.servers (KIP-853) of a broker-only node without voters:
    #: it learns the voters from them at start (`suoi.cluster.bootstrap`).
    bootstrap_servers: tuple[tuple[str, int], ...] = ()
    #: No process.roles: a combined broker+controller that is its whole quorum (Kafka 4's
    #: single-node quick start) with no CONTROLLER listener. Its own requests to the controller
    #: (registration, heartbeats, forwarding) are dispatched in process; nothing else can join it.
    implicit: bool = False

    @property
    def is_broker(self) -> bool:
        return "broker" in self.roles

    @property
    def is_controller(self) -> bool:
        return "controller" in self.roles

    @staticmethod
    def from_config(cfg: BrokerConfig) -> KRaftSettings:
        """Every node is a KRaft node; without process.roles it is `implicit_single_node`."""
        raw = cfg.get("process.roles")
        if not raw:
            return KRaftSettings.implicit_single_node(cfg)
        roles = frozenset(r.strip() for r in str(raw).split(",") if r.strip())
        if not roles or not roles <= {"broker", "controller"}:
            raise ValueError(f"process.roles must be broker, controller or broker,controller, not {raw!r}")
        node_id = cfg.node_id
        names = [n.strip().upper() for n in str(cfg.get("controller.listener.names") or "CONTROLLER").split(",")]
        voters_raw = cfg.get("controller.quorum.voters")
        bootstrap_raw = cfg.get("controller.quorum.bootstrap.servers")
        bootstrap: tuple[tuple[str, int], ...] = ()
        if voters_raw:
            voters = parse_voters(str(voters_raw))
        elif bootstrap_raw:
            bootstrap = parse_bootstrap_servers(str(bootstrap_raw))
            voters = _standalone_voter(cfg, node_id, names, bootstrap) if "controller" in roles else {}
        else:
            raise ValueError("process.roles is set, so controller.quorum.voters (or "
                             "controller.quorum.bootstrap.servers) must be too")
        if "controller" in roles and node_id not in voters:
            raise ValueError(f"node.id={node_id} has the controller role but is not in controller.quorum.voters")
        metadata_dir = cfg.get("metadata.log.dir")
        return KRaftSettings(
            roles=roles, node_id=node_id, voters=voters, controller_listener=names[0],
            metadata_dir=Path(str(metadata_dir)) if metadata_dir else cfg.log_dirs[0],
            rack=str(cfg.get("broker.rack")) if cfg.get("broker.rack") else None,
            session_timeout_ms=cfg.get_int("broker.session.timeout.ms"),
            heartbeat_interval_ms=cfg.get_int("broker.heartbeat.interval.ms"),
            bootstrap_servers=bootstrap if not voters else (),
        )


    @staticmethod
    def implicit_single_node(cfg: BrokerConfig) -> KRaftSettings:
        """No process.roles: one combined node whose quorum is itself. No CONTROLLER listener is
        bound for it (nobody else could use one: another voter would need a static quorum, a
        broker would need a listener to register on), so its voter address is a placeholder
        (port 0) that is never dialled; configure process.roles to grow into a cluster."""
        for key in ("controller.quorum.voters", "controller.quorum.bootstrap.servers"):
            if cfg.get(key):
                raise ValueError(f"{key} is set but process.roles is not: set process.roles "
                                 "(broker, controller or broker,controller) too")
        metadata_dir = cfg.get("metadata.log.dir")
        return KRaftSettings(
            roles=frozenset({"broker", "controller"}), node_id=cfg.node_id, voters={cfg.node_id: ("", 0)},
            controller_listener=cfg.controller_listener_names[0],
            metadata_dir=Path(str(metadata_dir)) if metadata_dir else cfg.log_dirs[0],
            rack=str(cfg.get("broker.rack")) if cfg.get("broker.rack") else None,
            session_timeout_ms=cfg.get_int("broker.session.timeout.ms"),
            heartbeat_interval_ms=cfg.get_int("broker.heartbeat.interval.ms"),
            implicit=True,
        )


#: What a node without process.roles changes in Kafka's defaults: it is the only broker its
#: cluster can ever have, so the internal topics get one replica (as Kafka's quick-start
#: server.properties sets them); explicit settings still win.
IMPLICIT_SINGLE_NODE_DEFAULTS = {
    "offsets.topic.replication.factor": 1,
    "transaction.state.log.replication.factor": 1,
    "transaction.state.log.min.isr": 1,
}


def parse_bootstrap_servers(raw: str) -> tuple[tuple[str, int], ...]:
    """`host:port,host:port` (IPv6 hosts in brackets)."""
    out = []
    for item in (x.strip() for x in raw.split(",")):
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep or not port.isdigit() or not host:
            raise ValueError(f"controller.quorum.bootstrap.servers: {item!r} is not host:port")
        out.append((host.strip("[]"), int(port)))
    if not out:
        raise ValueError("controller.quorum.bootstrap.servers is empty")
    return tuple(out)


_LOOPBACK = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "::", ""}


def _standalone_voter(cfg: BrokerConfig, node_id: int, controller_names: list[str],
                      bootstrap: tuple[tuple[str, int], ...]) -> dict[int, tuple[str, int]]:
    """A controller given only bootstrap servers: Kafka 4's single-node quick start
    (`kafka-storage format --standalone`), where the one bootstrap server is this node's own
    controller listener, so the quorum is this node alone. Several controllers need voters
    decided up front: suoi has no dynamic quorum membership (KIP-853 AddRaftVoter)."""
    own = [x for x in cfg.listeners if x.name in controller_names]
    if len(bootstrap) == 1 and own:
        host, port = bootstrap[0]
        if any(x.port == port and (x.host == host or {x.host or "", host} <= _LOOPBACK) for x in own):
            return {node_id: (host, port)}
    raise ValueError(
        "controller.quorum.bootstrap.servers on a controller works for a single-controller quorum "
        "(this node's own controller listener) only; with several controllers list them in "
        "controller.quorum.voters as id@host:port (suoi has no dynamic quorum membership)")


def storage_layout(config: BrokerConfig) -> StorageLayout:
    """The directories a node stamps with meta.properties (log.dirs and metadata.log.dir), and
    whether it may format itself: the only voter of its quorum."""
    settings = KRaftSettings.from_config(config)
    return StorageLayout.of(config.log_dirs, settings.metadata_dir, config.node_id,
                            config.get("cluster.id"),  # type: ignore[arg-type]
                            settings.voters)
