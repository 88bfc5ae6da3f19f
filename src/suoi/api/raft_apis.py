"""KRaft RPCs: Vote (52), BeginQuorumEpoch (53), EndQuorumEpoch (54), DescribeQuorum (55),
FetchSnapshot (59), and Fetch (1) when it is for ``__cluster_metadata`` (routed here from
``api/fetch.py``). Decode with ``raft_driver.codec`` -> ``services.kraft.driver.handle_request``
-> describe the answer for the asked version.

Before the node's ``QuorumDriver`` runs (start-up) or after it stopped, every request here is
answered with a top-level error (UNSUPPORTED_VERSION for the Raft APIs, NOT_LEADER_OR_FOLLOWER
for a metadata Fetch). A request that is not addressed to ``__cluster_metadata-0`` gets
INVALID_REQUEST, as in Kafka.

DescribeQuorum is also an admin API (kafka-metadata-quorum.sh, `suoi metadata-quorum`): sent
to a client listener of a KRaft node that does not lead the quorum (a broker-only node, a
follower voter), it is forwarded to the active controller, as Kafka's brokers do, so it can be
asked through any broker. On a CONTROLLER listener every node answers for itself (a follower:
NOT_LEADER_OR_FOLLOWER naming the leader), as Kafka's controllers do; forwarded requests arrive
there, so forwarding never loops. (The listener's role is ``ctx.listener_role``.)
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from suoi.api.listener_roles import ListenerRole
from suoi.api.registry import RequestContext, api
from suoi.model import ErrorCode
from suoi.raft_driver.codec import (
    FETCH_KEY,
    RaftCodecError,
    error_response_data,
    is_metadata_fetch,
    request_from_kio,
    response_data,
)
from suoi.raft_driver.driver import QuorumUnavailableError

__all__ = ["handle_metadata_fetch", "is_metadata_fetch"]

DESCRIBE_QUORUM_KEY = 55
#: How long a forwarded DescribeQuorum may take (the tool's own timeout is 10 s).
FORWARD_TIMEOUT_S = 5.0
log = logging.getLogger("suoi.api")


def _quorum(ctx: RequestContext) -> Any:
    return ctx.services.kraft.driver


def _serve(ctx: RequestContext, request: Any) -> Any:
    driver = _quorum(ctx)
    if not driver.running:
        missing = ErrorCode.not_leader_or_follower if ctx.api_key == FETCH_KEY else ErrorCode.unsupported_version
        return error_response_data(ctx.api_key, missing)
    try:
        message = request_from_kio(request)
    except RaftCodecError:
        return error_response_data(ctx.api_key, ErrorCode.invalid_request)
    return _answer(ctx, driver, message)


async def _answer(ctx: RequestContext, driver: Any, message: Any) -> dict[str, Any]:
    try:
        response = await driver.handle_request(message)
    except QuorumUnavailableError as exc:
        return error_response_data(ctx.api_key, exc.error_code)
    data = response_data(response)
    if ctx.api_key == DESCRIBE_QUORUM_KEY:
        # v2 (KIP-853) names the voters' endpoints: how a broker configured with
        # controller.quorum.bootstrap.servers learns the quorum (suoi.cluster.bootstrap).
        listener = getattr(driver, "listener_name", None) or "CONTROLLER"
        # (A node without process.roles has no controller listener: port 0, none listed.)
        data["nodes"] = [{"node_id": v, "listeners": [{"name": listener, "host": h, "port": p}] if p else []}
                         for v, (h, p) in sorted(driver.voters.items())]
    return data


def handle_metadata_fetch(ctx: RequestContext, request: Any) -> Any:
    """Fetch on ``__cluster_metadata-0``: replication of the metadata log (called by api/fetch)."""
    return _serve(ctx, request)


@api(52, "Vote", 0, 2)
def handle_vote(ctx: RequestContext, request: Any) -> Any:
    return _serve(ctx, request)


@api(53, "BeginQuorumEpoch", 0, 1)
def handle_begin_quorum_epoch(ctx: RequestContext, request: Any) -> Any:
    return _serve(ctx, request)


@api(54, "EndQuorumEpoch", 0, 1)
def handle_end_quorum_epoch(ctx: RequestContext, request: Any) -> Any:
    return _serve(ctx, request)


@api(55, "DescribeQuorum", 0, 2)
def handle_describe_quorum(ctx: RequestContext, request: Any) -> Any:
    kraft = ctx.services.kraft
    if _on_controller_listener(ctx):
        return _serve(ctx, request)
    return _describe_quorum_anywhere(ctx, kraft, request)


def _on_controller_listener(ctx: RequestContext) -> bool:
    return ctx.listener_role is ListenerRole.CONTROLLER


async def _describe_quorum_anywhere(ctx: RequestContext, kraft: Any, request: Any) -> Any:
    """The leader's own answer: here when this node leads the quorum, else forwarded to it
    (falling back to this node's answer when no leader is known or it does not answer)."""
    leader = kraft.controller_id
    if leader < 0 or leader == ctx.services.node_id:
        answer = _serve(ctx, request)
        return await answer if hasattr(answer, "__await__") else answer
    try:
        response = await kraft.call_controller(request, timeout=FORWARD_TIMEOUT_S)
    except Exception as exc:  # NotControllerError, a dropped connection: answer what this node knows
        log.info("DescribeQuorum: forwarding to controller %d failed (%s); answering locally", leader, exc)
        answer = _serve(ctx, request)
        return await answer if hasattr(answer, "__await__") else answer
    return {f.name: getattr(response, f.name) for f in dataclasses.fields(response)}


@api(59, "FetchSnapshot", 0, 1)
def handle_fetch_snapshot(ctx: RequestContext, request: Any) -> Any:
    return _serve(ctx, request)
