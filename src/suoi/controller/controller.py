"""QuorumController: the active controller's decision logic, sans-IO.

One instance lives on the Raft leader of the metadata quorum, built from the committed image
once the leader has replayed its whole log. Every operation validates against the
controller's *working state* (the committed image plus everything this instance appended),
stages records, hands them as one batch to the ``append`` callback (``RaftNode.append`` of
``encode_batch(records)``), applies them to the working state and returns a
`ControllerResult`; the runtime answers the request when Raft commits ``result.offset``.

Soft state that is not in the log (as in Kafka): the time of each broker's last heartbeat
(on construction every registered broker gets a full session from ``now``), the offset of
each broker's registration (for brokers registered before this instance: the image offset),
and the committed offset the runtime reports through `on_commit`.

If ``append`` raises (the node lost leadership), the working state is ahead of the log: the
instance refuses further work and the runtime must build a new one when it leads again.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Sequence
from typing import TypeVar

from suoi.authorizer.acl import AclBinding, AclBindingFilter
from suoi.controller import acls as _acls
from suoi.controller import client_quotas as _client_quotas
from suoi.controller import configs as _configs
from suoi.controller import features as _features
from suoi.controller import partitions as _partitions
from suoi.controller import reassignments as _reassignments
from suoi.controller import scram as _scram
from suoi.controller import topics as _topics
from suoi.controller.context import ControllerConfig
from suoi.controller.errors import ApiError
from suoi.controller.image import BrokerRegistration, ConfigResourceType, MetadataBuilder, MetadataImage
from suoi.controller.messages import (
    AlterConfigsResource,
    AlterConfigsResult,
    AlterPartitionResult,
    ControllerResult,
    CreatePartitionsResult,
    CreateTopicResult,
    DeleteTopicResult,
    ElectionResult,
    ElectionType,
    HeartbeatResult,
    IncrementalAlterConfigsResource,
    NewPartitions,
    NewTopic,
    OngoingReassignment,
    ProducerIdsResult,
    ReassignmentResult,
    RegisterBrokerResult,
    UnregisterBrokerResult,
)
from suoi.controller.records import (
    BeginControlledShutdown,
    FenceBroker,
    Listener,
    ProducerIds,
    Record,
    RegisterBroker,
    UnfenceBroker,
    UnregisterBroker,
)
from suoi.model import ErrorCode

__all__ = ["ControllerConfig", "QuorumController"]

T = TypeVar("T")


class QuorumController:
    """See the module docstring. Public operations return `ControllerResult`s; the helpers
    without a leading underscore below the operations are for the operation modules."""

    def __init__(
        self,
        image: MetadataImage,
        *,
        append: Callable[[Sequence[Record]], int],
        now: int,
        config: ControllerConfig | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config or ControllerConfig()
        self.state = MetadataBuilder.from_image(image)
        self._append = append
        self._rng = rng or random.Random()
        self._pending: list[Record] = []
        self._last_offset = image.offset
        self._committed_offset = image.offset
        self._broken = False
        self._last_contact: dict[int, int] = {b: now for b in image.brokers}
        #: broker id -> when it is fenced unless it heartbeats first (its connection closed). A
        #: new active controller has seen no connection yet: every live broker must find it and
        #: heartbeat within half a session (a broker that died with the old controller, as in a
        #: combined node, is fenced then rather than after a whole session).
        self._suspect_until: dict[int, int] = {}
        if self.config.connection_loss_fence_ms > 0:
            grace = max(self.config.connection_loss_fence_ms, self.config.session_timeout_ms // 2)
            self._suspect_until = {b: now + grace for b, reg in image.brokers.items() if not reg.fenced}
        self._registration_offset: dict[int, int] = {b: image.offset for b in image.brokers}
        self._next_rebalance = now + self.config.leader_imbalance_check_interval_ms
        #: Partitions the last `tick` moved back to their preferred leader (auto leader rebalance).
        self.last_rebalance: list[tuple[str, int]] = []

    @property
    def image(self) -> MetadataImage:
        """The working state (includes appended, not yet committed records)."""
        return self.state.image()

    @property
    def last_offset(self) -> int:
        return self._last_offset

    def on_commit(self, offset: int) -> None:
        """The Raft high watermark moved: entries below ``offset + 1`` are committed."""
        self._committed_offset = max(self._committed_offset, offset)

    # ------------------------------------------------------------------ brokers

    def register_broker(
        self,
        broker_id: int,
        incarnation_id: uuid.UUID,
        listeners: Sequence[Listener],
        rack: str | None,
        now: int,
        *,
        previous_broker_epoch: int = -1,
    ) -> ControllerResult[RegisterBrokerResult]:
        """Kafka's ClusterControlManager.registerBroker: another incarnation of a registered,
        unfenced broker id whose session is alive is DUPLICATE_BROKER_REGISTRATION -- unless the
        request names that registration's epoch as its ``previous_broker_epoch`` (KIP-966's
        field): only the process that registered it knows it (the broker records each epoch it
        gets in its own metadata dir, `suoi.cluster.previous_epoch`), so this is that broker
        restarted after a crash, and its old session belongs to a process that is gone. Without
        it, a SIGKILLed node waited out broker.session.timeout.ms before it could register (a
        newly active controller gives every registration a whole session, as Kafka's does)."""
        self._check()
        if broker_id < 0:
            return self.finish(RegisterBrokerResult(ErrorCode.invalid_request, f"Invalid broker id {broker_id}."))
        old = self.state.broker(broker_id)
        if (old is not None and old.incarnation_id != incarnation_id and not old.fenced
                and (previous_broker_epoch < 0 or previous_broker_epoch != old.epoch) and self._session_alive(broker_id, now)):
            return self.finish(RegisterBrokerResult(ErrorCode.duplicate_broker_registration,
                                                    "Another broker is registered with that broker id."))
        epoch = max(self.state.broker_epoch_high, self._last_offset) + 1
        self.stage(RegisterBroker(broker_id=broker_id, incarnation_id=incarnation_id, broker_epoch=epoch,
                                  listeners=tuple(listeners), rack=rack, fenced=True))
        if old is not None and not old.fenced:
            _partitions.remove_broker_from_isrs(self, broker_id)
        self._last_contact[broker_id] = now
        return self.finish(RegisterBrokerResult(ErrorCode.none, None, epoch))

    def unregister_broker(self, broker_id: int) -> ControllerResult[UnregisterBrokerResult]:
        self._check()
        reg = self.state.broker(broker_id)
        if reg is None:
            return self.finish(UnregisterBrokerResult(ErrorCode.broker_id_not_registered,
                                                      f"Broker ID {broker_id} is not currently registered"))
        self._fence(reg)
        self.stage(UnregisterBroker(broker_id=broker_id, broker_epoch=reg.epoch))
        self._last_contact.pop(broker_id, None)
        return self.finish(UnregisterBrokerResult())

    def heartbeat(
        self,
        broker_id: int,
        broker_epoch: int,
        *,
        want_fence: bool,
        want_shutdown: bool,
        current_metadata_offset: int,
        now: int,
    ) -> ControllerResult[HeartbeatResult]:
        """BrokerHeartbeat (Kafka's BrokerHeartbeatManager states):

        * fenced: stays fenced while it wants to, or until its metadata offset reaches its
          registration record; then UnfenceBroker (and leaders for leaderless partitions it
          can lead). A fenced broker that wants to shut down may do so at once.
        * unfenced + want_shutdown: if it leads partitions, BeginControlledShutdown and move
          them (and the broker out of ISRs) first, ``should_shutdown`` stays false; once it
          leads nothing, it is fenced and told to shut down.
        * unfenced + want_fence: fenced.
        """
        self._check()
        try:
            reg = self.check_broker_epoch(broker_id, broker_epoch)
        except ApiError as e:
            return self.finish(HeartbeatResult(e.code, e.message))
        self._last_contact[broker_id] = now
        self._suspect_until.pop(broker_id, None)
        should_shutdown = False
        if reg.fenced:
            if want_shutdown:
                should_shutdown = True
            elif not want_fence and current_metadata_offset >= self._registration_offset.get(broker_id, self._last_offset):
                self.stage(UnfenceBroker(broker_id=broker_id, broker_epoch=reg.epoch))
                _partitions.elect_leaderless(self, broker_id)
        elif want_shutdown or reg.in_controlled_shutdown:
            if not self._leads_any(broker_id):
                self._fence(reg)
                should_shutdown = True
            elif not reg.in_controlled_shutdown:
                self.stage(BeginControlledShutdown(broker_id=broker_id, broker_epoch=reg.epoch))
                _partitions.remove_broker_from_isrs(self, broker_id)
            else:  # still leads something (should not happen): try again to move it
                _partitions.remove_broker_from_isrs(self, broker_id)
        elif want_fence:
            self._fence(reg)
        after = self.state.broker(broker_id)
        assert after is not None
        return self.finish(HeartbeatResult(
            ErrorCode.none, None,
            is_caught_up=current_metadata_offset >= self._committed_offset,
            is_fenced=after.fenced,
            should_shutdown=should_shutdown,
        ))

    def connection_lost(self, broker_id: int, broker_epoch: int, now: int, *, refused: bool = False) -> None:
        """The connection `broker_id` heartbeats on closed. A live broker reconnects and
        heartbeats within its heartbeat interval; a dead process (its sockets closed by the OS
        when it was killed) does not, and is fenced after ``connection_loss_fence_ms`` instead
        of the whole session timeout, so its partitions get new leaders sooner. ``refused``:
        the runtime found nothing listening on the broker's endpoints any more (its process is
        gone), so it is fenced at the next `tick`. Not an operation: nothing is written until
        `tick` fences."""
        reg = self.state.broker(broker_id)
        if self.config.connection_loss_fence_ms <= 0 or reg is None or reg.epoch != broker_epoch or reg.fenced:
            return
        deadline = now if refused else now + self.config.connection_loss_fence_ms
        self._suspect_until[broker_id] = min(deadline, self._suspect_until.get(broker_id, deadline))

    def tick(self, now: int) -> ControllerResult[list[int]]:
        """Fence brokers whose session expired (no heartbeat for more than
        ``session_timeout_ms``), moving their leaderships; the response lists them. Every
        ``leader_imbalance_check_interval_ms`` (when enabled) also run the auto leader
        rebalance (`partitions.rebalance_leaders`; what this tick moved is in `last_rebalance`).
        One batch for both."""
        self._check()
        self.last_rebalance = []
        fenced: list[int] = []
        for reg in self.state.brokers():
            if reg.fenced:
                self._suspect_until.pop(reg.broker_id, None)
                continue
            expired = now - self._last_contact.setdefault(reg.broker_id, now) > self.config.session_timeout_ms
            if expired or now >= self._suspect_until.get(reg.broker_id, now + 1):
                self._suspect_until.pop(reg.broker_id, None)
                self._fence(reg)
                fenced.append(reg.broker_id)
        if self.config.auto_leader_rebalance_enable and now >= self._next_rebalance:
            self._next_rebalance = now + self.config.leader_imbalance_check_interval_ms
            self.last_rebalance = _partitions.rebalance_leaders(self, self.config.leader_imbalance_per_broker_percentage)
        return self.finish(fenced)

    def next_deadline(self) -> int | None:
        """When `tick` next has something to do: fence someone or check the leader balance
        (None: no unfenced broker, so neither)."""
        times = [self._last_contact.get(b.broker_id, 0) for b in self.state.brokers() if not b.fenced]
        if not times:
            return None
        deadline = min(times) + self.config.session_timeout_ms + 1
        if self._suspect_until:
            deadline = min(deadline, min(self._suspect_until.values()))
        if self.config.auto_leader_rebalance_enable:
            deadline = min(deadline, self._next_rebalance)
        return deadline

    def allocate_producer_ids(self, broker_id: int, broker_epoch: int) -> ControllerResult[ProducerIdsResult]:
        self._check()
        try:
            reg = self.check_broker_epoch(broker_id, broker_epoch)
        except ApiError as e:
            return self.finish(ProducerIdsResult(e.code, e.message))
        start = self.state.next_producer_id
        size = self.config.producer_id_block_size
        self.stage(ProducerIds(broker_id=broker_id, broker_epoch=reg.epoch, next_producer_id=start + size))
        return self.finish(ProducerIdsResult(ErrorCode.none, None, start, size))

    # ------------------------------------------------------------------ topics, configs, partitions

    def create_topics(self, topics: Sequence[NewTopic], *, validate_only: bool = False
                      ) -> ControllerResult[list[CreateTopicResult]]:
        self._check()
        return _topics.create_topics(self, topics, validate_only)

    def delete_topics(self, names: Sequence[str] = (), topic_ids: Sequence[uuid.UUID] = ()
                      ) -> ControllerResult[list[DeleteTopicResult]]:
        self._check()
        return _topics.delete_topics(self, names, topic_ids)

    def create_partitions(self, topics: Sequence[NewPartitions], *, validate_only: bool = False
                          ) -> ControllerResult[list[CreatePartitionsResult]]:
        self._check()
        return _topics.create_partitions(self, topics, validate_only)

    def alter_configs(self, resources: Sequence[AlterConfigsResource], *, validate_only: bool = False
                      ) -> ControllerResult[list[AlterConfigsResult]]:
        self._check()
        return _configs.alter_configs(self, resources, validate_only)

    def incremental_alter_configs(self, resources: Sequence[IncrementalAlterConfigsResource], *,
                                  validate_only: bool = False) -> ControllerResult[list[AlterConfigsResult]]:
        self._check()
        return _configs.incremental_alter_configs(self, resources, validate_only)

    def alter_partition(self, broker_id: int, broker_epoch: int, topic_id: uuid.UUID, partition: int,
                        leader_epoch: int, partition_epoch: int, new_isr: Sequence[int]
                        ) -> ControllerResult[AlterPartitionResult]:
        self._check()
        return _partitions.alter_partition(self, broker_id, broker_epoch, topic_id, partition, leader_epoch,
                                           partition_epoch, new_isr)

    def elect_leaders(self, election_type: ElectionType, partitions: Sequence[tuple[str, int]] | None
                      ) -> ControllerResult[list[ElectionResult]]:
        self._check()
        return _partitions.elect_leaders(self, election_type, partitions)

    def alter_partition_reassignments(self, reassignments: Sequence[tuple[str, int, Sequence[int] | None]]
                                      ) -> ControllerResult[list[ReassignmentResult]]:
        """(topic, partition, target replicas or None to cancel) each; see reassignments.py."""
        self._check()
        return _reassignments.alter_partition_reassignments(self, reassignments)

    def list_partition_reassignments(self, partitions: Sequence[tuple[str, int]] | None = None
                                     ) -> ControllerResult[list[OngoingReassignment]]:
        self._check()
        return _reassignments.list_partition_reassignments(self, partitions)

    def replicas_offline(self, broker_id: int, broker_epoch: int, partitions: Sequence[tuple[uuid.UUID, int]]
                         ) -> ControllerResult[tuple[ErrorCode, dict[tuple[uuid.UUID, int], ErrorCode]]]:
        """A broker lost these replicas (their log dir failed, KIP-858): it leaves their ISRs
        and, where it led and another ISR member is eligible, a new leader is elected (as Kafka's
        controller does for replicas in an offline dir). A replica alone in its ISR stays (the
        ISR is never empty). The response: (top-level error, error per partition)."""
        self._check()
        try:
            self.check_broker_epoch(broker_id, broker_epoch)
        except ApiError as e:
            return self.finish((e.code, {}))
        errors: dict[tuple[uuid.UUID, int], ErrorCode] = {}
        for topic_id, partition in partitions:
            reg = self.state.partition(topic_id, partition)
            if reg is None or broker_id not in reg.replicas:
                errors[(topic_id, partition)] = ErrorCode.unknown_topic_or_partition if reg is None else ErrorCode.invalid_request
                continue
            change = _partitions.partition_change(self, topic_id, partition, remove=broker_id)
            if change is not None:
                self.stage(change)
            errors[(topic_id, partition)] = ErrorCode.none
        return self.finish((ErrorCode.none, errors))

    def update_features(self, updates: Sequence[_features.FeatureUpdate], *, validate_only: bool = False
                        ) -> ControllerResult[_features.FeatureUpdateResult]:
        """UpdateFeatures (KIP-584): all updates or none; see features.py."""
        self._check()
        return _features.update_features(self, updates, validate_only)

    def create_acls(self, bindings: Sequence[AclBinding]) -> ControllerResult[list[_acls.AclResult]]:
        """CreateAcls: one result per binding (see acls.py)."""
        self._check()
        return _acls.create_acls(self, bindings)

    def delete_acls(self, filters: Sequence[AclBindingFilter]) -> ControllerResult[list[_acls.DeleteAclsResult]]:
        """DeleteAcls: per filter, the bindings it removed (see acls.py)."""
        self._check()
        return _acls.delete_acls(self, filters)

    def alter_client_quotas(self, alterations: Sequence[_client_quotas.QuotaAlteration], *,
                            validate_only: bool = False) -> ControllerResult[list[tuple[ErrorCode, str | None]]]:
        """AlterClientQuotas (KIP-546): one (error, message) per entity (see client_quotas.py)."""
        self._check()
        return _client_quotas.alter_client_quotas(self, alterations, validate_only)

    def bootstrap_features(self, bootstrap: Sequence[Record] = ()) -> ControllerResult[None]:
        """Write the bootstrap feature levels a metadata log lacks (a new cluster, or one made by
        a suoi that predates them); nothing when they are there. ``bootstrap``: records from
        `suoi storage format --add-scram` (KIP-900), written with them into a log that has neither
        feature levels nor SCRAM credentials yet, i.e. a new cluster."""
        self._check()
        image = self.state.image()
        fresh = not image.features and not image.scram
        for record in _features.bootstrap_records(image.features):
            self.stage(record)
        for bootstrap_record in bootstrap if fresh else ():
            self.stage(bootstrap_record)
        return self.finish(None)

    def alter_user_scram_credentials(self, deletions: Sequence[_scram.ScramDeletion],
                                     upsertions: Sequence[_scram.ScramUpsertion]
                                     ) -> ControllerResult[list[_scram.UserResult]]:
        """AlterUserScramCredentials (KIP-554); see scram.py."""
        self._check()
        return _scram.alter_user_scram_credentials(self, deletions, upsertions)

    # ------------------------------------------------------------------ helpers for the operation modules

    def stage(self, record: Record) -> None:
        """Apply ``record`` to the working state; it is appended by the next `finish`."""
        try:
            self.state.apply(record)
        except Exception:
            self._broken = True
            raise
        self._pending.append(record)

    def finish(self, response: T) -> ControllerResult[T]:
        """Append the staged records as one batch and wrap the response."""
        records = tuple(self._pending)
        self._pending.clear()
        if records:
            try:
                offset = self._append(records)
            except BaseException:
                self._broken = True
                raise
            self.state.set_position(offset)
            self._last_offset = offset
            for r in records:
                if isinstance(r, RegisterBroker):
                    self._registration_offset[r.broker_id] = offset
        return ControllerResult(response, records, self._last_offset)

    def eligible(self, broker_id: int) -> bool:
        reg = self.state.broker(broker_id)
        return reg is not None and reg.eligible

    def check_broker_epoch(self, broker_id: int, broker_epoch: int) -> BrokerRegistration:
        reg = self.state.broker(broker_id)
        if reg is None:
            raise ApiError(ErrorCode.stale_broker_epoch, f"No broker registration found for broker {broker_id}")
        if reg.epoch != broker_epoch:
            raise ApiError(ErrorCode.stale_broker_epoch,
                           f"Expected broker epoch {reg.epoch}, but got broker epoch {broker_epoch}")
        return reg

    def unclean_enabled(self, topic_id: uuid.UUID) -> bool:
        name = self.state.topic_name(topic_id) or ""
        key = "unclean.leader.election.enable"
        value = self.state.configs(ConfigResourceType.TOPIC, name).get(key)
        if value is None:
            value = self.state.configs(ConfigResourceType.BROKER, "").get(key)
        if value is None:
            return self.config.unclean_leader_election_enable
        return value.strip().lower() == "true"

    def new_topic_id(self) -> uuid.UUID:
        while True:
            tid = self.new_uuid()
            if self.state.topic_name(tid) is None:
                return tid

    def new_uuid(self) -> uuid.UUID:
        """A random (version 4) UUID from the injected rng."""
        return uuid.UUID(int=self._rng.getrandbits(128), version=4)

    def _fence(self, reg: BrokerRegistration) -> None:
        if not reg.fenced:
            self.stage(FenceBroker(broker_id=reg.broker_id, broker_epoch=reg.epoch))
            _partitions.remove_broker_from_isrs(self, reg.broker_id)

    def _leads_any(self, broker_id: int) -> bool:
        return any(reg.leader == broker_id for _, _, reg in self.state.iter_partitions())

    def expire_session(self, broker_id: int) -> None:
        """The broker's earlier incarnation is known to be gone (a single node's own previous
        process, which nothing else can register as): its session no longer blocks a new
        registration (no DUPLICATE_BROKER_REGISTRATION until the session timeout). Not an
        operation: nothing is written."""
        self._last_contact.pop(broker_id, None)
        self._suspect_until.pop(broker_id, None)

    def _session_alive(self, broker_id: int, now: int) -> bool:
        last = self._last_contact.get(broker_id)
        return last is not None and now - last <= self.config.session_timeout_ms

    def _check(self) -> None:
        if self._broken:
            raise RuntimeError("controller state is ahead of the log after a failed append; "
                               "build a new QuorumController from the committed image")
        if self._pending:  # an operation raised midway
            raise RuntimeError("records staged by a failed operation were never appended")
