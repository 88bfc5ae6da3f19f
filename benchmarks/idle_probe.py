"""Which event-loop callbacks a node runs while it is idle (`bench_idle.py --probe`).

Loaded into every node process of a run through a ``sitecustomize.py`` that bench_idle.py puts
first on PYTHONPATH (so `suoi cluster up`'s nodes get it too): `uvloop.run` gets a `uvloop.Loop`
subclass whose ``call_soon``/``call_later``/``call_at`` wrap what they schedule, and counts each
callback that runs, by name. A timer that wakes a coroutine from ``asyncio.sleep`` (or a timeout)
is named after the task that armed it ("sleep in Broker._retention_loop"), a task step after its
coroutine, a thread's ``call_soon_threadsafe`` after its callback.

SIGUSR1 writes the counts gathered since the last signal to ``$IDLE_PROBE_DIR/<pid>.json`` and
starts over. Not in the product: a diagnostic of the benchmark only.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections import Counter
from typing import Any

from latency_probe import _name  # a callback's name: a task's coroutine, a partial's function

#: counts by kind ("timer", "soon") and callback name, since the last dump
COUNTS: dict[str, Counter[str]] = {"timer": Counter(), "soon": Counter(), "parked fetch": Counter()}
_SINCE = [time.monotonic()]


def _timer_name(cb: Any) -> str:
    """A timer's name: its callback's, or for a sleep's/timeout's the task that armed it."""
    name = _name(cb)
    if name.startswith(("_set_result_unless_cancelled", "Timeout", "_release_waiter", "timeout")):
        try:
            task = asyncio.current_task()
        except RuntimeError:
            task = None
        if task is not None:
            coro = task.get_coro()
            return f"{name.split('.')[0]} in {getattr(coro, '__qualname__', repr(coro))}"
    return name


def _fire(counter: Counter[str], name: str, cb: Any, *args: Any) -> Any:
    counter[name] += 1
    return cb(*args)


def dump() -> None:
    out = os.environ.get("IDLE_PROBE_DIR")
    if not out:
        return
    now = time.monotonic()
    import threading

    data = {"pid": os.getpid(), "seconds": now - _SINCE[0], **{k: dict(v) for k, v in COUNTS.items()},
            "threads": {str(t.native_id): t.name for t in threading.enumerate()}}
    with open(os.path.join(out, f"{os.getpid()}.json"), "w") as f:
        json.dump(data, f)
    for c in COUNTS.values():
        c.clear()
    _SINCE[0] = now


def install() -> None:
    import uvloop

    signal.signal(signal.SIGUSR1, lambda *_: dump())

    timers, soon = COUNTS["timer"], COUNTS["soon"]

    class CountingLoop(uvloop.Loop):  # type: ignore[misc]
        def call_soon(self, callback: Any, *args: Any, context: Any = None) -> Any:
            return super().call_soon(_fire, soon, _name(callback), callback, *args, context=context)

        def call_later(self, delay: float, callback: Any, *args: Any, context: Any = None) -> Any:
            return super().call_later(delay, _fire, timers, _timer_name(callback), callback, *args, context=context)

        def call_at(self, when: float, callback: Any, *args: Any, context: Any = None) -> Any:
            # (uvloop's call_at calls self.call_later: armed here through the base class's, counted once)
            return super().call_later(when - self.time(), _fire, timers, _timer_name(callback), callback, *args,
                                      context=context)

    run = uvloop.run

    def counting_run(main: Any, **kwargs: Any) -> Any:
        kwargs["loop_factory"] = CountingLoop
        return run(main, **kwargs)

    uvloop.run = counting_run
    try:  # parked Fetches, by max wait: which client keeps the node waking
        from suoi.partition.fetch_deadlines import FetchDeadlines
    except ImportError:
        return
    add, parked = FetchDeadlines.add, COUNTS["parked fetch"]

    def counting_add(self: Any, max_wait_ms: int, fetch: Any) -> None:
        parked[f"max wait {max_wait_ms} ms"] += 1
        add(self, max_wait_ms, fetch)

    FetchDeadlines.add = counting_add  # type: ignore[method-assign]


#: the body of the ``sitecustomize.py`` bench_idle.py writes (only a `suoi broker` process counts)
SITECUSTOMIZE = """\
import sys
if sys.argv[:2] == ["-m", "broker"] and "--config" in sys.argv:
    sys.path.insert(0, {bench_dir!r})
    import idle_probe
    idle_probe.install()
"""
