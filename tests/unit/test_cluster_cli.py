"""`suoi cluster` without brokers: argument handling, node layout, generated configs, the state
file, and that `down` signals only the PIDs in cluster.json (stand-in processes, no broker)."""

from __future__ import annotations

import base64
import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from suoi.cli import cluster as cc
from suoi.cli.main import main
from suoi.config import load_config, read_properties
from tests.conftest import wait_until


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse usage errors exit through ToolArgumentParser.error
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def one_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, out, err = run_cli(capsys, *argv)
    assert code == 1, (code, out, err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("suoi cluster"), err
    assert "Traceback" not in err
    return lines[0]


# ---------------------------------------------------------------------------- layout


def test_combined_mode_up_to_three_voters() -> None:
    assert cc.layout(1, 0) == [(1, ["broker", "controller"])]
    assert cc.layout(3, 0) == [(i, ["broker", "controller"]) for i in (1, 2, 3)]
    assert cc.layout(5, 0) == [(1, ["broker", "controller"]), (2, ["broker", "controller"]),
                               (3, ["broker", "controller"]), (4, ["broker"]), (5, ["broker"])]


def test_controller_only_nodes_follow_the_brokers() -> None:
    assert cc.layout(2, 3) == [(1, ["broker"]), (2, ["broker"]), (3, ["controller"]), (4, ["controller"]),
                               (5, ["controller"])]


@pytest.mark.parametrize(("brokers", "controllers", "message"), [
    (0, 0, "--brokers must be at least 1"),
    (-2, 0, "--brokers must be at least 1"),
    (cc.MAX_BROKERS + 1, 0, "--brokers must be at most"),
    (3, -1, "--controllers must be 0"),
    (3, cc.MAX_CONTROLLERS + 1, "--controllers must be at most"),
])
def test_layout_bounds(brokers: int, controllers: int, message: str) -> None:
    with pytest.raises(cc.CliError, match=message):
        cc.layout(brokers, controllers)


def test_free_ports_are_distinct_loopback_ports(tmp_path: Path) -> None:
    cluster = cc.plan_cluster(tmp_path, 5, 0)
    ports = [p for n in cluster.nodes for p in (n.port, n.controller_port, n.admin_port) if p is not None]
    assert len(ports) == 5 + 3 + 5 == len(set(ports))  # client, controller, admin (metrics) ports
    assert [n.controller_port is not None for n in cluster.nodes] == [True, True, True, False, False]
    assert all(n.port is not None for n in cluster.nodes)


def test_base_port_scheme(tmp_path: Path) -> None:
    cluster = cc.plan_cluster(tmp_path, 2, 1, base_port=20000)
    assert [(n.id, n.port, n.controller_port) for n in cluster.nodes] == [
        (1, 20000, None), (2, 20002, None), (3, None, 20005)]
    assert cluster.bootstrap == "127.0.0.1:20000,127.0.0.1:20002"
    assert cluster.quorum_voters == "3@127.0.0.1:20005"
    assert [n.admin_port for n in cluster.nodes] == [20006, 20007, 20008]
    assert cc.prometheus_config(cluster).endswith('- targets: ["127.0.0.1:20006", "127.0.0.1:20007", "127.0.0.1:20008"]\n')


@pytest.mark.parametrize("base", [80, 65534])
def test_base_port_out_of_range(tmp_path: Path, base: int) -> None:
    with pytest.raises(cc.CliError, match="leaves the port range"):
        cc.plan_cluster(tmp_path, 3, 0, base_port=base)


def test_cluster_id_has_kafkas_format() -> None:
    cid = cc.new_cluster_id()
    assert len(cid) == 22 and "=" not in cid
    assert len(base64.urlsafe_b64decode(cid + "==")) == 16
    assert cc.new_cluster_id() != cid


# ---------------------------------------------------------------------------- generated configs


def test_combined_node_properties(tmp_path: Path) -> None:
    cluster = cc.plan_cluster(tmp_path, 3, 0, base_port=30000, cluster_id="MkU3OEVBNTcwNTJENDM2Qk")
    props = cc.node_properties(cluster, cluster.node(2))
    assert props == {
        "process.roles": "broker,controller",
        "node.id": "2",
        "listeners": "PLAINTEXT://127.0.0.1:30002,CONTROLLER://127.0.0.1:30003",
        "advertised.listeners": "PLAINTEXT://127.0.0.1:30002",
        "controller.listener.names": "CONTROLLER",
        "controller.quorum.voters": "1@127.0.0.1:30001,2@127.0.0.1:30003,3@127.0.0.1:30005",
        "cluster.id": "MkU3OEVBNTcwNTJENDM2Qk",
        "log.dirs": str((tmp_path / "node-2" / "data").resolve()),
        "offsets.topic.replication.factor": "3",
        "transaction.state.log.replication.factor": "3",
        "transaction.state.log.min.isr": "2",
        "log.scrubber.enable": "true",
        "admin.listeners": "http://127.0.0.1:30007",  # after the client/controller pairs, one per node id
    }


def test_internal_topics_fit_a_small_cluster(tmp_path: Path) -> None:
    cluster = cc.plan_cluster(tmp_path, 1, 0, base_port=30000)
    props = cc.node_properties(cluster, cluster.node(1))
    assert (props["offsets.topic.replication.factor"], props["transaction.state.log.replication.factor"],
            props["transaction.state.log.min.isr"]) == ("1", "1", "1")


def test_split_mode_properties(tmp_path: Path) -> None:
    cluster = cc.plan_cluster(tmp_path, 4, 0, base_port=30000)
    broker_only = cc.node_properties(cluster, cluster.node(4))
    assert broker_only["process.roles"] == "broker"
    assert broker_only["listeners"] == "PLAINTEXT://127.0.0.1:30006"
    assert broker_only["controller.quorum.voters"] == cluster.quorum_voters
    split = cc.plan_cluster(tmp_path, 1, 2, base_port=30000)
    controller = cc.node_properties(split, split.node(3))
    assert controller["process.roles"] == "controller"
    assert controller["listeners"] == "CONTROLLER://127.0.0.1:30005"
    assert "advertised.listeners" not in controller
    assert "log.scrubber.enable" not in controller and broker_only["log.scrubber.enable"] == "true"
    assert controller["controller.quorum.voters"] == "2@127.0.0.1:30003,3@127.0.0.1:30005"


def test_rendered_properties_load_as_a_broker_config(tmp_path: Path) -> None:
    cluster = cc.plan_cluster(tmp_path, 3, 0)
    node = cluster.node(1)
    path = tmp_path / "server.properties"
    props = cc.node_properties(cluster, node)
    path.write_text(cc.render_properties(props, "a header\nof two lines"))
    read = read_properties(path)
    assert read == props
    config = load_config(read, {})
    assert config.node_id == 1
    assert {(x.name, x.port) for x in config.listeners} == {("PLAINTEXT", node.port), ("CONTROLLER", node.controller_port)}
    assert config.log_dirs == [(tmp_path / "node-1" / "data").resolve()]


def test_command_line_names_the_config(tmp_path: Path) -> None:
    cluster = cc.plan_cluster(tmp_path, 1, 0)
    assert cluster.command(1) == [sys.executable, "-m", "suoi", "broker", "--config",
                                  str(tmp_path / "node-1" / "server.properties")]


# ---------------------------------------------------------------------------- state file


def test_state_round_trip(tmp_path: Path) -> None:
    cluster = cc.plan_cluster(tmp_path, 2, 1)
    cluster.nodes[0].pid = 1234
    cc.save_cluster(cluster)
    data = json.loads((tmp_path / "cluster.json").read_text())
    assert data["bootstrap"] == cluster.bootstrap and data["cluster_id"] == cluster.cluster_id
    assert [n["roles"] for n in data["nodes"]] == [["broker"], ["broker"], ["controller"]]
    back = cc.load_cluster(tmp_path)
    assert [(n.id, n.roles, n.port, n.controller_port, n.pid) for n in back.nodes] == \
        [(n.id, n.roles, n.port, n.controller_port, n.pid) for n in cluster.nodes]
    assert not list(tmp_path.glob(".cluster.json.*"))  # the temp file was renamed


def test_corrupt_state_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "cluster.json").write_text("{not json")
    assert "is not valid JSON" in one_error(capsys, "cluster", "status", "--dir", str(tmp_path))
    (tmp_path / "cluster.json").write_text('{"nodes": []}')
    assert "not a suoi cluster state file" in one_error(capsys, "cluster", "down", "--dir", str(tmp_path))


# ---------------------------------------------------------------------------- argument handling


@pytest.mark.parametrize(("argv", "message"), [
    (["cluster", "up"], "the following arguments are required: --brokers"),
    (["cluster", "up", "--brokers", "x"], "invalid int value"),
    (["cluster", "up", "--brokers", "0"], "--brokers must be at least 1"),
    (["cluster", "up", "--brokers", "3", "--controllers", "-1"], "--controllers must be 0"),
    (["cluster", "up", "--brokers", "3", "--wait", "-1"], "--wait must be 0 or more"),
    (["cluster", "up", "--brokers", "3", "--base-port", "70000"], "leaves the port range"),
    (["cluster", "up", "--brokers", "1", "--bogus"], "unrecognized arguments: --bogus"),
    (["cluster", "status", "--output", "yaml"], "invalid choice"),
    (["cluster", "start-node"], "the following arguments are required: --node"),
    (["cluster", "explode"], "invalid choice"),
])
def test_bad_arguments_are_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                    argv: list[str], message: str) -> None:
    if argv[1] == "up" and "--dir" not in argv:
        argv = [*argv, "--dir", str(tmp_path / "c")]
    assert message in one_error(capsys, *argv)
    assert not (tmp_path / "c" / "cluster.json").exists()


def test_no_action_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = run_cli(capsys, "cluster")
    assert code == 1 and "up" in err and "status" in err and "down" in err


@pytest.mark.parametrize("action", [["status"], ["down"], ["start-node", "--node", "1"], ["stop-node", "--node", "1"]])
def test_no_cluster_in_dir(capsys: pytest.CaptureFixture[str], tmp_path: Path, action: list[str]) -> None:
    line = one_error(capsys, "cluster", *action, "--dir", str(tmp_path))
    assert f"no cluster in {tmp_path}" in line


def test_busy_base_port_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        line = one_error(capsys, "cluster", "up", "--brokers", "1", "--base-port", str(port),
                         "--dir", str(tmp_path))
    # the next port (its CONTROLLER listener) may happen to be busy too: only ours is certain
    assert f"port(s) {port}" in line and "on 127.0.0.1 already in use" in line
    assert not (tmp_path / "cluster.json").exists()


# ---------------------------------------------------------------------------- processes (stand-ins)

STANDIN = "import signal, sys, time\nif sys.argv[1] == 'stubborn': signal.signal(signal.SIGTERM, signal.SIG_IGN)\n" \
          "print('ready', flush=True)\ntime.sleep(60)\n"


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait(10)


def standin(procs: list[subprocess.Popen[bytes]], *args: str) -> subprocess.Popen[bytes]:
    """A process whose command line names `args` (e.g. a node's config path), like a node would."""
    p = subprocess.Popen([sys.executable, "-c", STANDIN, *args], stdout=subprocess.PIPE)
    assert p.stdout is not None and p.stdout.readline() == b"ready\n"
    procs.append(p)
    return p


def fake_cluster(tmp_path: Path, procs: list[subprocess.Popen[bytes]], *, stubborn: int | None = None) -> cc.Cluster:
    cluster = cc.plan_cluster(tmp_path, 2, 1)
    for n in cluster.nodes:
        mode = "stubborn" if n.id == stubborn else "polite"
        n.pid = standin(procs, mode, str(cluster.config_path(n.id))).pid
    cc.save_cluster(cluster)
    return cluster


def test_status_of_dead_and_live_processes(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                           procs: list[subprocess.Popen[bytes]]) -> None:
    cluster = fake_cluster(tmp_path, procs)
    procs[0].kill()
    procs[0].wait(10)
    code, out, err = run_cli(capsys, "cluster", "status", "--dir", str(tmp_path), "--output", "json")
    assert code == 0, err
    report = json.loads(out)
    assert [(n["id"], n["alive"]) for n in report["nodes"]] == [(1, False), (2, True), (3, True)]
    assert report["bootstrap"] == cluster.bootstrap
    assert report["metadata_error"]  # nothing listens on the broker ports
    assert report["quorum"]["leader_id"] is None and report["quorum"]["error"]
    code, out, _ = run_cli(capsys, "cluster", "status", "--dir", str(tmp_path))
    assert code == 0 and "dead" in out and "Quorum: unknown" in out


def test_down_signals_only_recorded_pids_and_escalates(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                       procs: list[subprocess.Popen[bytes]]) -> None:
    fake_cluster(tmp_path, procs, stubborn=3)
    bystander = standin(procs, "polite", "unrelated")
    state = json.loads((tmp_path / "cluster.json").read_text())
    state["nodes"][1]["pid"] = bystander.pid  # a reused PID: not running node 2's command line
    (tmp_path / "cluster.json").write_text(json.dumps(state))
    code, out, err = run_cli(capsys, "cluster", "down", "--dir", str(tmp_path), "--timeout", "0.5",
                             "--output", "json")
    assert code == 0, err
    assert json.loads(out)["stopped"] == {"1": "stopped", "2": "not running", "3": "killed"}
    assert procs[0].wait(5) == -signal.SIGTERM
    assert procs[2].wait(5) == -signal.SIGKILL
    assert bystander.poll() is None  # not ours: left alone
    assert procs[1].poll() is None
    assert not (tmp_path / "cluster.json").exists()


def test_down_purge_removes_node_dirs(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                      procs: list[subprocess.Popen[bytes]]) -> None:
    cluster = fake_cluster(tmp_path / "c", procs)
    for n in cluster.nodes:
        cluster.data_dir(n.id).mkdir(parents=True)
    code, out, err = run_cli(capsys, "cluster", "down", "--dir", str(tmp_path / "c"), "--purge")
    assert code == 0, err
    assert "Stopped 3 nodes" in out and "data removed" in out
    assert not (tmp_path / "c").exists()


def test_up_refuses_a_running_cluster(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                      procs: list[subprocess.Popen[bytes]]) -> None:
    fake_cluster(tmp_path, procs)
    line = one_error(capsys, "cluster", "up", "--brokers", "2", "--controllers", "1", "--dir", str(tmp_path))
    assert "a cluster is already running" in line and "suoi cluster down" in line


def test_start_and_stop_node_checks(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                    procs: list[subprocess.Popen[bytes]]) -> None:
    fake_cluster(tmp_path, procs)
    assert "already running" in one_error(capsys, "cluster", "start-node", "--node", "2", "--dir", str(tmp_path))
    assert "no node 9" in one_error(capsys, "cluster", "start-node", "--node", "9", "--dir", str(tmp_path))
    code, out, err = run_cli(capsys, "cluster", "stop-node", "--node", "2", "--kill", "--dir", str(tmp_path))
    assert code == 0 and "Killed node 2" in out, err
    assert procs[1].wait(5) == -signal.SIGKILL
    assert "is not running" in one_error(capsys, "cluster", "stop-node", "--node", "2", "--dir", str(tmp_path))


def test_existing_data_keeps_the_cluster_id(tmp_path: Path) -> None:
    cluster = cc.plan_cluster(tmp_path, 3, 0)
    for n in cluster.nodes:
        cluster.node_dir(n.id).mkdir(parents=True)
        cluster.config_path(n.id).write_text(cc.render_properties(cc.node_properties(cluster, n), "x"))
    assert cc._existing_cluster_id(tmp_path, cc.layout(3, 0)) == cluster.cluster_id
    with pytest.raises(cc.CliError, match="holds the data of a different cluster"):
        cc._existing_cluster_id(tmp_path, cc.layout(2, 1))
    assert cc._existing_cluster_id(tmp_path / "empty", cc.layout(3, 0)) is None


def test_pid_running_checks_the_command_line(tmp_path: Path, procs: list[subprocess.Popen[bytes]]) -> None:
    p = standin(procs, "polite", str(tmp_path / "node-1" / "server.properties"))
    assert cc.pid_running(p.pid, tmp_path / "node-1" / "server.properties")
    assert not cc.pid_running(p.pid, tmp_path / "node-2" / "server.properties")
    p.kill()
    # killed but not reaped yet (no wait/poll here): a zombie does not count as running
    wait_until(lambda: not cc.pid_running(p.pid, tmp_path / "node-1" / "server.properties"), timeout=5,
               message="the killed process to stop running")
    p.wait(5)
    assert not cc.pid_running(p.pid, None)
    assert not cc.pid_running(None) and not cc.pid_running(0)


# ---------------------------------------------------------------------------- --node-ids / --ports


def test_explicit_node_ids_and_ports(tmp_path: Path) -> None:
    assert cc.layout(3, 0, [0, 1, 2]) == [(i, ["broker", "controller"]) for i in (0, 1, 2)]
    assert cc.layout(2, 1, [5, 3]) == [(5, ["broker"]), (3, ["broker"]), (6, ["controller"])]
    cluster = cc.plan_cluster(tmp_path, 3, 0, node_ids=[0, 1, 2], ports=[9092, 9095, 9098])
    assert [(n.id, n.port, n.controller_port) for n in cluster.nodes] == [
        (0, 9092, 9093), (1, 9095, 9096), (2, 9098, 9099)]
    assert cluster.bootstrap == "127.0.0.1:9092,127.0.0.1:9095,127.0.0.1:9098"
    assert cluster.quorum_voters == "0@127.0.0.1:9093,1@127.0.0.1:9096,2@127.0.0.1:9099"
    split = cc.plan_cluster(tmp_path, 2, 1, node_ids=[0, 1], ports=[9092, 9093])  # brokers only: no +1
    assert [(n.id, n.port) for n in split.brokers] == [(0, 9092), (1, 9093)]
    [controller] = split.controllers
    assert controller.id == 2 and controller.controller_port not in (9092, 9093)


@pytest.mark.parametrize(("node_ids", "ports", "message"), [
    ([0, 0, 1], None, "--node-ids must be distinct"),
    ([0, -1, 2], None, "--node-ids must be distinct ids of 0 or more"),
    ([0, 1], None, "--node-ids names 2 node"),
    (None, [9092, 9095], "--ports names 2 port"),
    (None, [9092, 9093, 9098], "port \\+ 1"),
    (None, [9092, 9092, 9098], "--ports must be distinct"),
    (None, [80, 9095, 9098], "1024..65535"),
])
def test_explicit_layout_is_validated(tmp_path: Path, node_ids: list[int] | None, ports: list[int] | None,
                                      message: str) -> None:
    with pytest.raises(cc.CliError, match=message):
        cc.plan_cluster(tmp_path, 3, 0, node_ids=node_ids, ports=ports)


def test_a_port_left_in_time_wait_is_free_but_a_listening_one_is_not() -> None:
    import socket

    server = socket.create_server(("127.0.0.1", 0), reuse_port=False)
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    assert cc.port_in_use(port)
    accepted.close()  # the listener's side closes first: its end of the connection stays in TIME_WAIT
    client.recv(1)
    client.close()
    server.close()
    with open("/proc/net/tcp") as f:  # state 06 = TIME_WAIT, local port in hex
        assert any(line.split()[1].endswith(f":{port:04X}") and line.split()[3] == "06" for line in f.readlines()[1:])
    with pytest.raises(OSError), socket.socket() as s:  # the old probe (a plain bind): "in use" for a minute
        s.bind(("127.0.0.1", port))
    assert not cc.port_in_use(port)
