"""What bench_latency.py (and bench_scrape_stall.py) watch of a broker besides the messages: an
ApiVersions round trip on its own connection, suoi's admin endpoint sampled (loop lag, GC
pauses, requests per API), and /metrics scraped as a Prometheus server would."""

from __future__ import annotations

import socket
import threading
import time
from array import array

from common import admin_histogram, admin_metrics, log


def request_counts(text: str) -> dict[str, float]:
    """Requests answered per API, from suoi's /metrics text."""
    prefix = "kafka_network_requestmetrics_requests_total{"
    out = {}
    for line in text.splitlines():
        if line.startswith(prefix):
            out[line.split('request="', 1)[1].split('"', 1)[0]] = float(line.rsplit(" ", 1)[1])
    return out


def broker_sample(admin_port: int | None) -> dict[str, dict[str, float]]:
    """One scrape of suoi's admin endpoint: loop lag and GC pause histograms, requests per API."""
    t0 = time.perf_counter()
    text = admin_metrics(admin_port)
    if admin_port is not None and not text:
        log(f"the admin endpoint did not answer /metrics in {time.perf_counter() - t0:.1f} s")
    return {"loop_lag": admin_histogram(admin_port, "suoi_eventloop_lag_seconds", text),
            "gc": admin_histogram(admin_port, "suoi_gc_pause_seconds", text), "requests": request_counts(text)}


class ApiVersionsProbe:
    """The broker's responsiveness seen from outside, for any broker: an ApiVersions round trip on
    its own connection every `interval_s` (a thread of the parent, which is otherwise asleep).
    Where the admin endpoint's loop-lag probe ticks every 250 ms, this one sees short stalls."""

    def __init__(self, bootstrap: str, interval_s: float) -> None:
        from kio.schema.api_versions.v3.request import ApiVersionsRequest

        from suoi.protocol.codec import encode_request
        host, _, port = bootstrap.rpartition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.frame = encode_request(1, "bench-latency-probe", ApiVersionsRequest(
            client_software_name="bench-latency", client_software_version="1"))
        self.interval_s, self.rtts = interval_s, array("q")
        self.recording = False
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="probe", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self.stopped.wait(self.interval_s):
                t0 = time.perf_counter_ns()
                self.sock.sendall(self.frame)
                need, got = None, 0
                while need is None or got < need:
                    chunk = self.sock.recv(65536)
                    if not chunk:
                        return
                    if need is None:
                        need = int.from_bytes(chunk[:4], "big") + 4
                    got += len(chunk)
                if self.recording:
                    self.rtts.append(time.perf_counter_ns() - t0)
        except OSError:
            return

    def close(self) -> list[float]:
        self.stopped.set()
        self.thread.join(timeout=15)
        self.sock.close()
        return sorted(x / 1e6 for x in self.rtts)


class Scraper:
    """A /metrics scrape every `every_s` during the window (`--scrape-every`), as a Prometheus
    server would do: what a scrape costs the clients of the node shows in the latency."""

    def __init__(self, admin_port: int | None, every_s: float) -> None:
        self.admin_port, self.every_s = admin_port, every_s
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="scraper", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped.wait(self.every_s):
            admin_metrics(self.admin_port)

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=15)
