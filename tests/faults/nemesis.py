"""The nemesis of the fault tests: a seeded random sequence of faults, one node at a time (so a
majority always remains), each held a while and then healed, until a deadline.

Faults: "kill" (SIGKILL) + start, "stop" (controlled shutdown, final flush, clean-shutdown marker)
+ start, "pause" (SIGSTOP) + resume, "isolate" (peer links blackholed) / "isolate-reset"
(connections reset) + heal. `SUOI_NEMESIS_SEED=<n>` replays a sequence (`seed()`).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Sequence

from tests.faults.cluster import ReplicatedCluster

FAULTS = ("kill", "stop", "pause", "isolate", "isolate-reset")


def seed() -> int:
    """SUOI_NEMESIS_SEED, or a random seed (print it: a failure replays with it)."""
    return int(os.environ.get("SUOI_NEMESIS_SEED", random.randrange(1 << 30)))


def run_nemesis(cluster: ReplicatedCluster, rng: random.Random, seconds: float, done: list[str], *,
                faults: Sequence[str] = FAULTS, hold: tuple[float, float] = (3.0, 6.0), rejoin_s: float = 40.0,
                victim: Callable[[], int | None] | None = None, after: Callable[[], None] | None = None) -> None:
    """Faults until `seconds` passed, each appended to `done` ("<fault> <node>"). The node is
    `victim()` when it names one (" (aimed)" is added), else a random one; each fault lasts a random
    time in `hold`; after it is healed, every node must be ready within `rejoin_s`, then `after()`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        aimed = victim() if victim is not None else None
        node = aimed if aimed is not None else rng.choice(cluster.ids)
        fault = rng.choice(list(faults))
        done.append(f"{fault} {node}{' (aimed)' if aimed is not None else ''}")
        if fault == "kill":
            cluster.kill(node)
        elif fault == "stop":
            assert cluster.stop_node(node) == 0, f"node {node} did not stop cleanly\n{cluster.log_tail(node)}"
        elif fault == "pause":
            cluster.pause(node)
        else:
            cluster.isolate(node, mode="reset" if fault == "isolate-reset" else "drop")
        time.sleep(rng.uniform(*hold))  # how long the fault lasts (not a synchronisation)
        if fault in ("kill", "stop"):
            cluster.start_node(node, wait=False)
        elif fault == "pause":
            cluster.resume(node)
        else:
            cluster.heal()
        cluster.wait_ready(timeout=rejoin_s)
        if after is not None:
            after()
