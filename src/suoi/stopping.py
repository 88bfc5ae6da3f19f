"""Bounded shutdown of asyncio tasks.

On Python 3.11 a cancel that lands just as `asyncio.wait_for`'s inner wait completes is
swallowed: `wait_for` returns normally and the task's loop carries on. `await task` after
`task.cancel()` then waits forever and a node never stops. Loops therefore also check a
stopping flag, and whoever stops them waits a bounded time (`cancel_and_wait`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger("suoi.stopping")


async def cancel_and_wait(tasks: Iterable[asyncio.Future[Any]], timeout: float, what: str) -> None:
    """Cancel `tasks` and wait up to `timeout` seconds for them to end; one WARNING names
    those that did not (they are left behind rather than holding up the shutdown)."""
    pending = [t for t in tasks if not t.done()]
    for task in pending:
        task.cancel()
    if not pending:
        return
    _, stuck = await asyncio.wait(pending, timeout=timeout)
    if stuck:
        names = sorted(t.get_name() if isinstance(t, asyncio.Task) else repr(t) for t in stuck)
        log.warning("%s: %d task(s) did not stop within %g s: %s", what, len(stuck), timeout, ", ".join(names))


async def in_thread_bounded(fn: Callable[[], Any], timeout: float, what: str) -> bool:
    """`fn()` in a thread (an fsync stalls for tens of seconds on a busy disk: on the event loop
    it froze the node), waited `timeout` seconds at most: False, with one WARNING, if it did not
    finish (it goes on in its thread; its outcome is dropped). Raises what `fn` raised."""
    call = asyncio.ensure_future(asyncio.to_thread(fn))
    done, _ = await asyncio.wait({call}, timeout=timeout)
    if done:
        call.result()
        return True
    call.add_done_callback(lambda f: f.cancelled() or f.exception())
    log.warning("%s did not finish within %g s; stopping anyway", what, timeout)
    return False
