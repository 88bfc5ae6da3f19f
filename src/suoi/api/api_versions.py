"""ApiVersions (key 18): derived from the handler registry, so we advertise exactly what
is implemented (plus Produce's deliberate v0 floor, see `legacy_produce`).

The answer (~65 entries) is the same for every request of one version on one kind of listener
until the node's finalized features change, and building and encoding it cost ~100-140 µs a
request: it is kept per (version, listener role) with what it was made from (the registry's
size; from v3 the metadata image's offset, which is KIP-584's finalized features epoch, and its
feature levels) and encoded once (`EncodedOnce`).

Each one is logged at DEBUG on ``suoi.api`` (a client's first request on a connection: who
connects, with which software), for an operator who turns that logger up at run time
(`suoi.api.broker_loggers`)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from suoi.api.listener_roles import ListenerRole, serves
from suoi.api.registry import REGISTRY, RequestContext, api
from suoi.api.telemetry import remember_client_software
from suoi.controller.features import SUPPORTED
from suoi.model import ErrorCode
from suoi.protocol.compiled_dict_writer import EncodedOnce

log = logging.getLogger("suoi.api")

if TYPE_CHECKING:
    from suoi.services import Services


#: KRaft's own RPCs (Vote, BeginQuorumEpoch, EndQuorumEpoch, DescribeQuorum, FetchSnapshot,
#: BrokerRegistration, BrokerHeartbeat, UnregisterBroker, AllocateProducerIds, AssignReplicasToDirs).
QUORUM_API_KEYS = frozenset({52, 53, 54, 55, 56, 59, 62, 63, 64, 67, 73})


def api_versions_data(broker: Services, error: ErrorCode = ErrorCode.none, version: int = 0, *,
                      role: ListenerRole = ListenerRole.CLIENT) -> dict[str, Any]:
    """The APIs a listener of `role` serves (a CONTROLLER listener: only the controller's)."""
    keys = [
        {"api_key": s.api_key, "min_version": s.advertised_min, "max_version": s.max_version}
        for s in sorted(REGISTRY.values(), key=lambda s: s.api_key)
        if serves(role, s.api_key)
    ]
    # v3+ adds the finalized features (KIP-584) as tagged fields; v0-v2 have none.
    extra = feature_fields(broker, version) if version >= 3 else {}
    return {"error_code": error, "api_keys": keys, "throttle_time": 0, **extra}


def feature_fields(broker: Services, version: int) -> dict[str, Any]:
    """ApiVersions' feature fields (KIP-584; UpdateFeatures is `suoi.api.features`). Before v4,
    features whose lowest level is 0 are left out (KIP-1022: older Java clients refuse a supported
    range starting at 0)."""
    supported = [{"name": n, "min_version": lo, "max_version": hi} for n, (lo, hi) in sorted(SUPPORTED.items())
                 if version >= 4 or lo > 0]
    image = broker.kraft.image
    levels, epoch = dict(image.features), image.offset
    finalized = [{"name": n, "min_version_level": lvl, "max_version_level": lvl}
                 for n, lvl in sorted(levels.items()) if lvl > 0]
    return {"supported_features": supported, "finalized_features": finalized,
            "finalized_features_epoch": max(epoch, -1)}


@api(18, "ApiVersions", 0, 4)
def handle_api_versions(ctx: RequestContext, request: Any) -> dict[str, Any]:
    remember_client_software(ctx, request)
    log.debug("ApiVersions v%d from %s (client id %r, software %s %s)", ctx.api_version, ctx.client_host,
              ctx.client_id, getattr(request, "client_software_name", None) or "-",
              getattr(request, "client_software_version", None) or "-")
    return api_versions_answer(ctx.services, ctx.api_version, ctx.listener_role)


#: (version, listener role) -> (what the answer was made from, the answer).
_ANSWERS: dict[tuple[int, ListenerRole], tuple[tuple[Any, ...], EncodedOnce]] = {}


def api_versions_answer(broker: Services, version: int, role: ListenerRole) -> EncodedOnce:
    """`api_versions_data`, made again only when what it depends on changed (the features of
    v3+ answers come from the metadata image; an UpdateFeatures moves its offset and levels)."""
    if version >= 3:
        image = broker.kraft.image
        state: tuple[Any, ...] = (len(REGISTRY), image.offset, image.features)
    else:
        state = (len(REGISTRY),)
    kept = _ANSWERS.get((version, role))
    if kept is not None and kept[0] == state:
        return kept[1]
    answer = EncodedOnce(api_versions_data(broker, version=version, role=role))
    _ANSWERS[version, role] = (state, answer)
    return answer
