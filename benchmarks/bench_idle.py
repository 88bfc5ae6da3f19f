"""What a suoi node costs while no client is active (issue 19): CPU and wake-ups per second.

Configurations (``--configs``, in this order; each started, left to settle, then measured):

* ``bare``: a KRaft combined node as the benchmarks start it (`common.start_suoi_kraft`) without
  the admin endpoint;
* ``admin``: + the admin HTTP endpoint (as every other benchmark starts it);
* ``registry``: + the embedded schema registry (``schema.registry.listeners``);
* ``console``: + the web console (``console.listeners``): `config/server.properties`' set,
  what ``make run`` starts;
* ``cluster``: ``suoi cluster up --brokers 3 --controllers 0`` (three combined nodes, three
  Raft voters; their admin endpoints, no registry/console), one topic of 3 partitions with 3
  replicas so each broker parks replica fetchers on idle partitions; every node measured, the
  metadata quorum's leader marked.

For each node, over ``--seconds`` after ``--settle`` seconds of quiet: CPU % of one core
(utime+stime of every thread, /proc/PID/stat), context switches per second summed over its
threads (/proc/PID/task/*/status: voluntary = a thread blocked and was woken, i.e. a wake-up;
involuntary = preempted), and per thread group (threads named alike, digits dropped: "rdk:broker").
``--probe`` also counts the event loop's callbacks by name and the parked Fetches by max wait
(`idle_probe.py`, loaded through a ``sitecustomize.py``), ``--strace`` the system calls
(``strace -f -c``); both cost the node CPU themselves, so their figures come from separate runs.

``--trees before=/tmp/idle-before/src,after=src`` alternates source trees, round by round.

    python benchmarks/bench_idle.py --seconds 30 --rounds 2 --trees before=/tmp/idle-before/src,after=src
    python benchmarks/bench_idle.py --configs console,cluster --probe --seconds 20
    python benchmarks/bench_idle.py --configs console --strace --seconds 20
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import idle_probe
from common import REPO_ROOT, Target, _spawn, free_port, log
from confluent_kafka.admin import AdminClient, NewTopic

CLK_TCK = os.sysconf("SC_CLK_TCK")
CONFIGS = ("bare", "admin", "registry", "console", "cluster")
DIGITS = re.compile(r"\d+")
LEADER_LINE = re.compile(r"^kafka_server_raft_metrics_current_leader (\S+)$", re.M)


# ----------------------------------------------------------------------------- /proc readings
def thread_sample(pid: int) -> dict[int, tuple[str, int, int, int]]:
    """Per thread: (name, CPU ticks, voluntary, involuntary context switches)."""
    out: dict[int, tuple[str, int, int, int]] = {}
    for tid_s in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid_s}/stat") as f:
                stat = f.read()
            with open(f"/proc/{pid}/task/{tid_s}/status") as f:
                status = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:  # the thread ended meanwhile
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat.rpartition(")")[2].split()
        out[int(tid_s)] = (name, int(fields[11]) + int(fields[12]),
                           int(status["voluntary_ctxt_switches"]), int(status["nonvoluntary_ctxt_switches"]))
    return out


def group_name(name: str, tid: int, pid: int) -> str:
    return "event loop (main)" if tid == pid else DIGITS.sub("", name) or name


def measure(pids: dict[str, int], seconds: float, probe_dir: str | None,
            strace_dir: str | None = None) -> dict[str, Any]:
    """Sample every node at the start and the end of `seconds`; per node its figures (and with
    `strace_dir` its system calls, `strace -f -c`: they cost the node CPU, so separate runs)."""
    if probe_dir:
        for pid in pids.values():
            os.kill(pid, signal.SIGUSR1)  # start the loop's counts over
        for pid in pids.values():
            read_probe(probe_dir, pid)  # (what came before: dropped, once the node has written it)
    tracers = [subprocess.Popen(["strace", "-f", "-c", "-p", str(pid), "-o", f"{strace_dir}/{label}.txt"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for label, pid in pids.items()] if strace_dir else []
    before = {label: thread_sample(pid) for label, pid in pids.items()}
    t0 = time.monotonic()
    time.sleep(seconds)  # the measured idle window: nothing to poll for
    for tracer in tracers:  # (strace prints its counts when interrupted)
        tracer.send_signal(signal.SIGINT)
        tracer.wait(timeout=30)
    if probe_dir:
        for pid in pids.values():
            os.kill(pid, signal.SIGUSR1)
    after = {label: thread_sample(pid) for label, pid in pids.items()}
    elapsed = time.monotonic() - t0
    result: dict[str, Any] = {}
    for label, pid in pids.items():
        loop = read_probe(probe_dir, pid) if probe_dir else {}
        py_names = loop.get("threads", {})  # Python's names of its threads (the OS sees "python")
        groups: dict[str, list[float]] = {}
        for tid, (name, ticks, vol, invol) in after[label].items():
            b = before[label].get(tid, (name, 0, 0, 0))  # a thread started meanwhile counts from 0
            g = groups.setdefault(group_name(py_names.get(str(tid), name), tid, pid), [0, 0, 0, 0])
            g[0] += 1
            g[1] += (ticks - b[1]) / CLK_TCK / elapsed * 100
            g[2] += (vol - b[2]) / elapsed
            g[3] += (invol - b[3]) / elapsed
        node = {"threads": len(after[label]), "cpu_pct": sum(g[1] for g in groups.values()),
                "wakeups_s": sum(g[2] for g in groups.values()), "preempted_s": sum(g[3] for g in groups.values()),
                "groups": groups}
        if loop:
            node["loop"] = loop
        if strace_dir:
            node["syscalls"] = read_strace(Path(strace_dir) / f"{label}.txt")
        result[label] = node
    return result


def read_probe(probe_dir: str, pid: int) -> dict[str, Any]:
    path = Path(probe_dir) / f"{pid}.json"
    deadline = time.monotonic() + 5
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # the node writes it from its signal handler
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    path.unlink()
    return data


def read_strace(path: Path) -> dict[str, int]:
    """`strace -c`'s table: calls by system call."""
    calls: dict[str, int] = {}
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return calls
    for line in lines:
        parts = line.split()
        if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
            calls[parts[-1]] = int(parts[3])
    return calls


# ----------------------------------------------------------------------------- nodes
def node_env(src: str, probe_dir: str | None) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=os.path.abspath(src))
    if probe_dir:
        env["PYTHONPATH"] = probe_dir + os.pathsep + env["PYTHONPATH"]
        env["IDLE_PROBE_DIR"] = probe_dir
    return env


def start_single(config: str, src: str, probe_dir: str | None, ready_timeout: float) -> Target:
    """One KRaft combined node as `common.start_suoi_kraft` starts it, with the parts of `config`."""
    workdir = tempfile.mkdtemp(prefix=f"bench-idle-{config}-")
    port, cport = free_port(), free_port()
    lines = ["process.roles=broker,controller", "node.id=1", f"log.dirs={workdir}/data",
             f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
             "controller.listener.names=CONTROLLER", f"controller.quorum.voters=1@127.0.0.1:{cport}",
             "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
             "offsets.topic.replication.factor=1"]
    if config != "bare":
        lines.append(f"admin.listeners=http://127.0.0.1:{free_port()}")
    if config in ("registry", "console"):  # as config/server.properties: the internal topics' RF 1
        lines += ["transaction.state.log.replication.factor=1", "transaction.state.log.min.isr=1",
                  f"schema.registry.listeners=http://127.0.0.1:{free_port()}"]
    if config == "console":
        lines.append(f"console.listeners=http://127.0.0.1:{free_port()}")
    props = os.path.join(workdir, "server.properties")
    Path(props).write_text("\n".join(lines) + "\n")
    argv = [sys.executable, "-m", "suoi", "broker", "--config", props]
    return _spawn(f"idle-{config}", argv, port, env=node_env(src, probe_dir), workdir=workdir,
                  ready_timeout=ready_timeout, is_peer=False)


class Cluster:
    """`suoi cluster up --brokers 3 --controllers 0` from a tree; stopped by `cluster down`, then
    SIGKILL by PID for a node still alive."""

    def __init__(self, src: str, probe_dir: str | None, ready_timeout: float) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="bench-idle-cluster-")) / "cluster"
        self.env = node_env(src, probe_dir)
        self.ready_timeout = ready_timeout
        self.nodes: list[dict[str, Any]] = []

    def _suoi(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "suoi", "cluster", *argv, "--dir", str(self.dir)],
                              capture_output=True, text=True, env=self.env, stdin=subprocess.DEVNULL,
                              timeout=self.ready_timeout + 60, check=False)

    def up(self) -> str:
        proc = self._suoi("up", "--brokers", "3", "--controllers", "0", "--wait", str(self.ready_timeout))
        if (self.dir / "cluster.json").exists():
            self.nodes = json.loads((self.dir / "cluster.json").read_text())["nodes"]
        if proc.returncode != 0:
            raise RuntimeError(f"cluster up failed: {proc.stderr[-2000:]}")
        return proc.stdout.strip().splitlines()[-1]

    def leader(self) -> int | None:
        import urllib.request

        for n in self.nodes:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{n['admin_port']}/metrics", timeout=5) as r:
                    m = LEADER_LINE.search(r.read().decode())
                if m:
                    return int(float(m[1]))
            except OSError:
                continue
        return None

    def stop(self) -> None:
        if self.nodes:
            self._suoi("down")
        for n in self.nodes:
            pid = n.get("pid")
            if pid and Path(f"/proc/{pid}").exists():
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    mine = os.fsencode(str(self.dir)) in f.read()
                if mine:
                    os.kill(int(pid), signal.SIGKILL)
        import shutil

        shutil.rmtree(self.dir.parent, ignore_errors=True)


def create_replicated_topic(bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic("idle-replicated", num_partitions=3, replication_factor=3)],
                        operation_timeout=30)["idle-replicated"].result(timeout=60)


def run_config(config: str, src: str, args: argparse.Namespace) -> dict[str, Any]:
    probe_dir = None
    if args.probe:
        probe_dir = tempfile.mkdtemp(prefix="bench-idle-probe-")
        Path(probe_dir, "sitecustomize.py").write_text(
            idle_probe.SITECUSTOMIZE.format(bench_dir=str(Path(__file__).resolve().parent)))
    strace_dir = tempfile.mkdtemp(prefix="bench-idle-strace-") if args.strace else None
    if config == "cluster":
        cluster = Cluster(src, probe_dir, args.ready_timeout)
        try:
            create_replicated_topic(cluster.up())
            time.sleep(args.settle)  # start-up's work (elections, the topic's replicas) settles
            leader = cluster.leader()
            followers = iter(range(1, len(cluster.nodes)))
            pids = {(f"leader (node {n['id']})" if n["id"] == leader else f"follower {next(followers)} (node {n['id']})"):
                    int(n["pid"]) for n in cluster.nodes}
            return measure(pids, args.seconds, probe_dir, strace_dir)
        finally:
            cluster.stop()
    target = start_single(config, src, probe_dir, args.ready_timeout)
    try:
        time.sleep(args.settle)  # start-up's work (the registry's election, the console's first snapshot)
        assert target.pid is not None
        return measure({"node": target.pid}, args.seconds, probe_dir, strace_dir)
    finally:
        target.stop()


# ----------------------------------------------------------------------------- report
def print_summary(results: list[dict[str, Any]]) -> None:
    """Per configuration and node: each tree's rounds (CPU %, wake-ups/s) side by side."""
    rows: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = {}
    for r in results:
        for node, fig in sorted(r["nodes"].items()):
            role = node.split(" (node")[0]  # a cluster's nodes by role: their ids vary run to run
            rows.setdefault((r["config"], role), {}).setdefault(r["tree"], []).append(fig)
    trees = list(dict.fromkeys(r["tree"] for r in results))
    print("\n| configuration | node | " + " | ".join(f"{t}: CPU % / wake-ups/s / threads" for t in trees) + " |")
    print("|---|---|" + "---|" * len(trees))
    for (config, node), by_tree in rows.items():
        cells = []
        for t in trees:
            figs = by_tree.get(t, [])
            cells.append(", ".join(f"{f['cpu_pct']:.2f} / {f['wakeups_s']:.0f} / {f['threads']}" for f in figs) or "-")
        print(f"| {config} | {node} | " + " | ".join(cells) + " |")


def print_detail(r: dict[str, Any], top: int, seconds: float) -> None:
    for node, fig in r["nodes"].items():
        print(f"\n{r['tree']} / {r['config']} / {node}: CPU {fig['cpu_pct']:.2f} %, "
              f"{fig['wakeups_s']:.1f} wake-ups/s (+{fig['preempted_s']:.1f} preempted/s), {fig['threads']} threads")
        for name, (n, cpu, vol, invol) in sorted(fig["groups"].items(), key=lambda kv: -kv[1][2]):
            print(f"    {name:32} x{n:<3} CPU {cpu:5.2f} %  wake-ups/s {vol:7.1f}  preempted/s {invol:5.1f}")
        calls = fig.get("syscalls")
        if calls:
            top_calls = sorted(calls.items(), key=lambda kv: -kv[1])[:top]
            print("    system calls/s: " + ", ".join(f"{name} {n / seconds:.1f}" for name, n in top_calls))
        loop = fig.get("loop")
        if loop:
            secs = loop.get("seconds") or 1
            for kind in ("timer", "soon", "parked fetch"):
                counts = Counter(loop.get(kind, {}))
                total = sum(counts.values())
                print(f"    loop {kind} callbacks: {total / secs:.1f}/s")
                for name, n in counts.most_common(top):
                    print(f"        {n / secs:7.2f}/s  {name}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated, of {', '.join(CONFIGS)}")
    ap.add_argument("--trees", default=f"current={REPO_ROOT / 'src'}", help="label=src,... alternated per round")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=30.0, help="the measured idle window")
    ap.add_argument("--settle", type=float, default=10.0, help="quiet seconds after start-up before measuring")
    ap.add_argument("--probe", action="store_true", help="count the event loop's callbacks (idle_probe.py)")
    ap.add_argument("--strace", action="store_true", help="count the nodes' system calls (strace -f -c)")
    ap.add_argument("--top", type=int, default=15, help="callback names shown per kind")
    ap.add_argument("--ready-timeout", type=float, default=60.0)
    ap.add_argument("--json", help="also write every result to this file")
    args = ap.parse_args()
    trees = [t.split("=", 1) for t in args.trees.split(",")]
    configs = [c for c in args.configs.split(",") if c]
    unknown = set(configs) - set(CONFIGS)
    if unknown:
        ap.error(f"unknown configurations: {', '.join(sorted(unknown))}")
    results = []
    for rnd in range(args.rounds):
        for config in configs:
            order = trees if rnd % 2 == 0 else trees[::-1]  # alternate which tree goes first
            for label, src in order:
                load = os.getloadavg()[0]
                log(f"round {rnd + 1}: {config} from {label} ({src}), load {load:.2f}")
                r = {"round": rnd + 1, "config": config, "tree": label, "load1": load,
                     "nodes": run_config(config, src, args)}
                print_detail(r, args.top, args.seconds)
                results.append(r)
    print_summary(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
