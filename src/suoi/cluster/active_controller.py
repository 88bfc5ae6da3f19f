"""What a node does while it is the active controller, around the sans-IO `QuorumController`.

The runtime (`kraft.py`) decides *when* this node becomes or stops being the active controller
(Raft leadership and its first committed entry); this module holds what happens then: the
controller's settings from Kafka's properties, the first records of a new metadata log
(finalized features, `--add-scram` credentials, a standalone dir's topics), the periodic tick
(session expiry, auto leader rebalance) and the probe that fences a broker whose process is gone.
Kept apart so the quorum plumbing and the controller's duties can be read, and changed, alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from suoi.cluster.scram_bootstrap import read_bootstrap_records
from suoi.cluster.settings import KRaftSettings
from suoi.controller.controller import ControllerConfig
from suoi.controller.records import Listener
from suoi.model.errors import NotControllerError

if TYPE_CHECKING:
    from suoi.cluster.runtime_protocol import KRaftRuntime
    from suoi.node import Node

__all__ = ["all_endpoints_refuse", "bootstrap_metadata", "controller_config", "controller_ticks"]

log = logging.getLogger("suoi.cluster")

#: How often the active controller ticks while no unfenced broker gives it a deadline (a quorum
#: with no broker yet, start-up): one registering and heartbeating is then fenced on time.
TICK_INTERVAL_S = 0.2
#: The longest wait for the controller's next deadline (session expiry, a suspect's fencing, the
#: auto leader rebalance): a bound on what a missed wake-up or a stepped clock could delay.
MAX_TICK_WAIT_S = 5.0


def _validate_broker_configs(name: str, overrides: Mapping[str, str]) -> None:
    """The controller's check of a BROKER resource: only dynamic keys, with valid values."""
    from suoi.dynamic_config import validate

    for key, value in overrides.items():
        validate(key, value, cluster_default=name == "")


def controller_config(node: Node, settings: KRaftSettings) -> ControllerConfig:
    """The `QuorumController`'s settings from the node's Kafka properties."""
    cfg = node.config
    return ControllerConfig(
        node_id=settings.node_id,
        session_timeout_ms=settings.session_timeout_ms,
        connection_loss_fence_ms=cfg.get_int("broker.connection.loss.fence.ms"),
        num_partitions=cfg.get_int("num.partitions"),
        default_replication_factor=cfg.get_int("default.replication.factor"),
        delete_topic_enable=cfg.get_bool("delete.topic.enable"),
        auto_leader_rebalance_enable=cfg.get_bool("auto.leader.rebalance.enable"),
        leader_imbalance_check_interval_ms=cfg.get_int("leader.imbalance.check.interval.seconds") * 1000,
        leader_imbalance_per_broker_percentage=cfg.get_int("leader.imbalance.per.broker.percentage"),
        log_config=node.log_config,
        broker_config_validator=_validate_broker_configs,
    )


async def bootstrap_metadata(kraft: KRaftRuntime) -> None:
    """A new metadata log gets its finalized feature levels (metadata.version) first, with the
    SCRAM credentials of `suoi storage format --add-scram` (KIP-900), then a standalone data
    dir's topics (`suoi.cluster.migration`)."""
    bootstrap = read_bootstrap_records(kraft.settings.metadata_dir)
    try:
        await kraft.run_on_controller(lambda c: c.bootstrap_features(bootstrap))
        if kraft.migration is not None and not kraft.migrated.is_set():
            await kraft.run_on_controller(kraft.migration.apply)
    except NotControllerError as exc:  # the next active controller writes them
        log.info("bootstrap feature levels not written: %s", exc)


async def controller_ticks(kraft: KRaftRuntime) -> None:
    """Tick the active controller, whichever it is at the time, until the node stops; a tick
    that raises drops the controller (it is rebuilt from the committed image when leading).

    Armed on demand (issue 19, a node at idle): a tick is due at the controller's
    `next_deadline` (a session running out, a suspect broker's fencing, the auto leader
    rebalance), not every `TICK_INTERVAL_S` (5 wake-ups a second on every controller node, the
    followers' too, with nothing to do). What can bring the deadline nearer wakes the loop
    (`KRaftServices.kick_controller_ticks`): a new or lost active controller, a broker's heartbeat
    connection closing, a broker found gone. A heartbeat only pushes a session's end later."""
    wake = kraft.controller_tick_wake
    ticked = False
    while not kraft.stopping:
        wake.clear()
        controller = kraft.controller
        if controller is None:
            await wake.wait()  # set when this node becomes the active controller (or stops)
            continue
        deadline = controller.next_deadline()
        delay = TICK_INTERVAL_S if deadline is None else (deadline - kraft.broker.now_ms()) / 1000
        if ticked:  # still due right after a tick: at the old cadence, never a hot loop
            delay, ticked = max(delay, TICK_INTERVAL_S), False
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(delay, MAX_TICK_WAIT_S)):
                    await wake.wait()
            continue  # woken or timed out: look again (the controller or its deadline may have changed)
        ticked = True
        try:
            controller.tick(kraft.broker.now_ms())
            moved = getattr(controller, "last_rebalance", None)
            if moved:
                log.info("auto leader rebalance: preferred leaders elected for %s", list(moved))
        except Exception:
            log.exception("controller tick failed; dropping the controller")
            kraft.controller = None


async def all_endpoints_refuse(listeners: Sequence[Listener]) -> bool:
    """Whether every endpoint a broker registered refuses a connection: its process is gone (a
    host that is down times out instead, and the session's grace period applies)."""
    for listener in listeners:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(listener.host, listener.port), 1.0)
        except ConnectionRefusedError:
            continue
        except (OSError, TimeoutError):
            return False  # unreachable or slow: not proof of death
        writer.close()
        return False  # something listens: alive (it will reconnect and heartbeat)
    return True
