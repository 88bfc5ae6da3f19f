"""Bringing a broker's local partition logs and replica roles to the newest metadata image.

The image says which topics exist and which replicas this broker hosts, leads or follows; the
reconciler makes the disk and the replica manager match it: creates and deletes local logs,
applies topic config changes, hands leader/follower roles to `ReplicaManager.apply`, and takes
dynamic broker configs from the image. It is one task, apart from the quorum runtime, because it
is the only slow consumer of images: a round runs in 5 ms slices (`Pacer`) so a topic of
thousands of partitions never freezes the node, and images published meanwhile are merged into
the next round (the delta from the last reconciled image covers them).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from suoi.cluster.log_work import LogRemovals, detach_topic, open_missing_logs
from suoi.cluster.pacing import Pacer
from suoi.controller.delta import LocalChanges, LocalPartition, MetadataDelta
from suoi.controller.image import ConfigResourceType, MetadataImage
from suoi.log.errors import KafkaStorageError
from suoi.partition.replica_manager import ReplicaManager

if TYPE_CHECKING:
    from suoi.node import Node

__all__ = ["LocalReconciler"]

log = logging.getLogger("suoi.cluster")


class LocalReconciler:
    """``current`` returns the newest published image; ``on_round`` runs after each round (the
    image waiters that wait for the applied image look again)."""

    def __init__(self, node: Node, node_id: int, replicas: ReplicaManager | None, *,
                 current: Callable[[], MetadataImage], migrated: asyncio.Event,
                 on_round: Callable[[], None]) -> None:
        self.node = node
        self.node_id = node_id
        self.replicas = replicas
        self._current = current
        self._migrated = migrated
        self._on_round = on_round
        #: The image the local logs and replica roles match (`run` moves it to the newest).
        self.reconciled: MetadataImage = current()
        self._wanted = asyncio.Event()
        self._stopping = False
        #: Directories of local logs this node no longer hosts, renamed and removed off the loop.
        self.removals = LogRemovals()

    def request(self) -> None:
        """A new image was published: the next round brings the local logs to it."""
        self._wanted.set()

    def stop(self) -> None:
        """The running round finishes; no other starts."""
        self._stopping = True
        self._wanted.set()

    async def run(self) -> None:
        """Rounds until stopped. Not before a standalone dir's topics are in the image: a round
        deletes local topics the image does not name."""
        await self._migrated.wait()
        while not self._stopping:
            await self._wanted.wait()
            self._wanted.clear()
            if self._stopping:
                return
            target = self._current()
            if target is self.reconciled:
                continue
            try:
                await self._reconcile(self.reconciled, target)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reconciling local replicas with metadata offset %d failed", target.offset)
            self.reconciled = target
            self._on_round()

    async def _reconcile(self, old: MetadataImage, new: MetadataImage) -> None:
        logs = self.node.logs
        me = self.node_id
        pacer = Pacer()
        delta = MetadataDelta.between(old, new)
        local = delta.local_changes(me)
        removals = self.removals
        for name in {lp.topic_name for lp in local.deleted} | set(logs.topics()):
            if logs.topic(name) is not None and new.topic(name) is None:
                removals.pending += await detach_topic(logs, name, pacer)
                log.info("deleted local replicas of topic %s", name)
        reconfigured = {name for rtype, name in delta.changed_configs if rtype == ConfigResourceType.TOPIC}
        failed_before = set(logs.failed)
        retry = {name for name, _ in failed_before}  # logs that could not be created: try again
        changed = [t for tid, t in new.topics.items()
                   if old.topics.get(tid) is not t or t.name in reconfigured or t.name in retry]
        hosting = []
        for topic in changed:
            hosted = {p for p, reg in topic.partitions.items() if me in reg.replicas}
            if not hosted and logs.topic(topic.name) is None:
                continue
            try:
                logs.host_partitions(topic.name, topic.topic_id, topic.num_partitions, hosted,
                                     dict(new.topic_configs(topic.name)), open_logs=False,
                                     detached=removals.pending)
                hosting.append(topic.name)
            except Exception:
                log.exception("cannot reconcile local replicas of %s", topic.name)
            await pacer.tick()
        await removals.set_aside()  # before any log is created: a re-created name meets no old files
        created = 0
        for name in hosting:
            try:
                created += await open_missing_logs(logs, name, pacer)
            except KafkaStorageError as exc:  # its partitions answer KAFKA_STORAGE_ERROR / NOT_LEADER
                log.error("cannot create the local logs of %s (%d partitions missing): %s", name,
                          len(logs.missing_partitions(name)), exc)
            except Exception:
                log.exception("cannot create the local logs of %s", name)
        if created:
            log.info("created %d local partition logs (metadata offset %d)", created, new.offset)
        deleted = {t.name for tid, t in old.topics.items() if tid not in new.topics}
        if deleted:
            self.node.groups.on_topics_deleted(deleted)  # their committed offsets go too, as in Kafka
        if self.replicas is not None:
            retried = [key for key in failed_before if key not in logs.failed and logs.get_log(*key) is not None]
            await self.replicas.apply(old, new, pacer, with_retried(local, new, retried, me))
        if old.offset < 0 or any(rtype == ConfigResourceType.BROKER and name in ("", str(me))
                                 for rtype, name in delta.changed_configs):
            self._apply_broker_configs(new)

    def _apply_broker_configs(self, image: MetadataImage) -> None:
        """Dynamic broker configs (cluster default and this broker's) from the metadata log."""
        dynamic = self.node.dynamic_configs
        default, mine = dict(image.broker_configs(None)), dict(image.broker_configs(self.node_id))
        if dynamic.layer(cluster_default=True) == default and dynamic.layer(cluster_default=False) == mine:
            return
        try:
            dynamic.replace(default, cluster_default=True)
            dynamic.replace(mine, cluster_default=False)
        except OSError as exc:  # the local copy is a cache; the values still apply
            log.warning("cannot persist dynamic broker configs: %s", exc)
        self.node.reconfigure()
        from suoi.dynamic_config import redacted

        log.info("dynamic broker configs from the metadata log: cluster default %s, broker %d %s",
                 redacted(default), self.node_id, redacted(mine))


def with_retried(local: LocalChanges, image: MetadataImage, retried: list[tuple[str, int]], me: int) -> LocalChanges:
    """`local` plus the leader/follower roles of partitions whose log was created only now, by a
    retry of an earlier round's failure: their registration did not change, so the delta does not
    name them, yet the role the earlier round could not take (no log) must not be lost."""
    if not retried:
        return local
    named = {(lp.topic_name, lp.partition) for lp in (*local.leaders, *local.followers)}
    leaders, followers = list(local.leaders), list(local.followers)
    for name, p in sorted(retried):
        topic = image.topic(name)
        reg = None if topic is None else topic.partitions.get(p)
        if topic is None or reg is None or (name, p) in named or me not in reg.replicas:
            continue
        (leaders if reg.leader == me else followers).append(LocalPartition(name, topic.topic_id, p, reg))
    if len(leaders) == len(local.leaders) and len(followers) == len(local.followers):
        return local
    return LocalChanges(local.deleted, tuple(leaders), tuple(followers))

