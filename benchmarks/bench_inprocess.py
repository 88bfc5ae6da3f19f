#!/usr/bin/env python3
"""How fast the in-process node for users' tests (`suoi.testing.InProcessNode`) starts.

Prints figures; it is not a test.  In one process: the import of `suoi.testing` and of the
broker, then --runs (5) fresh nodes one after the other, each timed from `start()` to its
return (the client port accepts connections, which a KRaft node does once the quorum unfenced
it), a `create_topic` of one partition and `close()`; then one `InProcessCluster` of three nodes.
Medians; the first node is also printed alone (it pays the lazy first uses of the process).
kio imports hypothesis when it is installed and builds its strategies (seconds): as in a test
process with hypothesis, that lands in the import figure; `--hide-hypothesis` leaves it out.

  python benchmarks/bench_inprocess.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--hide-hypothesis", action="store_true")
    args = ap.parse_args()
    if args.hide_hypothesis:
        sys.modules["hypothesis"] = None  # type: ignore[assignment]
    t0 = time.perf_counter()
    import suoi.broker  # noqa: F401  (what the first start would import)
    from suoi.testing import InProcessCluster, InProcessNode

    imported = time.perf_counter() - t0
    starts, topics, closes = [], [], []
    for _ in range(args.runs):
        node = InProcessNode()
        t0 = time.perf_counter()
        node.start()
        starts.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        node.create_topic("bench", 1)
        topics.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        node.close()
        closes.append(time.perf_counter() - t0)
    cluster = InProcessCluster(3)
    t0 = time.perf_counter()
    cluster.start()
    cluster_start = time.perf_counter() - t0
    t0 = time.perf_counter()
    cluster.close()
    cluster_close = time.perf_counter() - t0
    print(f"\nin-process node, {args.runs} runs (s)")
    print(f"  import suoi.testing + suoi.broker: {imported:.3f}")
    print(f"  start -> serving: first {starts[0]:.3f}, median {statistics.median(starts):.3f}, "
          f"max {max(starts):.3f}")
    print(f"  create_topic (1 partition, until its leader is in Metadata): median {statistics.median(topics):.3f}")
    print(f"  close: median {statistics.median(closes):.3f}")
    print(f"  3-node cluster: start {cluster_start:.3f}, close {cluster_close:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
