"""The broker's log cleaning of one log, with nothing but renames and log state on the event loop.

The plan and the commit's renames run on the loop (they touch the `PartitionLog`); the rewrite
(`LogCleaner.build`) and every fsync and unlink of the commit (`suoi.log.cleaner_swap`'s thread
steps) run on a thread, awaited, so the loop serves meanwhile. The log package is sans-IO (no
asyncio): the awaiting lives here, the steps and their order there.
"""

from __future__ import annotations

import asyncio

from suoi.log.cleaner import LogCleaner
from suoi.log.cleaner_swap import CommitSteps, commit_steps
from suoi.log.partition_log import PartitionLog

__all__ = ["clean_off_loop", "run_steps_off_loop"]


async def clean_off_loop(cleaner: LogCleaner, plog: PartitionLog, now_ms: int) -> bool:
    """One cleaning pass of ``plog`` if one is due; True if a result was committed."""
    plan = cleaner.plan(plog, now_ms)
    if plan is None:
        return False
    result = await asyncio.to_thread(cleaner.build, plan)
    return await run_steps_off_loop(commit_steps(plog, result))


async def run_steps_off_loop(steps: CommitSteps) -> bool:
    """`cleaner_swap.run_steps` with each thread step awaited on a thread. Cancelled (the node
    stops) or failed, the steps left are dropped: what the disk holds then is one of the states
    the next open of the log finishes (`cleaner_files.complete_swaps`)."""
    try:
        step = next(steps)
        while True:
            await asyncio.to_thread(step)
            step = steps.send(None)
    except StopIteration as done:
        return bool(done.value)
    finally:
        steps.close()
