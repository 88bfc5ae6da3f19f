"""`suoi cluster status`: what the brokers (Metadata, confluent-kafka AdminClient) and the
controllers (DescribeQuorum v2, following NOT_LEADER_OR_FOLLOWER to the leader it names) say,
and its rendering as text tables."""

from __future__ import annotations

import time
from typing import Any

from suoi.cli.cluster_layout import STATUS_TIMEOUT_S, Cluster
from suoi.cli.cluster_procs import node_running
from suoi.cli.cluster_secure import client_settings, controller_client_security, security_report
from suoi.cli.common import quiet_logger

# ============================================================================ talking to the cluster


def metadata(bootstrap: str, timeout: float, settings: dict[str, str] | None = None) -> Any:
    """confluent-kafka Metadata for all topics, or raises; `settings`: a secure cluster's client settings."""
    from confluent_kafka.admin import AdminClient

    conf: dict[str, Any] = {**(settings or {}), "bootstrap.servers": bootstrap, "logger": quiet_logger(),
                            "socket.connection.setup.timeout.ms": max(1000, int(timeout * 1000))}
    admin = AdminClient(conf)
    return admin.list_topics(timeout=timeout)


def describe_quorum(address: str, timeout: float, security: Any = None) -> Any:
    """DescribeQuorum v2 for __cluster_metadata-0 sent to one controller listener."""
    from kio.schema.describe_quorum.v2.request import DescribeQuorumRequest, PartitionData, TopicData
    from kio.schema.types import TopicName
    from kio.static.primitive import i32

    from suoi.client import request_sync

    host, _, port = address.rpartition(":")
    request = DescribeQuorumRequest(topics=(TopicData(topic_name=TopicName("__cluster_metadata"),
                                                      partitions=(PartitionData(partition_index=i32(0)),)),))
    return request_sync(host, int(port), request, client_id="suoi-cluster", timeout=timeout,
                        **({"security": security} if security is not None else {}))


def quorum_status(cluster: Cluster, timeout: float = STATUS_TIMEOUT_S) -> dict[str, Any]:
    """Ask the controllers (running ones first) until the leader answers; follows a named leader."""
    by_id = {n.id: n for n in cluster.controllers}
    order = sorted(by_id.values(), key=lambda n: not node_running(cluster, n))
    queue = [n.id for n in order]
    security = controller_client_security(cluster)
    tried: set[int] = set()
    errors: list[str] = []
    while queue:
        node_id = queue.pop(0)
        if node_id in tried:
            continue
        tried.add(node_id)
        node = by_id[node_id]
        try:
            resp = describe_quorum(str(node.controller_address), timeout, security)
        except OSError as exc:  # refused, dropped, timed out (asyncio.TimeoutError is TimeoutError)
            errors.append(f"node {node_id}: {exc.strerror or str(exc) or type(exc).__name__}")
            continue
        except Exception as exc:  # a malformed answer: report it, try the next controller
            errors.append(f"node {node_id}: {type(exc).__name__}: {exc}")
            continue
        part = next((p for t in resp.topics for p in t.partitions), None)
        top = resp.error_code
        if part is None:
            errors.append(f"node {node_id}: {top.name if top.value else 'no partition in the answer'}")
            continue
        if part.error_code.value != 0:
            errors.append(f"node {node_id}: {part.error_code.name}"
                          + (f" (leader {part.leader_id}, epoch {part.leader_epoch})" if part.leader_id >= 0 else ""))
            if int(part.leader_id) in by_id and int(part.leader_id) not in tried:
                queue.insert(0, int(part.leader_id))
            continue
        return _quorum_dict(resp, part, node_id)
    return {"leader_id": None, "leader_epoch": None, "high_watermark": None, "voters": [], "observers": [],
            "error": "; ".join(errors) or "no controller in the cluster"}


def _quorum_dict(resp: Any, part: Any, asked: int) -> dict[str, Any]:
    leader = int(part.leader_id)
    now_ms = int(time.time() * 1000)
    leader_leo = next((int(r.log_end_offset) for r in part.current_voters if int(r.replica_id) == leader), None)

    def replica(r: Any, kind: str) -> dict[str, Any]:
        rid = int(r.replica_id)
        leo = int(r.log_end_offset)
        last_fetch = int(r.last_fetch_timestamp)
        last_caught_up = int(r.last_caught_up_timestamp)
        return {
            "id": rid,
            "status": "leader" if rid == leader else kind,
            "log_end_offset": leo,
            "lag": (max(0, leader_leo - leo) if leader_leo is not None and leo >= 0 else None),
            "last_fetch_ms_ago": (max(0, now_ms - last_fetch) if last_fetch >= 0 and rid != leader else None),
            "last_caught_up_ms_ago": (max(0, now_ms - last_caught_up) if last_caught_up >= 0 and rid != leader else None),
        }

    voters = [replica(r, "follower") for r in part.current_voters]
    followers = [v for v in voters if v["id"] != leader and v["lag"] is not None]
    return {
        "leader_id": leader,
        "leader_epoch": int(part.leader_epoch),
        "high_watermark": int(part.high_watermark),
        "max_follower_lag": max((v["lag"] for v in followers), default=0),
        "voters": voters,
        "observers": [replica(r, "observer") for r in part.observers],
        "answered_by": asked,
        "error": None,
    }


def _short(exc: BaseException) -> str:
    from suoi.cli.common import describe_error

    return describe_error(exc)


# ============================================================================ status report


def cluster_status(cluster: Cluster) -> dict[str, Any]:
    alive = {n.id: node_running(cluster, n) for n in cluster.nodes}
    live_addresses = ",".join(n.address for n in cluster.brokers if n.address and alive[n.id])
    md = None
    md_error = None
    if live_addresses:
        try:
            md = metadata(live_addresses, STATUS_TIMEOUT_S, client_settings(cluster))
        except Exception as exc:
            md_error = _short(exc)
    else:
        md_error = "no broker process is running"
    listed = {int(b): f"{m.host}:{m.port}" for b, m in md.brokers.items()} if md is not None else {}
    leads: dict[int, dict[str, list[int]]] = {}
    follows: dict[int, dict[str, list[int]]] = {}
    offline: dict[str, list[int]] = {}
    if md is not None:
        for name, t in sorted(md.topics.items()):
            for pid, p in sorted(t.partitions.items()):
                if p.leader >= 0:
                    leads.setdefault(int(p.leader), {}).setdefault(name, []).append(int(pid))
                else:
                    offline.setdefault(name, []).append(int(pid))
                for r in p.replicas:
                    if r != p.leader:
                        follows.setdefault(int(r), {}).setdefault(name, []).append(int(pid))
    quorum = quorum_status(cluster) if cluster.controllers else None
    nodes = []
    for n in cluster.nodes:
        nodes.append({
            "id": n.id, "roles": n.roles, "address": n.address, "controller_address": n.controller_address,
            "pid": n.pid, "alive": alive[n.id],
            "in_metadata": (n.id in listed) if n.is_broker and md is not None else None,
            "leader_of": leads.get(n.id, {}), "follower_of": follows.get(n.id, {}),
            "log": str(cluster.log_path(n.id)),
        })
    return {
        "cluster_id": cluster.cluster_id, "dir": str(cluster.dir), "bootstrap": cluster.bootstrap,
        "controller": md.controller_id if md is not None and md.controller_id >= 0 else None,
        "metadata_error": md_error, "nodes": nodes, "quorum": quorum, "offline_partitions": offline,
        "security": security_report(cluster),
    }


def _partitions_text(by_topic: dict[str, list[int]]) -> str:
    return " ".join(f"{t}[{','.join(map(str, ps))}]" for t, ps in by_topic.items()) or "-"


def print_status(r: dict[str, Any]) -> None:
    print(f"Cluster {r['cluster_id']} in {r['dir']}")
    print(f"Bootstrap: {r['bootstrap']}")
    sec = r.get("security") or {}
    if sec.get("secure"):
        print(f"Security: SASL_SSL, {sec['sasl_mechanism']}, ACLs on; admin (User:{sec['admin_user']}) client "
              f"properties: {sec['admin_properties']} (librdkafka's names: {sec['client_properties']})")
    else:
        print("Security: none (PLAINTEXT, no authentication; 'cluster up --secure' makes a SASL_SSL cluster)")
    if r["metadata_error"]:
        print(f"Metadata: unavailable ({r['metadata_error']})")
    print()
    rows: list[tuple[str, ...]] = [("ID", "ROLES", "ADDRESS", "CONTROLLER", "PID", "PROCESS", "METADATA")]
    for n in r["nodes"]:
        md = {True: "listed", False: "missing", None: "-"}[n["in_metadata"]]
        rows.append((str(n["id"]), ",".join(n["roles"]), n["address"] or "-", n["controller_address"] or "-",
                     str(n["pid"] or "-"), "alive" if n["alive"] else "dead", md))
    _table(rows)
    q = r["quorum"]
    print()
    if q is None:
        print("Quorum: none (no controller in cluster.json)")
    elif q["error"]:
        print(f"Quorum: unknown ({q['error']})")
    else:
        print(f"Quorum: leader {q['leader_id']}, epoch {q['leader_epoch']}, high watermark "
              f"{q['high_watermark']}, max follower lag {q['max_follower_lag']}")
        rows = [("NODE", "STATUS", "LOG END", "LAG", "LAST FETCH", "LAST CAUGHT UP")]
        for v in q["voters"] + q["observers"]:
            rows.append((str(v["id"]), v["status"], str(v["log_end_offset"]),
                         "-" if v["lag"] is None else str(v["lag"]),
                         "-" if v["last_fetch_ms_ago"] is None else f"{v['last_fetch_ms_ago']} ms ago",
                         "-" if v["last_caught_up_ms_ago"] is None else f"{v['last_caught_up_ms_ago']} ms ago"))
        _table(rows)
    print()
    rows = [("BROKER", "LEADER OF", "FOLLOWER OF")]
    for n in r["nodes"]:
        if "broker" in n["roles"]:
            rows.append((str(n["id"]), _partitions_text(n["leader_of"]), _partitions_text(n["follower_of"])))
    _table(rows)
    if r["offline_partitions"]:
        print(f"Offline (no leader): {_partitions_text(r['offline_partitions'])}")


def _table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
