"""The admin HTTP endpoint: an aiohttp app on the node's own event loop.

Routes (Redpanda's admin-port layout, Kafka's metric names):

- `GET /metrics` — Prometheus text, or OpenMetrics when the scraper asks for it (`Accept:
  application/openmetrics-text`), prometheus-client's encoding, kept per series between scrapes
  (`exposition.py`) and made on the event loop in slices of `SCRAPE_SLICE_S`; gzipped in those
  slices when the scraper accepts it (`Accept-Encoding: gzip`, what Prometheus sends:
  `content_encoding.py`).
- `GET /v1/status/ready` — 200 once the node serves clients, 503 with the reason before.
- `GET /v1/status/live` — 200 while the event loop answers (503 once stopping).
- `GET /v1/node`, `/v1/partitions`, `/v1/cluster`, `/v1/groups` — small JSON views for scripts.

The broker binds the ports after its logs are loaded (a port in use refuses the start) and loads
this app on them once it serves Kafka clients, or after `ADMIN_LOAD_WAIT_S` when it cannot (no
quorum yet: readiness then says why), so aiohttp's import does not delay the first Metadata;
stopped first thing when it stops.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
from collections.abc import Iterator
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from prometheus_client.exposition import choose_encoder
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry

from suoi.http.admin.collector import NodeCollector
from suoi.http.admin.content_encoding import gzip_accepted, gzip_steps
from suoi.http.admin.exposition import Exposition, Family, run_sliced
from suoi.http.admin.node_view import NodeView
from suoi.http.admin.runtime import RuntimeMonitor
from suoi.http.admin.settings import AdminSettings
from suoi.metrics_recorder import MetricsRecorder

log = logging.getLogger("suoi.http.admin")


#: The longest a scrape runs on the event loop before it lets the loop's other callbacks run (a
#: step is at most `exposition.ROWS_PER_STEP` rows, ~0.1 ms, or `DERIVE_PER_STEP` new series).
SCRAPE_SLICE_S = 0.0005


class AdminServer:
    """One node's admin endpoint (all its `admin.listeners`)."""

    def __init__(self, broker: Any, settings: AdminSettings, recorder: MetricsRecorder) -> None:
        self.settings = settings
        self.view = NodeView(broker)
        self.runtime = RuntimeMonitor()
        self.collector = NodeCollector(self.view, recorder, self.runtime, settings.log_partitions_max)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.collector)
        #: prometheus-client's own, read from /proc and the gc module: safe in any thread
        self.exposition = Exposition()
        self._process_collectors: list[Collector] = [
            ProcessCollector(registry=self.registry),  # process_resident_memory_bytes, process_open_fds, CPU
            GCCollector(registry=self.registry),  # python_gc_collections_total per generation
            PlatformCollector(registry=self.registry),  # python_info
        ]
        self._runner: web.AppRunner | None = None
        #: (host, port) actually bound, port 0 resolved
        self.addresses: list[tuple[str, int]] = []
        self._stopping = False

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/v1/status/ready", self._ready)
        app.router.add_get("/v1/status/live", self._live)
        app.router.add_get("/v1/node", self._node)
        app.router.add_get("/v1/partitions", self._partitions)
        app.router.add_get("/v1/cluster", self._cluster)
        app.router.add_get("/v1/groups", self._groups)
        return app

    async def start(self, sockets: list[socket.socket] | None = None) -> None:
        """Serve ``settings.listeners``, or the listening ``sockets`` the node bound for them."""
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False, logger=_OneLineBadInput(log))
        await self._runner.setup()
        sites: list[web.BaseSite] = ([web.SockSite(self._runner, sock) for sock in sockets] if sockets is not None else
                                     [web.TCPSite(self._runner, host or None, port, reuse_address=True)
                                      for host, port in self.settings.listeners])
        for site in sites:
            await site.start()
        self.addresses = [(str(a[0]), int(a[1])) for a in self._runner.addresses]
        self.runtime.start()
        log.info("admin endpoint on %s (/metrics, /v1/status/ready)",
                 ", ".join(f"http://{_host(h)}:{p}" for h, p in self.addresses))

    async def stop(self) -> None:
        self._stopping = True
        await self.runtime.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- handlers ----------------------------------------------------------------------
    async def _metrics(self, request: web.Request) -> web.Response:
        """Made on the event loop, in slices of `SCRAPE_SLICE_S`: reading the node, making the
        families and writing their text (prometheus-client's, reused per series: ~1-2 µs a
        sample instead of 6-12). A thread did the writing before, but it held the GIL whenever
        the loop released it (every epoll, every socket write) for up to a switch interval: a
        scrape cost the loop 3-11 ms in those waits; now the loop waits at most a slice. The
        gzip of the body, when asked for, is made in the same slices."""
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        steps = self.exposition.steps(self.families(), encoder)
        headers = {"Content-Type": content_type, "Vary": "Accept, Accept-Encoding"}
        if gzip_accepted(request.headers.get("Accept-Encoding", "")):
            steps = gzip_steps(steps)
            headers["Content-Encoding"] = "gzip"
        return web.Response(body=await run_sliced(steps, SCRAPE_SLICE_S), headers=headers)

    def families(self) -> Iterator[Family | None]:
        """What /metrics shows, family by family (None: a step of reading the node done)."""
        yield from self.collector.steps()
        for collector in self._process_collectors:
            yield None
            yield from collector.collect()

    async def _ready(self, _request: web.Request) -> web.Response:
        ready = self.view.readiness()
        return web.json_response({"ready": ready.ready, "reason": ready.reason}, status=200 if ready.ready else 503)

    async def _live(self, _request: web.Request) -> web.Response:
        if self._stopping:
            return web.json_response({"live": False, "reason": "stopping"}, status=503)
        return web.json_response({"live": True, "eventloop_lag_seconds": self.runtime.last_loop_lag})

    async def _node(self, _request: web.Request) -> web.Response:
        return web.json_response(self.view.info())

    async def _partitions(self, _request: web.Request) -> web.Response:
        rows = []
        for p in sorted(self.view.partitions(), key=lambda p: (p.topic, p.partition)):
            row = dataclasses.asdict(p)
            row.update(under_replicated=p.under_replicated, under_min_isr=p.under_min_isr)
            rows.append(row)
        return web.json_response({"node_id": self.view.node_id, "partitions": rows})

    async def _cluster(self, _request: web.Request) -> web.Response:
        cluster = self.view.cluster()
        return web.json_response({"mode": "kraft", **dataclasses.asdict(cluster)})

    async def _groups(self, _request: web.Request) -> web.Response:
        groups = []
        for g in self.view.group_lags():
            parts: list[dict[str, Any]] = [{"topic": t, "partition": p, "committed_offset": o, "high_watermark": hw, "lag": lag}
                     for (t, p), (o, hw, lag) in sorted(g.partitions.items())]
            groups.append({"group": g.group, "state": g.state, "members": g.members, "partitions": parts,
                           "lag_sum": sum(x["lag"] for x in parts)})
        return web.json_response({"node_id": self.view.node_id, "groups": groups})


class _OneLineBadInput(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp logs a malformed HTTP request with a traceback at ERROR; bad input gets one WARNING
    line here (the team's rule), while a failure of our own handlers keeps its traceback."""

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        if isinstance(exc_info, HttpProcessingError):
            detail = " ".join(str(exc_info).split())[:200]
            self.logger.warning("admin endpoint: bad HTTP request (%s): %s", str(msg) % args if args else msg, detail)
            return
        self.logger.error(msg, *args, exc_info=exc_info, **kwargs)


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
