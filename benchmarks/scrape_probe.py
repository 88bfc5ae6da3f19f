"""What each /metrics scrape costs the node, from inside it (`bench_scrape_stall.py` runs the node with it).

Runs `suoi broker ...` in this process with two diagnostic hooks that are not in the product:

* a ticker task on the node's event loop sleeps `TICK_S` (1 ms) again and again: the longest gap
  between two of its wake-ups during a scrape is the longest the loop could not run a ready
  callback (its own work, a thread holding the GIL), with a floor of the tick itself;
* `AdminServer._metrics` (the handler, in every tree) is wrapped: per scrape, one JSON line appended
  to `--out`: its wall time, the process's CPU (every thread, `getrusage`), the loop thread's CPU
  (`thread_time`: the ticker's and the ApiVersions probe's callbacks included, the same in every
  tree), the longest ticker gap, the body's bytes as sent (gzipped when the scraper asked for it)
  and its samples (lines not starting with '#').

    python benchmarks/scrape_probe.py --out /tmp/scrapes.jsonl broker --config server.properties
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import sys
import time
from typing import Any

TICK_S = 0.001


class Ticker:
    """The loop's longest gap between two `TICK_S` sleeps since `reset`."""

    def __init__(self) -> None:
        self.longest = 0.0
        self.last = time.perf_counter()

    def reset(self) -> None:
        self.longest = 0.0

    def until_now(self) -> float:
        """The longest gap, counting the one still open (a scrape that ended with a long step)."""
        return max(self.longest, time.perf_counter() - self.last)

    async def run(self) -> None:
        import asyncio

        while True:
            await asyncio.sleep(TICK_S)
            now = time.perf_counter()
            self.longest = max(self.longest, now - self.last)
            self.last = now


def _process_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def install(out: str) -> None:
    import asyncio

    from suoi.http.admin.server import AdminServer

    ticker = Ticker()
    sink = open(out, "a", buffering=1)  # noqa: SIM115 - one line per scrape, for the process's life
    start = AdminServer.start

    async def start_ticking(self: Any, *args: Any, **kwargs: Any) -> None:
        await start(self, *args, **kwargs)
        self._probe_ticker = asyncio.get_running_loop().create_task(ticker.run(), name="scrape-probe-ticker")

    AdminServer.start = start_ticking  # type: ignore[method-assign]
    scrape = AdminServer._metrics

    async def metrics(self: Any, request: Any) -> Any:
        ticker.reset()
        w0, p0, l0 = time.perf_counter(), _process_cpu(), time.thread_time()
        response = await scrape(self, request)
        w1, p1, l1 = time.perf_counter(), _process_cpu(), time.thread_time()
        longest = ticker.until_now()
        sent = bytes(response.body)
        body = gzip.decompress(sent) if response.headers.get("Content-Encoding") == "gzip" else sent
        samples = sum(1 for line in body.split(b"\n") if line and not line.startswith(b"#"))
        sink.write(json.dumps({"wall_ms": (w1 - w0) * 1e3, "cpu_ms": (p1 - p0) * 1e3, "loop_cpu_ms": (l1 - l0) * 1e3,
                               "longest_gap_ms": longest * 1e3, "bytes": len(sent), "samples": samples,
                               "accept": request.headers.get("Accept", "")}) + "\n")
        return response

    AdminServer._metrics = metrics  # type: ignore[method-assign]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="a JSON line per scrape is appended here")
    ap.add_argument("suoi_args", nargs=argparse.REMAINDER, help="the suoi command line (e.g. broker --config F)")
    args = ap.parse_args()
    install(args.out)
    from suoi.cli.main import main as suoi_main

    return suoi_main(args.suoi_args)


if __name__ == "__main__":
    sys.exit(main())
