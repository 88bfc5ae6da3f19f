"""What each API must be authorized for (Kafka's KafkaApis checks), applied once at dispatch.

`check(ctx, request)` runs before the handler when the node has an authorizer and answers one of:

- `ALLOWED`: call the handler as is;
- `Deny(code)`: the whole request is refused: every error code of the response is ``code``
  (GROUP_AUTHORIZATION_FAILED for a JoinGroup, CLUSTER_AUTHORIZATION_FAILED for CreateAcls...);
- `Split(denied)`: some elements of the request's first array (its topics, groups, config
  resources, transactional ids) are refused: the handler sees the request without them and the
  response gets them back, each with its code (TOPIC_AUTHORIZATION_FAILED...), top-level error
  none. With ``all_or_nothing`` (AddPartitionsToTxn) the handler is not called at all and the
  allowed elements are answered OPERATION_NOT_ATTEMPTED, as Kafka does;
- `Filter(...)`: the handler runs and elements of the response's list that the principal may
  not describe are dropped (Metadata for all topics, ListGroups, ListTransactions).

The principal is the connection's `principal` attribute (``User:ANONYMOUS`` without one: a
PLAINTEXT connection, as in Kafka). Requests on a controller listener are also allowed when the
principal has CLUSTER_ACTION (a broker's own requests); a client's request forwarded in an
Envelope (`suoi.api.envelope`, KIP-590) is checked with the client's principal, as Kafka's
controller does; on a client listener, the forwardable admin requests (`FORWARDABLE`) are not
checked at all, since they are always forwarded so (Kafka's broker leaves the decision to the
controller rather than its own, possibly older, ACLs). Every denial is logged, rate-limited
(`AuditLog`).
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeAlias

from suoi.api.listener_roles import FORWARDABLE, ListenerRole
from suoi.api.raft_apis import _on_controller_listener
from suoi.api.registry import RequestContext
from suoi.authorizer import CLUSTER_NAME, AclOperation, ResourceType, StandardAuthorizer
from suoi.model import ErrorCode

__all__ = ["ALLOWED", "ANONYMOUS", "RULES", "Deny", "Filter", "Split", "check", "host_of", "principal_of"]

ANONYMOUS = "User:ANONYMOUS"
Op, Res = AclOperation, ResourceType
TOPIC_DENIED, GROUP_DENIED = ErrorCode.topic_authorization_failed, ErrorCode.group_authorization_failed
CLUSTER_DENIED, TXN_DENIED = ErrorCode.cluster_authorization_failed, ErrorCode.transactional_id_authorization_failed


@dataclass(frozen=True, slots=True)
class Deny:
    code: int


@dataclass(frozen=True, slots=True)
class Split:
    """Elements of the request's first array (by index) refused, with their codes."""

    denied: dict[int, int]
    all_or_nothing: bool = False
    #: call the handler even when every element is refused (Metadata: brokers must be listed)
    always_call: bool = False


@dataclass(frozen=True, slots=True)
class Filter:
    """Drop elements of response list ``array`` whose ``name_field`` the principal may not ``op``."""

    array: str
    name_field: str
    op: AclOperation
    resource_type: ResourceType


class _Allowed:
    def __repr__(self) -> str:
        return "ALLOWED"


ALLOWED = _Allowed()
Verdict: TypeAlias = "_Allowed | Deny | Split | Filter"


class AuditLog:
    """Denials, logged (Kafka's kafka.authorizer.logger) at most once per (principal, operation,
    resource) every ``interval_s``, so a client retrying a denied request cannot flood the log."""

    def __init__(self, interval_s: float = 60.0, max_keys: int = 10_000) -> None:
        self.interval_s = interval_s
        self.max_keys = max_keys
        self._last: dict[tuple[str, str, str, str], float] = {}
        self._log = logging.getLogger("suoi.authorizer.audit")

    def denied(self, principal: str, host: str, op: AclOperation, rtype: ResourceType, name: str) -> None:
        now = time.monotonic()
        key = (principal, op.name, f"{rtype.name}:{name}", host)
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            return
        if len(self._last) >= self.max_keys:
            self._last.clear()
        self._last[key] = now
        self._log.info("Principal = %s is Denied operation = %s from host = %s on resource = %s:LITERAL:%s",
                       principal, op.name, host, rtype.name, name)


AUDIT = AuditLog()


def principal_of(connection: Any) -> str:
    return getattr(connection, "principal", None) or ANONYMOUS


def host_of(ctx: RequestContext) -> str:
    """The client's address without its port (what ACL bindings' hosts name)."""
    return ctx.client_host.rsplit(":", 1)[0] if ":" in ctx.client_host else ctx.client_host


@dataclass(slots=True)
class Access:
    """One request's principal and host, asking the authorizer (and auditing denials)."""

    authorizer: StandardAuthorizer
    principal: str
    host: str
    ctx: RequestContext

    def allowed(self, op: AclOperation, rtype: ResourceType, name: str, *, audit: bool = True) -> bool:
        ok = self.authorizer.authorize(self.principal, self.host, op, rtype, name)
        if not ok and audit:
            AUDIT.denied(self.principal, self.host, op, rtype, name)
        return ok

    def cluster(self, op: AclOperation) -> bool:
        return self.allowed(op, Res.CLUSTER, CLUSTER_NAME)

    def topic_name(self, element: Any) -> str | None:
        """A request element's topic name (by name or, Fetch v13+, by topic id)."""
        if isinstance(element, str):
            return element
        for attr in ("name", "topic", "topic_name"):
            value = getattr(element, attr, None)
            if value:
                return str(value)
        topic_id = getattr(element, "topic_id", None)
        kraft = self.ctx.services.kraft
        if isinstance(topic_id, uuid.UUID) and kraft is not None:
            topic = kraft.image.topics.get(topic_id)
            return None if topic is None else topic.name
        return None

    def split(self, elements: Iterable[Any], name: Callable[[Any], str | None], op: AclOperation,
              rtype: ResourceType, code: int, **kw: Any) -> _Allowed | Split:
        """Refuse, with ``code``, the elements whose named resource may not ``op``."""
        denied = {}
        for i, element in enumerate(elements):
            n = name(element)
            if n is not None and not self.allowed(op, rtype, n):
                denied[i] = code
        return Split(denied, **kw) if denied or kw.get("always_call") else ALLOWED

    def topics(self, request: Any, op: AclOperation, **kw: Any) -> _Allowed | Split:
        return self.split(_first_array(request), self.topic_name, op, Res.TOPIC, TOPIC_DENIED, **kw)


def _first_array(request: Any) -> tuple[Any, ...]:
    for f in dataclasses.fields(request):
        value = getattr(request, f.name)
        if isinstance(value, tuple):
            return value
    return ()


def _txn_id(request: Any) -> str | None:
    return getattr(request, "transactional_id", None) or getattr(request, "v3_and_below_transactional_id", None)


def _ident(x: Any) -> str:
    return str(x)


def replica_id_of(request: Any) -> int:
    """A Fetch's replica id (>= 0: a follower), wherever its version keeps it."""
    state = getattr(request, "replica_state", None)
    return int(state.replica_id) if state is not None else int(getattr(request, "replica_id", -1))


# ----------------------------------------------------------------------------- the table

Rule: TypeAlias = Callable[[Access, Any], Verdict]


def _cluster(op: AclOperation, code: int = CLUSTER_DENIED) -> Rule:
    return lambda a, r: ALLOWED if a.cluster(op) else Deny(code)


def _group(op: AclOperation, then: Rule | None = None) -> Rule:
    def rule(a: Access, r: Any) -> Verdict:
        if not a.allowed(op, Res.GROUP, str(r.group_id)):
            return Deny(GROUP_DENIED)
        return then(a, r) if then is not None else ALLOWED
    return rule


def _txn(then: Rule | None = None) -> Rule:
    def rule(a: Access, r: Any) -> Verdict:
        txn = _txn_id(r)
        if txn and not a.allowed(Op.WRITE, Res.TRANSACTIONAL_ID, txn):
            return Deny(TXN_DENIED)
        return then(a, r) if then is not None else ALLOWED
    return rule


def _produce(a: Access, r: Any) -> Verdict:
    return a.topics(r, Op.WRITE)


def _fetch(a: Access, r: Any) -> Verdict:
    if replica_id_of(r) >= 0:  # a follower: CLUSTER_ACTION, else every partition is refused
        if a.cluster(Op.CLUSTER_ACTION):
            return ALLOWED
        return Split({i: TOPIC_DENIED for i in range(len(_first_array(r)))})
    return a.topics(r, Op.READ)


def _metadata(a: Access, r: Any) -> Verdict:
    if r.topics is None:
        return Filter("topics", "name", Op.DESCRIBE, Res.TOPIC)
    return a.topics(r, Op.DESCRIBE, always_call=True)


def _offset_for_leader_epoch(a: Access, r: Any) -> Verdict:
    if int(getattr(r, "replica_id", -1)) >= 0:
        return ALLOWED if a.cluster(Op.CLUSTER_ACTION) else Deny(CLUSTER_DENIED)
    return a.topics(r, Op.DESCRIBE)


def _offset_fetch(a: Access, r: Any) -> Verdict:
    groups = getattr(r, "groups", None)
    if groups:  # v8+: per group
        return a.split(groups, lambda g: str(g.group_id), Op.DESCRIBE, Res.GROUP, GROUP_DENIED)
    if not a.allowed(Op.DESCRIBE, Res.GROUP, str(r.group_id)):
        return Deny(GROUP_DENIED)
    return a.topics(r, Op.DESCRIBE) if r.topics else ALLOWED


def _find_coordinator(a: Access, r: Any) -> Verdict:
    rtype, code = (Res.TRANSACTIONAL_ID, TXN_DENIED) if int(r.key_type) == 1 else (Res.GROUP, GROUP_DENIED)
    keys = getattr(r, "coordinator_keys", ())
    if keys:
        return a.split(keys, _ident, Op.DESCRIBE, rtype, code)
    return ALLOWED if a.allowed(Op.DESCRIBE, rtype, str(r.key)) else Deny(code)


def _create_topics(a: Access, r: Any) -> Verdict:
    if a.allowed(Op.CREATE, Res.CLUSTER, CLUSTER_NAME, audit=False):
        return ALLOWED
    return a.topics(r, Op.CREATE)


def _init_producer_id(a: Access, r: Any) -> Verdict:
    if r.transactional_id:
        return _txn()(a, r)
    if a.allowed(Op.IDEMPOTENT_WRITE, Res.CLUSTER, CLUSTER_NAME, audit=False) or \
            a.authorizer.authorize_by_resource_type(a.principal, a.host, Op.WRITE, Res.TOPIC):
        return ALLOWED
    a.cluster(Op.IDEMPOTENT_WRITE)  # audited
    return Deny(CLUSTER_DENIED)


def _add_partitions_to_txn(a: Access, r: Any) -> Verdict:
    if getattr(r, "transactions", None):  # v4+: brokers verifying for each other
        return ALLOWED if a.cluster(Op.CLUSTER_ACTION) else Deny(CLUSTER_DENIED)
    return _txn(lambda a, r: a.topics(r, Op.WRITE, all_or_nothing=True))(a, r)


def _add_offsets_to_txn(a: Access, r: Any) -> Verdict:
    return _txn(_group(Op.READ))(a, r)


def _config_resources(op: AclOperation) -> Rule:
    def name(element: Any) -> tuple[ResourceType, str, int]:
        rtype = int(element.resource_type)
        if rtype == 2:
            return Res.TOPIC, element.resource_name, TOPIC_DENIED
        if rtype == 32:
            return Res.GROUP, element.resource_name, GROUP_DENIED
        return Res.CLUSTER, CLUSTER_NAME, CLUSTER_DENIED  # broker, broker logger, client metrics

    def rule(a: Access, r: Any) -> Verdict:
        denied = {}
        for i, element in enumerate(_first_array(r)):
            rtype, resource, code = name(element)
            if not a.allowed(op, rtype, resource):
                denied[i] = code
        return Split(denied) if denied else ALLOWED
    return rule


BROKER_LOGGER = 8


def _broker_loggers_altered(a: Access, r: Any) -> Verdict:
    """IncrementalAlterConfigs on a client listener: only its BROKER_LOGGER resources (ALTER_CONFIGS
    on the cluster); the controller it is forwarded to checks the others."""
    if a.cluster(Op.ALTER_CONFIGS):
        return ALLOWED
    return Split({i: CLUSTER_DENIED for i, res in enumerate(r.resources) if int(res.resource_type) == BROKER_LOGGER})


def _describe_groups(a: Access, r: Any) -> Verdict:
    return a.split(r.groups, _ident, Op.DESCRIBE, Res.GROUP, GROUP_DENIED)


def _list_groups(a: Access, r: Any) -> Verdict:
    if a.allowed(Op.DESCRIBE, Res.CLUSTER, CLUSTER_NAME, audit=False):
        return ALLOWED
    return Filter("groups", "group_id", Op.DESCRIBE, Res.GROUP)


def _list_transactions(a: Access, r: Any) -> Verdict:
    return Filter("transaction_states", "transactional_id", Op.DESCRIBE, Res.TRANSACTIONAL_ID)


def _describe_transactions(a: Access, r: Any) -> Verdict:
    return a.split(r.transactional_ids, _ident, Op.DESCRIBE, Res.TRANSACTIONAL_ID, TXN_DENIED)


def _allowed(a: Access, r: Any) -> Verdict:
    return ALLOWED


def _topics(op: AclOperation) -> Rule:
    return lambda a, r: a.topics(r, op)


def _delete_topics(a: Access, r: Any) -> Verdict:
    return a.topics(r, Op.DELETE)


RULES: dict[int, Rule] = {
    0: _txn(_produce),
    1: _fetch,
    2: _topics(Op.DESCRIBE),
    3: _metadata,
    8: _group(Op.READ, _topics(Op.READ)),
    9: _offset_fetch,
    10: _find_coordinator,
    11: _group(Op.READ),
    12: _group(Op.READ),
    13: _group(Op.READ),
    14: _group(Op.READ),
    15: _describe_groups,
    16: _list_groups,
    17: _allowed,  # SaslHandshake: before authentication, no ACL
    18: _allowed,  # ApiVersions
    19: _create_topics,
    20: _delete_topics,
    21: _topics(Op.DELETE),
    22: _init_producer_id,
    23: _offset_for_leader_epoch,
    24: _add_partitions_to_txn,
    25: _add_offsets_to_txn,
    26: _txn(),
    27: _cluster(Op.CLUSTER_ACTION),
    28: _txn(_group(Op.READ, _topics(Op.READ))),
    29: _cluster(Op.DESCRIBE),
    30: _cluster(Op.ALTER),
    31: _cluster(Op.ALTER),
    32: _config_resources(Op.DESCRIBE_CONFIGS),
    33: _config_resources(Op.ALTER_CONFIGS),
    34: _cluster(Op.ALTER),
    35: _cluster(Op.DESCRIBE),
    36: _allowed,  # SaslAuthenticate
    37: _topics(Op.ALTER),
    42: lambda a, r: a.split(r.groups_names, _ident, Op.DELETE, Res.GROUP, GROUP_DENIED),
    43: _cluster(Op.ALTER),
    44: _config_resources(Op.ALTER_CONFIGS),
    45: _cluster(Op.ALTER),
    46: _cluster(Op.DESCRIBE),
    47: _group(Op.DELETE, _topics(Op.READ)),
    48: _cluster(Op.DESCRIBE_CONFIGS),
    49: _cluster(Op.ALTER_CONFIGS),
    50: _cluster(Op.DESCRIBE),  # DescribeUserScramCredentials
    51: _cluster(Op.ALTER),  # AlterUserScramCredentials
    52: _cluster(Op.CLUSTER_ACTION),  # Vote
    53: _cluster(Op.CLUSTER_ACTION),  # BeginQuorumEpoch
    54: _cluster(Op.CLUSTER_ACTION),  # EndQuorumEpoch
    55: _cluster(Op.DESCRIBE),  # DescribeQuorum
    56: _cluster(Op.CLUSTER_ACTION),  # AlterPartition
    57: _cluster(Op.ALTER),  # UpdateFeatures
    58: lambda a, r: ALLOWED if a.ctx.connection is None or a.cluster(Op.CLUSTER_ACTION) else Deny(CLUSTER_DENIED),
    59: _cluster(Op.CLUSTER_ACTION),  # FetchSnapshot
    60: _allowed,  # DescribeCluster: Kafka checks nothing (authorized operations aside)
    61: _topics(Op.READ),  # DescribeProducers
    62: _cluster(Op.CLUSTER_ACTION),  # BrokerRegistration
    63: _cluster(Op.CLUSTER_ACTION),  # BrokerHeartbeat
    64: _cluster(Op.ALTER),  # UnregisterBroker
    65: _describe_transactions,
    66: _list_transactions,
    67: _cluster(Op.CLUSTER_ACTION),  # AllocateProducerIds
    71: _allowed,  # GetTelemetrySubscriptions (KIP-714: no ACL)
    72: _allowed,  # PushTelemetry
    73: _cluster(Op.CLUSTER_ACTION),  # AssignReplicasToDirs
    74: _cluster(Op.DESCRIBE_CONFIGS),  # ListConfigResources
    75: _topics(Op.DESCRIBE),  # DescribeTopicPartitions
}


def check(ctx: RequestContext, request: Any, authorizer: StandardAuthorizer) -> Verdict:
    """The verdict on one decoded request (see the module docstring). An API missing from
    `RULES` is refused (CLUSTER_AUTHORIZATION_FAILED): a new handler must say what it checks."""
    rule = RULES.get(ctx.api_key)
    if ctx.listener_role is ListenerRole.CLIENT and ctx.api_key in FORWARDABLE:
        if ctx.api_key != 44 or not any(int(r.resource_type) == BROKER_LOGGER for r in request.resources):
            return ALLOWED  # sent on to the active controller, which authorizes the client (`envelope.forwards`)
        rule = _broker_loggers_altered  # answered by this broker, never forwarded: checked here, as Kafka's broker
    kraft = ctx.services.kraft
    if kraft is not None:
        authorizer.load(kraft.image.acls)
    host = host_of(ctx)
    access = Access(authorizer, principal_of(ctx.connection), host, ctx)
    verdict = rule(access, request) if rule is not None else Deny(CLUSTER_DENIED)
    if verdict is not ALLOWED and not isinstance(verdict, Filter) and _on_controller_listener(ctx) and \
            not getattr(ctx.connection, "forwarded", False) and \
            access.allowed(Op.CLUSTER_ACTION, Res.CLUSTER, CLUSTER_NAME, audit=False):
        return ALLOWED  # sent by a broker as itself (its own requests; an Envelope's inner one is the client's)
    return verdict


def filter_allows(ctx: RequestContext, authorizer: StandardAuthorizer, f: Filter, name: str) -> bool:
    host = host_of(ctx)
    return authorizer.authorize(principal_of(ctx.connection), host, f.op, f.resource_type, name)

