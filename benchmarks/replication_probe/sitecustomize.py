"""bench_replication_cpu.py --count: follower Fetch counters inside each broker (not the broker's code).

Loaded by Python at start-up when this directory is on PYTHONPATH (the bench puts it there, with
SUOI_PROBE_OUT set). Wraps `ReplicaFetcher._fetch` and `_handle_partition` with a few integer
increments: follower Fetches sent, how many of them carried records for at least one partition,
partitions answered with records, partitions answered without (high watermark only). SIGUSR2
writes the counters to SUOI_PROBE_OUT/probe-<pid>.json (read by the bench before and after a run).
"""

from __future__ import annotations

import json
import os
import signal

_OUT = os.environ.get("SUOI_PROBE_OUT")

if _OUT:
    from suoi.partition import replica_fetcher as _rf

    _counts = {"fetches": 0, "with_records": 0, "partitions_with_records": 0, "partitions_without": 0}
    _fetch, _handle = _rf.ReplicaFetcher._fetch, _rf.ReplicaFetcher._handle_partition

    async def _counted_fetch(self, replicas):  # type: ignore[no-untyped-def]
        before = _counts["partitions_with_records"]
        await _fetch(self, replicas)
        _counts["fetches"] += 1
        if _counts["partitions_with_records"] != before:
            _counts["with_records"] += 1

    def _counted_handle(self, replica, p, *records):  # type: ignore[no-untyped-def]
        # (the records are a view passed beside the answer's partition, or, in older trees, its field)
        _counts["partitions_with_records" if (records[0] if records else p.records) else "partitions_without"] += 1
        return _handle(self, replica, p, *records)

    def _dump(*_: object) -> None:
        path = os.path.join(_OUT, f"probe-{os.getpid()}.json")
        with open(path + ".tmp", "w") as f:
            f.write(json.dumps(_counts))
        os.replace(path + ".tmp", path)

    _rf.ReplicaFetcher._fetch = _counted_fetch  # type: ignore[method-assign]
    _rf.ReplicaFetcher._handle_partition = _counted_handle  # type: ignore[method-assign]
    signal.signal(signal.SIGUSR2, _dump)
