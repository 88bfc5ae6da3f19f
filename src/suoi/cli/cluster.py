"""`suoi cluster`: start, inspect and stop a local KRaft-mode cluster on 127.0.0.1.

    suoi cluster up --brokers N [--controllers M] [--dir DIR] [--base-port P] [--wait S]
    suoi cluster up --node-ids 0,1,2 --ports 9092,9095,9098
    suoi cluster up --brokers 3 --secure   (SASL_SSL, SCRAM-SHA-512, ACLs; DIR/admin.properties)
    suoi cluster status [--dir DIR] [--output json]
    suoi cluster down [--dir DIR] [--purge]
    suoi cluster start-node --node ID [--dir DIR]   (restart one node with its original command line)
    suoi cluster stop-node --node ID [--dir DIR] [--kill]

Layout (DIR defaults to ./suoi-cluster):

* Brokers have node ids 1..N. With `--controllers 0` (the default) the first min(N, 3) brokers
  are also the Raft voters (combined mode, `process.roles=broker,controller`, like Kafka's
  quickstart); with `--controllers M` there are M controller-only nodes with ids N+1..N+M and the
  brokers are brokers only.
* Node `ID` lives in DIR/node-ID/: `server.properties` (Kafka property names), `data/` (its
  log.dirs) and `broker.log` (stdout+stderr). Each node is its own detached process
  (`python -m suoi broker --config DIR/node-ID/server.properties`, a new session, so it
  outlives the `suoi cluster up` that started it).
* Ports: free loopback ports chosen by the OS, or with `--base-port P` node ID gets
  P + 2*(ID-1) for its PLAINTEXT (client) listener and P + 2*(ID-1) + 1 for its CONTROLLER
  listener (a broker-only node uses only the first, a controller-only node only the second), or
  with `--ports P1,P2,...` (and `--node-ids I1,I2,...`, the layout many client test suites assume,
  e.g. `--node-ids 0,1,2 --ports 9092,9095,9098`) broker i listens on Pi and, as a combined voter,
  its CONTROLLER listener on Pi + 1. Ports left in TIME_WAIT by a cluster just stopped are reused
  (the listeners set SO_REUSEADDR, and so does the probe for busy ports).
* DIR/cluster.json is the state file: cluster id, bootstrap string, quorum voters and, per
  node, id, roles, pid, ports and paths. `down` and `stop-node` signal only the PIDs recorded
  there, and only while /proc shows that PID still running this node's command line (a PID the
  OS has reused for something else is left alone).
* The cluster id is reused when DIR already holds nodes of the same layout (after `down`
  without `--purge`), so their data stays valid; a different layout is refused.
* `--secure` (`cluster_secure`): a CA and node keystores in DIR/tls/, every listener SASL_SSL,
  SCRAM-SHA-512 for clients and between brokers, an admin user bootstrapped into the metadata
  log with a random password, ACLs on; the client settings in DIR/admin.properties (Kafka's
  names, every tool's --command-config) and DIR/client.properties (librdkafka's names).

`status` reads cluster.json, checks every PID, asks the brokers for Metadata (confluent-kafka
AdminClient) and the controllers for DescribeQuorum (suoi.client, kio's DescribeQuorum v2,
following NOT_LEADER_OR_FOLLOWER to the leader it names).

The parts: `cluster_layout` (plan, configs, state file), `cluster_procs` (PIDs, start, stop,
readiness), `cluster_status` (Metadata, DescribeQuorum, the status report); this module has the
commands. Their public names are re-exported here.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

from suoi.cli.cluster_layout import (
    CLIENT_LISTENER,
    CONTROLLER_LISTENER,
    DEFAULT_DIR,
    DEFAULT_WAIT_S,
    HOST,
    MAX_BROKERS,
    MAX_COMBINED_VOTERS,
    MAX_CONTROLLERS,
    STATE_FILE,
    STATE_VERSION,
    STATUS_TIMEOUT_S,
    STOP_TIMEOUT_S,
    Cluster,
    Node,
    _existing_cluster_id,
    free_ports,
    from_state,
    layout,
    load_cluster,
    new_cluster_id,
    node_properties,
    plan_cluster,
    port_in_use,
    prometheus_config,
    render_properties,
    save_cluster,
    state_lock,
    state_path,
    to_state,
)
from suoi.cli.cluster_procs import broker_view, last_log_line, node_running, pid_running, spawn, stop_pids, wait_ready
from suoi.cli.cluster_secure import (
    check_overrides,
    existing_security,
    node_security_properties,
    prepare,
    print_guide,
    purge_files,
    scram_bootstrap,
    security_report,
    write_private,
)
from suoi.cli.cluster_status import cluster_status, describe_quorum, metadata, print_status, quorum_status
from suoi.cli.common import CliError, guarded, print_json
from suoi.cli.storage import format_config

__all__ = [
    "CLIENT_LISTENER",
    "CONTROLLER_LISTENER",
    "DEFAULT_DIR",
    "DEFAULT_WAIT_S",
    "HOST",
    "MAX_BROKERS",
    "MAX_COMBINED_VOTERS",
    "MAX_CONTROLLERS",
    "STATE_FILE",
    "STATE_VERSION",
    "STATUS_TIMEOUT_S",
    "STOP_TIMEOUT_S",
    "CliError",
    "Cluster",
    "Node",
    "_existing_cluster_id",
    "add_parser",
    "broker_view",
    "cluster_status",
    "describe_quorum",
    "free_ports",
    "from_state",
    "last_log_line",
    "layout",
    "load_cluster",
    "metadata",
    "new_cluster_id",
    "node_properties",
    "prometheus_config",
    "node_running",
    "pid_running",
    "plan_cluster",
    "port_in_use",
    "print_status",
    "quorum_status",
    "render_properties",
    "run_down",
    "run_start_node",
    "run_status",
    "run_stop_node",
    "run_up",
    "save_cluster",
    "spawn",
    "state_lock",
    "state_path",
    "stop_pids",
    "to_state",
    "wait_ready",
]


# ============================================================================ commands


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "cluster", help="start, inspect and stop a local multi-broker KRaft cluster",
        description="Run a cluster of suoi nodes on this machine (127.0.0.1): each node a separate "
        "process with its own data dir and ports, coordinated by a Raft metadata quorum.",
        epilog="example: suoi cluster up --brokers 3 && suoi cluster status && suoi cluster down",
    )
    actions = p.add_subparsers(dest="cluster_command", metavar="ACTION")

    def dir_arg(q: argparse.ArgumentParser) -> None:
        q.add_argument("--dir", type=Path, default=DEFAULT_DIR, metavar="DIR",
                       help=f"the cluster's directory: cluster.json, node-N/ (default ./{DEFAULT_DIR})")

    def output_arg(q: argparse.ArgumentParser) -> None:
        q.add_argument("--output", choices=("text", "json"), default="text", help="text (default) or json")

    def node_arg(q: argparse.ArgumentParser) -> None:
        q.add_argument("--node", type=int, required=True, metavar="ID", help="REQUIRED: the node id")

    def wait_arg(q: argparse.ArgumentParser, what: str) -> None:
        q.add_argument("--wait", type=float, default=DEFAULT_WAIT_S, metavar="SECONDS",
                       help=f"how long to wait for {what} (default {DEFAULT_WAIT_S:g}; 0: do not wait)")

    def timeout_arg(q: argparse.ArgumentParser) -> None:
        q.add_argument("--timeout", type=float, default=STOP_TIMEOUT_S, metavar="SECONDS",
                       help=f"grace period before SIGKILL (default {STOP_TIMEOUT_S:g})")

    up = actions.add_parser(
        "up", help="start a cluster and print its bootstrap string",
        description="Start N brokers (ids 1..N) and the metadata quorum: with --controllers 0 the first "
        "min(N,3) brokers are also voters (combined mode); with --controllers M there are M "
        "controller-only nodes (ids N+1..N+M). Waits until Metadata lists every broker, then prints "
        "the bootstrap string.")
    up.add_argument("--brokers", type=int, metavar="N", help="number of brokers (REQUIRED unless --node-ids)")
    up.add_argument("--controllers", type=int, default=0, metavar="M",
                    help="controller-only nodes (default 0: brokers 1..min(N,3) are also controllers)")
    dir_arg(up)
    up.add_argument("--base-port", type=int, metavar="P",
                    help="node N listens on P+2(N-1) (PLAINTEXT) and P+2(N-1)+1 (CONTROLLER); "
                    "default: free ports chosen by the OS")
    up.add_argument("--node-ids", metavar="ID,ID,...",
                    help="the brokers' node ids in order (default 1..N), e.g. 0,1,2")
    up.add_argument("--ports", metavar="PORT,PORT,...",
                    help="the brokers' PLAINTEXT ports in order, e.g. 9092,9095,9098; a combined voter's "
                    "CONTROLLER listener takes PORT+1, controller-only nodes free ports")
    wait_arg(up, "the cluster to answer")
    up.add_argument("--keep-on-failure", action="store_true",
                    help="leave the nodes running when the cluster does not come up (to debug it)")
    up.add_argument("--racks", metavar="R1,R2,...",
                    help="broker.rack of brokers 1..N in order (cycled if shorter), for rack-aware replica "
                    "placement and follower fetching")
    up.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                    help="a server property for every node (repeatable), e.g. -o min.insync.replicas=2 "
                    "-o replica.lag.time.max.ms=5000; it wins over the generated value")
    up.add_argument("--secure", action="store_true",
                    help="SASL_SSL on every listener (a CA and node certificates in DIR/tls), SCRAM-SHA-512, an "
                    "admin user with a random password (DIR/admin.properties, for --command-config) and ACLs on")
    output_arg(up)
    up.set_defaults(func=guarded("cluster")(run_up))

    status = actions.add_parser(
        "status", help="brokers, quorum and partition leaders",
        description="Every node (alive by PID and as listed by Metadata), the Raft quorum (leader, "
        "epoch, followers' lag, via DescribeQuorum) and the partitions each broker leads or follows.")
    dir_arg(status)
    output_arg(status)
    status.set_defaults(func=guarded("cluster")(run_status))

    down = actions.add_parser(
        "down", help="stop every node of the cluster",
        description="SIGTERM every node recorded in cluster.json (brokers first, then controller-only "
        "nodes), SIGKILL what is still running after --timeout, and remove cluster.json. Data is kept "
        "unless --purge.")
    dir_arg(down)
    down.add_argument("--purge", action="store_true", help="also delete the nodes' directories (data and logs)")
    timeout_arg(down)
    output_arg(down)
    down.set_defaults(func=guarded("cluster")(run_down))

    start = actions.add_parser(
        "start-node", help="start (restart) one node of the cluster",
        description="Start a node that is not running, with the same command line, config and data as "
        "before, and wait until it is back (a broker: listed by Metadata).")
    dir_arg(start)
    node_arg(start)
    wait_arg(start, "it")
    output_arg(start)
    start.set_defaults(func=guarded("cluster")(run_start_node))

    stop = actions.add_parser(
        "stop-node", help="stop one node of the cluster",
        description="SIGTERM one node (SIGKILL after --timeout), or SIGKILL at once with --kill.")
    dir_arg(stop)
    node_arg(stop)
    stop.add_argument("--kill", action="store_true", help="SIGKILL (a crash) instead of a clean stop")
    timeout_arg(stop)
    output_arg(stop)
    stop.set_defaults(func=guarded("cluster")(run_stop_node))

    def no_action(args: argparse.Namespace) -> int:
        p.print_help(sys.stderr)
        return 1

    p.set_defaults(func=no_action)


def _overrides(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CliError(f"--override expects KEY=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def _int_list(text: str | None, flag: str) -> list[int] | None:
    if text is None:
        return None
    try:
        values = [int(x) for x in text.split(",")]
    except ValueError:
        raise CliError(f"{flag} expects comma-separated numbers, got {text!r}") from None
    return values


def run_up(args: argparse.Namespace) -> int:
    if args.wait < 0:
        raise CliError("--wait must be 0 or more seconds")
    directory: Path = args.dir.resolve()
    with state_lock(directory):
        if state_path(directory).exists():
            old = load_cluster(directory)
            running = [n.id for n in old.nodes if node_running(old, n)]
            if running:
                raise CliError(f"a cluster is already running in {directory} (nodes {running}); "
                               f"stop it with 'suoi cluster down --dir {directory}'")
        node_ids, ports = _int_list(args.node_ids, "--node-ids"), _int_list(args.ports, "--ports")
        if ports is not None and args.base_port is not None:
            raise CliError("give --ports or --base-port, not both")
        brokers = args.brokers if args.brokers is not None else len(node_ids or [])
        if args.brokers is None and node_ids is None:
            raise CliError("the following arguments are required: --brokers (or --node-ids)")
        kept_id = _existing_cluster_id(directory, layout(brokers, args.controllers, node_ids))
        overrides = _overrides(args.override)
        _check_security_mode(directory, args.secure, kept_id is not None, overrides)
        cluster = plan_cluster(directory, brokers, args.controllers, base_port=args.base_port, node_ids=node_ids,
                               ports=ports, cluster_id=kept_id)
        cluster.secure = args.secure
        if args.base_port is not None or ports is not None:
            busy = [p for n in cluster.nodes for p in (n.port, n.controller_port, n.admin_port)
                    if p is not None and port_in_use(p)]
            if busy:
                given = f"--base-port {args.base_port}" if ports is None else f"--ports {args.ports}"
                raise CliError(f"port(s) {', '.join(map(str, busy))} on {HOST} already in use ({given})")
        chosen = prepare(cluster, kept_data=kept_id is not None) if cluster.secure else None
        racks = [r.strip() for r in (args.racks or "").split(",") if r.strip()]
        broker_index = {n.id: i for i, n in enumerate(cluster.brokers)}
        for n in cluster.nodes:
            cluster.data_dir(n.id).mkdir(parents=True, exist_ok=True)
            header = (f"suoi cluster {cluster.cluster_id}: node {n.id} ({','.join(n.roles)}), "
                      f"written by 'suoi cluster up'")
            props = {**node_properties(cluster, n),
                     **(node_security_properties(cluster, n, chosen) if chosen is not None else {}), **overrides}
            if racks and n.is_broker:
                props["broker.rack"] = racks[broker_index[n.id] % len(racks)]
            text = render_properties(props, header)
            if cluster.secure:  # it holds the node's password
                write_private(cluster.config_path(n.id), text)
            else:
                cluster.config_path(n.id).write_text(text, encoding="utf-8")
            # As `suoi storage format --ignore-formatted` (a kept cluster's dirs are already formatted).
            # --secure: the admin's SCRAM credential as `--add-scram` (KIP-900), on the voters' storage.
            scram = scram_bootstrap(chosen) if chosen is not None and n.is_controller else None
            format_config(cluster.config_path(n.id), cluster.cluster_id, ignore_formatted=True, add_scram=scram)
        (directory / "prometheus.yml").write_text(prometheus_config(cluster), encoding="utf-8")
        # Voters first, so brokers find a quorum forming; cluster.json after every start so that
        # `down` can stop whatever was started even if this command dies half-way.
        for n in sorted(cluster.nodes, key=lambda n: not n.is_controller):
            spawn(cluster, n)
            save_cluster(cluster)
    if args.wait > 0:
        try:
            wait_ready(cluster, cluster.nodes, args.wait)
        except (CliError, KeyboardInterrupt):
            if not args.keep_on_failure:
                with state_lock(directory):
                    stop_pids(cluster, cluster.nodes, timeout=5.0)
                    state_path(directory).unlink(missing_ok=True)
            raise
    if args.output == "json":
        print_json({**to_state(cluster), "security": security_report(cluster)})
    else:
        print(cluster.bootstrap)
        if cluster.secure:  # on stderr: BOOTSTRAP=$(suoi cluster up ...) keeps working
            print_guide(cluster, sys.stderr)
    return 0


def _check_security_mode(directory: Path, secure: bool, kept: bool, overrides: dict[str, str]) -> None:
    """Refuse what cannot work: --secure with overrides of its own settings, and restarting kept
    data in the other mode (a plain cluster's metadata log has no admin credential; a secure
    cluster's data would be served to anyone)."""
    if secure:
        check_overrides(overrides)
    was_secure = existing_security(directory) if kept else None
    if was_secure is not None and was_secure != secure:
        made = "with" if was_secure else "without"
        raise CliError(f"{directory} holds the data of a cluster made {made} --secure; start it "
                       f"{made} --secure, or use another --dir (or 'suoi cluster down --purge --dir {directory}')")


def run_status(args: argparse.Namespace) -> int:
    cluster = load_cluster(args.dir.resolve())
    report = cluster_status(cluster)
    if args.output == "json":
        print_json(report)
    else:
        print_status(report)
    return 0


def run_down(args: argparse.Namespace) -> int:
    directory: Path = args.dir.resolve()
    with state_lock(directory):
        if not state_path(directory).exists() and args.purge:
            removed = _purge(directory, None)
            _say(args, {"stopped": {}, "purged": removed},
                 f"No cluster running in {directory}; removed {len(removed)} node director{'y' if len(removed) == 1 else 'ies'}.")
            return 0
        cluster = load_cluster(directory)
        # Brokers first (a controlled shutdown needs the controllers), then controller-only nodes.
        result = stop_pids(cluster, [n for n in cluster.nodes if n.is_broker], timeout=args.timeout)
        result.update(stop_pids(cluster, [n for n in cluster.nodes if not n.is_broker], timeout=args.timeout))
        still = [n.id for n in cluster.nodes if node_running(cluster, n)]
        if still:
            raise CliError(f"node(s) {still} still running after SIGKILL; {state_path(directory)} kept")
        state_path(directory).unlink(missing_ok=True)
        removed = _purge(directory, cluster) if args.purge else []
    stopped = sum(1 for v in result.values() if v != "not running")
    text = f"Stopped {stopped} node{'s' if stopped != 1 else ''} of cluster {cluster.cluster_id}"
    killed = [i for i, v in result.items() if v == "killed"]
    if killed:
        text += f" (SIGKILL: {', '.join(map(str, killed))})"
    text += "; data removed." if args.purge else f"; data kept in {directory}."
    _say(args, {"cluster_id": cluster.cluster_id, "stopped": {str(k): v for k, v in result.items()},
                "purged": removed}, text)
    return 0


def _purge(directory: Path, cluster: Cluster | None) -> list[str]:
    dirs = ([cluster.node_dir(n.id) for n in cluster.nodes] if cluster is not None
            else sorted(p.parent for p in directory.glob("node-*/server.properties")))
    removed = []
    for d in dirs:
        if d.is_dir():
            shutil.rmtree(d)
            removed.append(str(d))
    removed += purge_files(directory)  # --secure's tls/ and *.properties
    (directory / "prometheus.yml").unlink(missing_ok=True)
    (directory / ".cluster.lock").unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        directory.rmdir()  # only if nothing else is in it
    return removed


def run_start_node(args: argparse.Namespace) -> int:
    if args.wait < 0:
        raise CliError("--wait must be 0 or more seconds")
    with state_lock(args.dir.resolve()):
        cluster = load_cluster(args.dir.resolve())
        node = cluster.node(args.node)
        if node_running(cluster, node):
            raise CliError(f"node {node.id} is already running (pid {node.pid})")
        spawn(cluster, node)
        save_cluster(cluster)
    if args.wait > 0:
        wait_ready(cluster, [node], args.wait)
    _say(args, {"node": node.id, "pid": node.pid, "address": node.address,
                "controller_address": node.controller_address},
         f"Started node {node.id} (pid {node.pid}).")
    return 0


def run_stop_node(args: argparse.Namespace) -> int:
    with state_lock(args.dir.resolve()):
        cluster = load_cluster(args.dir.resolve())
        node = cluster.node(args.node)
        if not node_running(cluster, node):
            raise CliError(f"node {node.id} is not running")
        outcome = stop_pids(cluster, [node], sig=signal.SIGKILL if args.kill else signal.SIGTERM,
                            timeout=args.timeout)[node.id]
    _say(args, {"node": node.id, "pid": node.pid, "outcome": outcome},
         f"{'Killed' if outcome == 'killed' else 'Stopped'} node {node.id} (pid {node.pid}).")
    return 0


def _say(args: argparse.Namespace, obj: dict[str, Any], text: str) -> None:
    if getattr(args, "output", "text") == "json":
        print_json(obj)
    else:
        print(text)
