"""DescribeLogDirs (key 35): per log dir, the replicas it holds, their size and offset lag.

Kafka's offset lag (ReplicaManager.getLogEndOffsetLag): for a replica, how far its log end is
behind its high watermark (0 but for a follower that has not caught up); for a *future* replica
(a move by AlterReplicaLogDirs in progress, is_future_key=true, listed in the target dir) how far
the copy is behind the replica. A log dir taken offline after an I/O error answers
KAFKA_STORAGE_ERROR with no replicas. topics=null means every topic.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from suoi.api.registry import RequestContext, api
from suoi.model import ErrorCode


def _dir_size(path: Path) -> int:
    try:
        return sum(f.stat().st_size for f in path.iterdir() if f.is_file())
    except OSError:
        return 0


@api(35, "DescribeLogDirs", 1, 4)
def handle_describe_log_dirs(ctx: RequestContext, request: Any) -> dict[str, Any]:
    logs = ctx.services.logs
    if request.topics is None:
        wanted = {(name, p) for name, info in logs.topics().items() for p in range(info.partitions)}
    else:
        wanted = {(t.topic, int(p)) for t in request.topics for p in t.partitions}
    offline = logs.offline_dirs
    per_dir: dict[Path, dict[str, list[dict[str, Any]]]] = {d: {} for d in logs.log_dirs}
    for name, p in sorted(wanted):
        plog = logs.get_log(name, p)
        if plog is None or plog.directory.parent not in per_dir:
            continue
        per_dir[plog.directory.parent].setdefault(name, []).append({
            "partition_index": p, "partition_size": plog.size_in_bytes, "is_future_key": False,
            "offset_lag": max(plog.high_watermark - plog.log_end_offset, 0)})
    for move in logs.moves():
        plog = logs.get_log(move.topic, move.partition)
        if (move.topic, move.partition) in wanted and plog is not None and move.target_dir in per_dir:
            per_dir[move.target_dir].setdefault(move.topic, []).append({
                "partition_index": move.partition, "partition_size": _dir_size(move.future), "is_future_key": True,
                "offset_lag": max(plog.log_end_offset - max(move.copied_up_to, plog.log_start_offset), 0)})
    results = []
    for log_dir, by_topic in per_dir.items():
        path = str(log_dir.resolve())
        if log_dir in offline:
            results.append({"error_code": ErrorCode.kafka_storage_error, "log_dir": path, "topics": [],
                            "total_bytes": -1, "usable_bytes": -1})
            continue
        try:
            usage = shutil.disk_usage(log_dir)
            total, usable, error = usage.total, usage.free, ErrorCode.none
        except OSError:
            total, usable, error = -1, -1, ErrorCode.kafka_storage_error
        results.append({"error_code": error, "log_dir": path, "total_bytes": total, "usable_bytes": usable,
                        "topics": [{"name": n, "partitions": ps} for n, ps in sorted(by_topic.items())]})
    return {"throttle_time": 0, "error_code": ErrorCode.none, "results": results}
