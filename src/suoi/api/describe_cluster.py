"""DescribeCluster (key 60): the live brokers and the controller (see client_controller_id)."""

from __future__ import annotations

from typing import Any

from suoi.api.authorized_operations import unchecked
from suoi.api.cluster_metadata import client_controller_id, live_brokers
from suoi.api.registry import RequestContext, api
from suoi.authorizer import ResourceType

# endpoint_type 1 = brokers, 2 = controllers (KIP-919); a combined node answers both.


@api(60, "DescribeCluster", 0, 2)
def handle_describe_cluster(ctx: RequestContext, request: Any) -> dict[str, Any]:
    broker = ctx.services
    brokers = [{"broker_id": b["node_id"], "host": b["host"], "port": b["port"], "rack": b["rack"],
                "is_fenced": False} for b in live_brokers(broker)]
    # endpoint_type 2 (KIP-919) asks for the controllers; brokers answer with a broker that
    # forwards (see client_controller_id), as Kafka does.
    controller_id = (broker.kraft.live_controller_id if getattr(request, "endpoint_type", 1) == 2
                     else client_controller_id(broker))
    return {
        "throttle_time": 0,
        "error_code": 0,
        "error_message": None,
        "endpoint_type": getattr(request, "endpoint_type", 1),
        "cluster_id": broker.cluster_id,
        "controller_id": controller_id,
        "brokers": brokers,
        "cluster_authorized_operations": unchecked(
            getattr(request, "include_cluster_authorized_operations", False), ResourceType.CLUSTER),
    }
