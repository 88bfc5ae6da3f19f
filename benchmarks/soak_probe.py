"""Run ``suoi`` with a memory probe inside (for ``bench_soak.py --probe``): what grows, and where.

    python benchmarks/soak_probe.py --out probe.jsonl --every 60 [--tracemalloc 12] -- broker --listeners ...

Everything here is the benchmark's: the broker itself is started unchanged (``suoi`` CLI's
``console_main`` with the arguments after ``--``), and this wrapper adds a daemon thread that,
every ``--every`` seconds, schedules one probe on the broker's event loop (so the broker's
maps are read between two callbacks, never while they change) and appends one JSON line to
``--out``:

* ``rss``: VmRSS / RssAnon / RssFile (/proc/self/status) and glibc's ``mallinfo2`` (heap
  in use / free, mmap'd blocks) plus pymalloc's arenas (``sys._debugmallocstats``): RSS
  growing with neither the heap in use nor the arenas growing is fragmentation or C code.
* ``maps``: the sizes of the broker's own structures (segments per partition, index entries
  kept in memory and their arrays' bytes, read hints, verified ranges, producer entries,
  fetch sessions, connections, metrics children, open file handles), and how many
  ``LogSegment`` objects are alive in all against the segments the logs hold (more alive
  means deleted segments are still referenced).
* ``types``: live objects by type (``gc.get_objects`` after ``gc.collect``, whose count of
  cyclic garbage is ``gc_collected``; not the objects the broker froze, made at start and at
  topic changes), the ones whose count changed most since the baseline (the first probe
  after ``--baseline-after`` s).
* ``trim`` (``--malloc-trim``): glibc's ``malloc_trim(0)`` after the RSS reading, and RssAnon
  after it: how much of RssAnon was free heap kept by the allocator, not memory in use.
* ``traces`` (``--tracemalloc N``: N frames per allocation; the broker runs ~2x slower): the
  allocations that grew most since the baseline, by traceback, and the traced total.

A script, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import ctypes
import gc
import json
import os
import sys
import tempfile
import threading
import time
import tracemalloc
import weakref
from typing import Any

KB = 1024


def _status_kb() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                out[key] = int(rest.split()[0])
    return out


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                               "fsmblks", "uordblks", "fordblks", "keepcost")]


def _mallinfo_kb() -> dict[str, int]:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _Mallinfo2
        m = libc.mallinfo2()
    except (OSError, AttributeError):
        return {}
    return {"heap_kb": m.arena // KB, "heap_used_kb": m.uordblks // KB, "heap_free_kb": m.fordblks // KB,
            "mmapped_kb": m.hblkhd // KB}


def _malloc_trim() -> bool:
    """glibc's ``malloc_trim(0)``: gives back the free pages of the heap (its middle too, with
    ``MADV_DONTNEED``), which `suoi.cli.malloc_tuning` otherwise keeps (up to 128 MB)."""
    try:
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False


def _pymalloc_arenas() -> int | None:
    """Arenas pymalloc holds now (1 MiB each on 3.10+), parsed from ``sys._debugmallocstats``
    (which writes to fd 2: redirected to a temporary file for the moment it takes)."""
    with tempfile.TemporaryFile("w+") as tmp:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(tmp.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        for line in tmp:
            if line.startswith("# arenas highwater mark") or not line.startswith("# arenas allocated current"):
                continue
            return int(line.split("=")[1].replace(",", ""))
    return None


#: What the hooks installed by `_hook` saw: the broker, its event loop, every segment made.
SEEN: dict[str, Any] = {"broker": None, "loop": None, "segments": weakref.WeakSet()}


def _hook() -> None:
    """Wrap three constructors/entry points so the probe finds the broker, its loop and its
    segments (``gc.get_objects`` misses what the broker froze with ``gc.freeze``)."""
    import suoi.broker
    import suoi.cli.broker
    from suoi.log.segment_state import SegmentState

    seg_init = SegmentState.__init__
    broker_init = suoi.broker.Broker.__init__
    serve = suoi.cli.broker._serve

    def segment(self: Any, *a: Any, **kw: Any) -> None:
        seg_init(self, *a, **kw)
        SEEN["segments"].add(self)

    def broker(self: Any, *a: Any, **kw: Any) -> None:
        broker_init(self, *a, **kw)
        SEEN["broker"] = self

    async def serving(*a: Any, **kw: Any) -> Any:
        SEEN["loop"] = asyncio.get_running_loop()
        return await serve(*a, **kw)

    SegmentState.__init__ = segment  # type: ignore[method-assign]
    suoi.broker.Broker.__init__ = broker  # type: ignore[method-assign]
    suoi.cli.broker._serve = serving


def _broker_maps(broker: Any) -> dict[str, Any]:
    """Sizes of the broker's structures; a renamed attribute shows as an error entry, not a crash."""
    maps: dict[str, Any] = {}

    def put(name: str, fn: Any) -> None:
        try:
            maps[name] = fn()
        except Exception as e:  # noqa: BLE001 - a probe reports what it cannot read
            maps[name] = f"? {type(e).__name__}: {e}"

    logs = [lg for lg in broker.logs.all_logs() if not lg.topic.startswith("__")]
    segs = [s for lg in logs for s in lg._segments]
    held = {id(s) for lg in broker.logs.all_logs() for s in lg._segments}
    put("partitions", lambda: len(logs))
    put("segments", lambda: len(segs))
    put("segments_alive", lambda: len(SEEN["segments"]))
    put("segments_alive_not_in_a_log", lambda: sum(1 for s in list(SEEN["segments"]) if id(s) not in held))
    # The columns in memory (`len(index)` would read a parked index back: the probe must not)
    put("index_entries", lambda: sum(len(ix._keys) for s in segs for ix in (s.offset_index, s.time_index)))
    put("index_array_kb", lambda: sum(sys.getsizeof(a) for s in segs for ix in (s.offset_index, s.time_index)
                                      for a in (ix._keys, ix._values)) // KB)
    put("index_pending_kb", lambda: sum(len(ix._pending) for s in segs
                                        for ix in (s.offset_index, s.time_index)) // KB)
    put("read_hints", lambda: sum(len(s._read_hints) for s in segs))
    put("recent_batches", lambda: sum(len(s._recent_base) for s in segs))
    put("verified_ranges", lambda: sum(len(s.verified._starts) for s in segs))
    put("producer_entries", lambda: sum(len(lg.producer_state.producers) for lg in broker.logs.all_logs()))
    put("unflushed_segments", lambda: sum(len(lg._unflushed_segments) for lg in logs))
    put("fetch_sessions", lambda: len(broker.metrics.fetch_sessions.sessions))
    put("connections", lambda: len(broker.connections))
    put("metrics_topics", lambda: len(broker.metrics.topics))
    put("metrics_requests", lambda: len(broker.metrics.requests))

    def handles() -> int:
        from suoi.log.handles import HANDLES
        return HANDLES.open_count
    put("open_file_handles", handles)

    def sealed() -> str:
        from suoi.log.index import SEALED  # a tree without it reports the ImportError
        return f"{len(SEALED)} loaded, {SEALED.entries} entries"
    put("sealed_indexes", sealed)
    put("metadata_log_segments", lambda: sum(len(lg._segments) for lg in broker.logs.all_logs()
                                             if lg.topic.startswith("__")))
    return maps


class Probe:
    def __init__(self, out: str, baseline_after: float, top: int, trim: bool = False) -> None:
        self.out, self.baseline_after, self.top, self.trim = out, baseline_after, top, trim
        self.t0 = time.monotonic()
        self.base_types: collections.Counter[str] | None = None
        self.base_stats: dict[tracemalloc.Traceback, tuple[int, int]] | None = None
        self.pending_record: dict[str, Any] | None = None
        self.pending_snapshot: tuple[tracemalloc.Snapshot, bool] | None = None

    def run(self) -> None:
        """One probe, on the event loop thread (`write` then finishes it on the probe's)."""
        t = time.monotonic() - self.t0
        rec: dict[str, Any] = {"t": round(t, 1), "gc_before": list(gc.get_count())}
        rec["gc_collected"] = gc.collect()  # cyclic garbage found: a pile of it is growth the GC frees later
        rec["rss"] = {**_status_kb(), **_mallinfo_kb(), "pymalloc_arenas": _pymalloc_arenas(),
                      "pymalloc_blocks": sys.getallocatedblocks()}
        if self.trim:  # what of RssAnon is free heap the allocator keeps (given back by malloc_trim)
            rec["trim"] = {"trimmed": _malloc_trim(), "RssAnon_after": _status_kb()["RssAnon"]}
        if SEEN["broker"] is not None:
            rec["maps"] = _broker_maps(SEEN["broker"])
        types = collections.Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.get_objects())
        rec["objects"] = sum(types.values())
        baseline = self.base_types is None and t >= self.baseline_after
        if baseline:
            self.base_types = types
        if self.base_types is not None:
            diff = types.copy()
            diff.subtract(self.base_types)
            rec["types"] = [(k, v) for k, v in sorted(diff.items(), key=lambda kv: -abs(kv[1]))[: self.top] if v]
        if tracemalloc.is_tracing():  # a copy of the traces now; grouped by `trace_growth`, off the loop
            rec["traced_kb"] = tracemalloc.get_traced_memory()[0] // KB
            self.pending_snapshot = (tracemalloc.take_snapshot(), baseline)
        self.pending_record = rec

    def trace_growth(self, snap: tracemalloc.Snapshot, baseline: bool) -> list[dict[str, Any]]:
        """The allocations grown most since the baseline snapshot, by traceback (on the probe's
        thread: grouping a few 100,000 traces takes seconds, which the broker's loop keeps serving)."""
        snap = snap.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__)])
        stats = {st.traceback: (st.size, st.count) for st in snap.statistics("traceback")}
        if baseline:
            self.base_stats = stats
        base = self.base_stats
        if base is None:
            return []
        grown = []
        for tb in stats.keys() | base.keys():
            (size, count), (size0, count0) = stats.get(tb, (0, 0)), base.get(tb, (0, 0))
            if size != size0:
                grown.append((size - size0, count - count0, tb))
        grown.sort(key=lambda g: -abs(g[0]))
        return [{"kb": round(d / KB, 1), "count": c,
                 "at": [f"{f.filename.rsplit('/src/', 1)[-1]}:{f.lineno}" for f in reversed(tb)]}
                for d, c, tb in grown[: self.top]]

    def write(self) -> None:
        """The record of the last `run`, with its traces grouped (probe thread)."""
        rec, self.pending_record = self.pending_record, None
        if rec is None:
            return
        if self.pending_snapshot is not None:
            (snap, baseline), self.pending_snapshot = self.pending_snapshot, None
            rec["traces"] = self.trace_growth(snap, baseline)
            del snap
        with open(self.out, "a") as f:
            f.write(json.dumps(rec) + "\n")


def _probe_thread(probe: Probe, every: float) -> None:
    next_at = time.monotonic() + every
    while True:
        time.sleep(max(0.0, next_at - time.monotonic()))  # the probe's period
        next_at += every
        loop = SEEN["loop"]
        if loop is None:
            continue
        done = threading.Event()

        def run(done: threading.Event = done) -> None:
            try:
                probe.run()
            finally:
                done.set()
        try:
            loop.call_soon_threadsafe(run)
        except RuntimeError:  # the loop closed: the broker is stopping
            return
        if done.wait(120):
            probe.write()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="JSON lines, one per probe")
    ap.add_argument("--every", type=float, default=60.0, help="seconds between probes")
    ap.add_argument("--baseline-after", type=float, default=60.0, help="seconds before the baseline probe")
    ap.add_argument("--tracemalloc", type=int, default=0, metavar="FRAMES", help="trace allocations (0: off)")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--malloc-trim", action="store_true", help="malloc_trim(0) at each probe (RssAnon before/after)")
    ap.add_argument("suoi_args", nargs=argparse.REMAINDER, help="-- then the suoi CLI's arguments")
    args = ap.parse_args()
    suoi_args = args.suoi_args[1:] if args.suoi_args[:1] == ["--"] else args.suoi_args
    if args.tracemalloc:
        tracemalloc.start(args.tracemalloc)
    sys.modules["hypothesis"] = None  # type: ignore[assignment]  # as console_main does (kio's strategies)
    _hook()
    probe = Probe(args.out, args.baseline_after, args.top, args.malloc_trim)
    threading.Thread(target=_probe_thread, args=(probe, args.every), daemon=True, name="soak-probe").start()
    from suoi.cli.main import console_main
    sys.argv = ["suoi", *suoi_args]
    raise SystemExit(console_main())


if __name__ == "__main__":
    main()
