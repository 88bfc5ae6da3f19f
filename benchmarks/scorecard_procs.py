"""Process and time handling for bench_scorecard.py: a section's time bound (SIGALRM), SIGTERM as
Ctrl-C, stopping what a section started (by PID) on every way out, waiting for a broker to go
quiet before measuring it, and the CPU-bound neighbour of the latency section."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

from common import log, read_cpu_s


class SectionTimeout(Exception):
    """A section ran past its time bound (SIGALRM)."""


def on_alarm(_signum: int, _frame: Any) -> None:
    raise SectionTimeout("time bound reached")


def on_sigterm(_signum: int, _frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: let the cleanup finish
    raise KeyboardInterrupt("SIGTERM")


def disarm() -> None:
    signal.setitimer(signal.ITIMER_REAL, 0)


@contextlib.contextmanager
def stopping() -> Iterator[Callable[[Callable[[], None]], None]]:
    """Yields `own(stop)`: every `stop` registered is called on the way out (last first), with
    the section's alarm held meanwhile so that no time bound interrupts a cleanup (and set again
    for what is left of it, for the rest of the section)."""
    stops: list[Callable[[], None]] = []
    try:
        yield stops.append
    finally:
        left = signal.getitimer(signal.ITIMER_REAL)[0]  # 0 once it went off
        disarm()
        t0 = time.monotonic()
        for stop in reversed(stops):
            try:
                stop()
            except Exception as e:  # keep stopping the others
                log(f"cleanup: {type(e).__name__}: {e}")
        if left:
            signal.setitimer(signal.ITIMER_REAL, max(0.001, left - (time.monotonic() - t0)))


def settle(label: str, pid: int | None, window: float = 0.5, busy: float = 0.1, bound: float = 15.0) -> None:
    """Wait (at most `bound` s) until the broker spends under `busy` of a core over `window` s: a
    node that has just started or created topics keeps working for a moment (logs, metadata), and
    that CPU would be counted in the first measurement that follows."""
    deadline = time.monotonic() + bound
    last = read_cpu_s(pid)
    while last is not None and time.monotonic() < deadline:
        time.sleep(window)  # the sampling period, not synchronisation
        now = read_cpu_s(pid)
        if now is None or now - last < busy * window:
            return
        last = now
    log(f"{label}: still busy after {bound:.0f} s, measuring anyway")


