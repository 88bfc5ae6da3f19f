"""`suoi cluster up --node-ids ... --ports ...` (the layout client test suites assume) and a
restart on the same ports at once: ports the stopped cluster left in TIME_WAIT are reused."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from suoi.cli.cluster_layout import free_ports, port_in_use
from tests.conftest import wait_until
from tests.e2e.cli import cluster_down_for_good, ok


def ports_with_a_free_neighbour(count: int) -> list[int]:
    """`count` ports P (spaced like 9092,9095,...) whose P+1 is free too."""
    for _ in range(50):
        picked = [p for p in free_ports(2 * count) if p < 65535 and not port_in_use(p + 1)]
        if len(picked) >= count and len({p for q in picked[:count] for p in (q, q + 1)}) == 2 * count:
            return picked[:count]
    raise AssertionError("no free port pairs")


def time_wait_ports() -> set[int]:
    with open("/proc/net/tcp") as f:
        rows = [line.split() for line in f.readlines()[1:]]
    return {int(r[1].rsplit(":", 1)[1], 16) for r in rows if r[3] == "06"}


def test_explicit_ids_and_ports_and_an_immediate_restart(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    ports = ports_with_a_free_neighbour(1)  # one node keeps it quick; unit tests cover bigger layouts
    up = ("cluster", "up", "--node-ids", "0", "--ports", ",".join(map(str, ports)), "--dir", str(directory),
          "--wait", "60", "--output", "json")
    try:
        state = json.loads(ok(*up, timeout=90))
        assert [(n["id"], n["port"], n["controller_port"]) for n in state["nodes"]] == [(0, ports[0], ports[0] + 1)]
        status = json.loads(ok("cluster", "status", "--dir", str(directory), "--output", "json"))
        assert [n["in_metadata"] for n in status["nodes"]] == [True]
        assert status["quorum"]["leader_id"] == 0

        # a client connected while the cluster stops: the nodes close it, so their ports keep it in TIME_WAIT
        clients = [socket.create_connection(("127.0.0.1", p)) for p in ports]
        ok("cluster", "down", "--dir", str(directory), timeout=90)
        for c in clients:
            c.settimeout(10)
            assert c.recv(1) == b""
            c.close()
        assert time_wait_ports() & set(ports), "the stopped nodes left no TIME_WAIT on their ports"

        state = json.loads(ok(*up, timeout=90))  # at once, same ports, same data
        assert [n["port"] for n in state["nodes"]] == ports
        status = json.loads(ok("cluster", "status", "--dir", str(directory), "--output", "json"))
        assert [n["in_metadata"] for n in status["nodes"]] == [True]
    finally:
        cluster_down_for_good(directory)
    wait_until(lambda: not any(port_in_use(p) for p in ports), timeout=10, message="ports released")
