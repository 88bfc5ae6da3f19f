"""log.cleaner.io.max.bytes.per.second is dynamic: a ``Pace`` reads the cleaner's ``IoThrottle``
at each count, so a build in progress follows a new rate; 0 pauses its I/O (Kafka's Throttler
then sleeps on) until the rate changes or the node stops; a negative rate never throttles."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from suoi.log.cleaner import LogCleaner
from suoi.log.cleaner_pace import CleanerStopped, IoThrottle, Pace
from suoi.protocol.records import build_batch, iter_records
from tests.unit.log.log_helpers import Clock, OpenLog

COMPACT = {"cleanup_policy": ("compact",), "segment_bytes": 10_000_000}


def _in_thread(fn: Callable[[], object]) -> tuple[threading.Thread, dict[str, object]]:
    out: dict[str, object] = {}

    def run() -> None:
        try:
            out["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            out["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


def test_a_lowered_rate_applies_to_the_next_count() -> None:
    throttle = IoThrottle(1e12)
    pace = Pace(throttle)
    t0 = time.monotonic()
    pace.io(1_000_000)
    assert time.monotonic() - t0 < 0.05  # at 1 TB/s: no sleep
    throttle.bytes_per_s = 10_000  # the broker's reconfigure, mid-build
    t0 = time.monotonic()
    pace.io(2_000)  # a new window: 2000 bytes at 10 kB/s
    took = time.monotonic() - t0
    assert 0.19 <= took < 1.0
    throttle.bytes_per_s = math.inf
    t0 = time.monotonic()
    pace.io(10**9)
    assert time.monotonic() - t0 < 0.05


def test_a_negative_rate_never_throttles() -> None:
    pace = Pace(IoThrottle(-1.0))
    t0 = time.monotonic()
    for _ in range(100):
        pace.io(10**9)
    assert time.monotonic() - t0 < 0.05


def test_a_rate_of_zero_pauses_until_the_node_stops() -> None:
    throttle = IoThrottle(0.0)
    thread, out = _in_thread(lambda: Pace(throttle).io(1))
    thread.join(0.3)
    assert thread.is_alive()  # paused
    throttle.stopped = True
    thread.join(2.0)
    assert not thread.is_alive()
    assert isinstance(out.get("error"), CleanerStopped)


def test_a_build_paused_at_zero_resumes_when_the_rate_changes(open_log: OpenLog, clock: Clock) -> None:
    log = open_log(**COMPACT)
    for i in range(40):
        log.append(build_batch([(b"k%d" % (i % 7), b"v" * 2000)], timestamp_ms=1000 + i))
    log.roll()
    log.append(build_batch([(b"active", b"x")]))
    cleaner = LogCleaner(io_max_bytes_per_s=0.0)
    plan = cleaner.plan(log, clock.now, force=True)
    assert plan is not None
    thread, out = _in_thread(lambda: cleaner.build(plan))
    thread.join(0.3)
    assert thread.is_alive()  # no I/O at a rate of 0
    assert not list(Path(log.directory).glob("*.cleaned"))
    cleaner.io_max_bytes_per_s = 1e12  # as Broker.reconfigure sets it
    thread.join(5.0)
    assert not thread.is_alive() and "error" not in out
    result = out["result"]
    assert cleaner.commit(log, result)  # type: ignore[arg-type]
    assert [r.key for r in iter_records(log.read(0, 1 << 30))] == [b"k%d" % k for k in (5, 6, 0, 1, 2, 3, 4)] + [b"active"]


def test_a_build_paused_at_zero_gives_up_when_the_node_stops(open_log: OpenLog, clock: Clock) -> None:
    log = open_log(**COMPACT)
    for i in range(20):
        log.append(build_batch([(b"k%d" % (i % 3), b"v" * 500)], timestamp_ms=1000 + i))
    log.roll()
    cleaner = LogCleaner(io_max_bytes_per_s=0.0)
    plan = cleaner.plan(log, clock.now, force=True)
    assert plan is not None
    thread, out = _in_thread(lambda: cleaner.build(plan))
    thread.join(0.2)
    assert thread.is_alive()
    cleaner.stop()
    thread.join(2.0)
    assert not thread.is_alive()
    assert isinstance(out.get("error"), CleanerStopped)
    assert not list(Path(log.directory).glob("*.cleaned"))  # nothing left behind
    with pytest.raises(CleanerStopped):  # a stopped cleaner stays stopped
        Pace(cleaner.io_throttle).io(1)
