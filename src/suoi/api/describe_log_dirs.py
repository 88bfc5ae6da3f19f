"""DescribeLogDirs (key 35): per log dir, the partitions it holds and their size on disk.

Every replica is a leader on one node, so offset_lag is 0 and there are no future
replicas. topics=null means every topic.
"""

from __future__ import annotations

import shutil
from typing import Any

from suoi.api.registry import RequestContext, api
from suoi.model import ErrorCode


@api(35, "DescribeLogDirs", 1, 4)
def handle_describe_log_dirs(ctx: RequestContext, request: Any) -> dict[str, Any]:
    logs = ctx.broker.logs
    topics = logs.topics()
    if request.topics is None:
        wanted = [(name, list(range(info.partitions))) for name, info in sorted(topics.items())]
    else:
        wanted = [(t.topic, list(t.partitions)) for t in request.topics]
    per_dir: dict[str, dict[str, list[dict[str, Any]]]] = {str(d.resolve()): {} for d in logs.log_dirs}
    for name, partitions in wanted:
        for p in partitions:
            plog = logs.get_log(name, p)
            if plog is None:
                continue
            key = str(plog.directory.parent.resolve())
            per_dir.setdefault(key, {}).setdefault(name, []).append(
                {"partition_index": p, "partition_size": plog.size_in_bytes, "offset_lag": 0, "is_future_key": False})
    results = []
    for log_dir, by_topic in per_dir.items():
        try:
            usage = shutil.disk_usage(log_dir)
            total, usable, error = usage.total, usage.free, ErrorCode.none
        except OSError:
            total, usable, error = -1, -1, ErrorCode.kafka_storage_error
        results.append({"error_code": error, "log_dir": log_dir, "total_bytes": total, "usable_bytes": usable,
                        "topics": [{"name": n, "partitions": ps} for n, ps in sorted(by_topic.items())]})
    return {"throttle_time": 0, "error_code": ErrorCode.none, "results": results}
